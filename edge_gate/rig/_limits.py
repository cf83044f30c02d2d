"""Bounds of ``edge-gate simulate``'s options, shared by the CLI and the API.

The traveller bound keeps a run near an hour at the default time scale. Each
traveller adds a genuine and an impostor crossing, measured at about 4 s
together at ``--time-scale 0.1`` on a two-core machine (10 travellers ran in
50 s), so 1000 travellers take about 70 minutes plus their enrolment.

The hold bound stops a rehearsal lane, with its test keys and its control
socket, from running unattended for longer than an hour.
"""

from __future__ import annotations

MIN_TRAVELLERS = 2
MAX_TRAVELLERS = 1000
MAX_GENUINE_PER_TRAVELLER = 100
MAX_TIME_SCALE = 10.0
MAX_SEED = 2**32 - 1
# Maximum time in seconds that the lane and its control socket stay up
# after the last crossing.
MAX_HOLD_S = 3600.0
