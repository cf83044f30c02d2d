"""Bounds of ``edge-gate simulate``'s options, shared by the CLI and the API.

The traveller bound keeps a run within about an hour at the default time
scale: each traveller adds a genuine and an impostor crossing of about 1.5 s
each at ``--time-scale 0.1`` on a two-core machine, plus enrolment.
"""

from __future__ import annotations

MIN_TRAVELLERS = 2
MAX_TRAVELLERS = 1000
MAX_GENUINE_PER_TRAVELLER = 100
MAX_TIME_SCALE = 10.0
MAX_SEED = 2**32 - 1
