"""The test rig: each device emulated at its real interface, and the simulation."""
