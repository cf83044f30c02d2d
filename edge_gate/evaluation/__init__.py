"""Error rates, thresholds and DET curves shared by both biometric modalities.

Scores are similarities in [0, 1], higher meaning more alike. A comparison is
accepted when its score is at or above the threshold. Failures to enrol are
counted by the caller, which passes their pairs in with score 0 so that they
count as non-matches (ISO/IEC 19795-1 "FNMR including FTE" convention).
"""

from edge_gate.evaluation._det import write_det_png
from edge_gate.evaluation._modality import Modality
from edge_gate.evaluation._rates import (
    ErrorRates,
    calibrate_threshold,
    equal_error_rate,
    error_rates,
    fmr_upper_bound,
    fnmr_at_fmr,
    fnmr_at_zero_fmr,
    rule_of_three,
)

__all__ = [
    "ErrorRates",
    "Modality",
    "calibrate_threshold",
    "equal_error_rate",
    "error_rates",
    "fmr_upper_bound",
    "fnmr_at_fmr",
    "fnmr_at_zero_fmr",
    "rule_of_three",
    "write_det_png",
]
