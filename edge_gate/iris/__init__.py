"""Iris capture, segmentation, encoding and matching.

Pipeline: camera frame (sharpest of a burst) -> segmentation of pupil and
iris with highlights filled -> rubber-sheet strip with eyelids, eyelashes
and highlights masked -> ISO/IEC 29794-6 quality check -> Gabor filter bank
in ONNX Runtime -> fixed-size iris code and mask (:class:`IrisTemplate`,
784 bytes) -> masked fractional Hamming distance with rotation
compensation (:func:`compare_irises`) or a 1:N search
(:class:`IrisGallery`).
"""

from edge_gate.iris._camera import (
    DirectoryIrisCamera,
    IrisCamera,
    OrientedIrisCamera,
    V4L2IrisCamera,
    open_iris_camera,
)
from edge_gate.iris._capture import capture_iris_template
from edge_gate.iris._encoder import EncodingParams, IrisEncoder, IrisEncoding
from edge_gate.iris._gallery import IrisGallery
from edge_gate.iris._image import frame_sharpness, load_iris_image
from edge_gate.iris._match import compare_irises
from edge_gate.iris._modality import IrisModality, modality
from edge_gate.iris._normalize import IrisStrip, NormalizationParams
from edge_gate.iris._quality import IrisQuality
from edge_gate.iris._segment import Circle, Segmentation, SegmentationParams
from edge_gate.iris._template import IrisTemplate

__all__ = [
    "Circle",
    "DirectoryIrisCamera",
    "EncodingParams",
    "IrisCamera",
    "IrisEncoder",
    "IrisEncoding",
    "IrisGallery",
    "IrisModality",
    "IrisQuality",
    "IrisStrip",
    "IrisTemplate",
    "NormalizationParams",
    "OrientedIrisCamera",
    "Segmentation",
    "SegmentationParams",
    "V4L2IrisCamera",
    "capture_iris_template",
    "compare_irises",
    "frame_sharpness",
    "load_iris_image",
    "modality",
    "open_iris_camera",
]
