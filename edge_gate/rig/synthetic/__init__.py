"""Synthetic travellers for the rig: people, documents, fingers and eyes.

Everything here is deterministic from a seed, so a simulate run can be
repeated exactly. The generators model the ways real captures differ (pose,
distortion, pressure, dilation, eyelids, noise) so that the lane's matchers
meet realistic genuine and impostor pairs without any real person's data.
"""

from ._fingerprint import (
    MASTER_SHAPE,
    SENSOR_SHAPE,
    ImpressionConditions,
    MasterFingerprint,
    SyntheticFingerprints,
    draw_conditions,
    generate_master,
    render_impression,
)
from ._iris import (
    IRIS_IMAGE_SHAPE,
    EyeConditions,
    IrisPattern,
    SyntheticIrises,
    draw_eye_conditions,
    generate_iris_pattern,
    render_eye,
)
from ._people import (
    SyntheticDocument,
    SyntheticPerson,
    expired_copy,
    generate_people,
    mrz_lines,
    unenrolled_document,
)

__all__ = [
    "IRIS_IMAGE_SHAPE",
    "MASTER_SHAPE",
    "SENSOR_SHAPE",
    "EyeConditions",
    "ImpressionConditions",
    "IrisPattern",
    "MasterFingerprint",
    "SyntheticDocument",
    "SyntheticFingerprints",
    "SyntheticIrises",
    "SyntheticPerson",
    "draw_conditions",
    "draw_eye_conditions",
    "expired_copy",
    "generate_iris_pattern",
    "generate_master",
    "generate_people",
    "mrz_lines",
    "render_eye",
    "render_impression",
    "unenrolled_document",
]
