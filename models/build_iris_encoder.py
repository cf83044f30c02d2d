"""Build ``iris_encoder.onnx``: a bank of 2-D Gabor filters over the iris strip.

The model takes the normalised iris strip: the rubber-sheet unwrapping with
each row's running mean over +-12 columns removed, scaled to unit variance
over the valid samples, and invalid samples set to 0. It returns the real
and imaginary filter responses sampled on the code grid. The sign of each response is
one bit of the iris code (Daugman's phase quadrant coding); the magnitude
tells how reliable that bit is.

Graph:
    strip [1, 1, 32, 256] float32
      -> cyclic padding along the angle axis (Slice + Concat), because the
         strip wraps around the eye
      -> Conv with the filter bank, zero padding along the radius,
         stride 2 in both axes
      -> response [1, 2 * filters, 16, 128] float32, channels ordered
         (filter 0 real, filter 0 imaginary, filter 1 real, ...)

The weights are computed here in closed form, so the file is deterministic:
rebuilding gives the same bytes (checked by the unit tests), and the
SHA-256 in ``models/manifest.json`` is printed by this script.

Usage:
    python models/build_iris_encoder.py [--output models/iris_encoder.onnx]
"""

from __future__ import annotations

import argparse
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIP_ROWS = 32
STRIP_COLUMNS = 256
ROW_STRIDE = 2
COLUMN_STRIDE = 2
OPSET = 17


@dataclass(frozen=True)
class GaborSpec:
    """One complex Gabor filter, sizes in strip samples."""

    # Wavelength along the angle axis, in strip columns.
    wavelength: float
    # Gaussian widths (standard deviations) along angle and radius.
    sigma_columns: float
    sigma_rows: float


# Chosen on CASIA-IrisV1 eyes 001-040 (the calibration split) by the
# equal error rate; see models/iris_encoder.md.
FILTERS = (GaborSpec(wavelength=12.0, sigma_columns=4.0, sigma_rows=2.0),)


def gabor_kernels(spec: GaborSpec) -> tuple[npt.NDArray[np.float32], ...]:
    """Return the real and imaginary kernels of one filter, zero-mean, unit norm."""
    half_rows = math.ceil(2.5 * spec.sigma_rows)
    half_columns = math.ceil(2.5 * spec.sigma_columns)
    rows = np.arange(-half_rows, half_rows + 1, dtype=np.float64)[:, None]
    columns = np.arange(-half_columns, half_columns + 1, dtype=np.float64)[None, :]
    envelope = np.exp(
        -(columns**2) / (2 * spec.sigma_columns**2) - rows**2 / (2 * spec.sigma_rows**2)
    )
    phase = 2 * math.pi * columns / spec.wavelength
    kernels = []
    for carrier in (np.cos(phase), np.sin(phase)):
        kernel = envelope * carrier
        # No response to a flat grey level: remove the DC term.
        kernel -= envelope * (kernel.sum() / envelope.sum())
        kernel /= np.sqrt((kernel**2).sum())
        kernels.append(kernel.astype(np.float32))
    return tuple(kernels)


def filter_bank(filters: tuple[GaborSpec, ...]) -> npt.NDArray[np.float32]:
    """Return the Conv weights [2 * filters, 1, kh, kw], centred and padded."""
    kernels = [k for spec in filters for k in gabor_kernels(spec)]
    height = max(k.shape[0] for k in kernels)
    width = max(k.shape[1] for k in kernels)
    bank = np.zeros((len(kernels), 1, height, width), dtype=np.float32)
    for index, kernel in enumerate(kernels):
        top = (height - kernel.shape[0]) // 2
        left = (width - kernel.shape[1]) // 2
        bank[index, 0, top : top + kernel.shape[0], left : left + kernel.shape[1]] = (
            kernel
        )
    return bank


def build_model(
    filters: tuple[GaborSpec, ...] = FILTERS, row_stride: int = ROW_STRIDE
) -> onnx.ModelProto:
    """Return the encoder graph for ``filters``."""
    weights = filter_bank(filters)
    channels, _, kernel_rows, kernel_columns = weights.shape
    pad_rows = kernel_rows // 2
    pad_columns = kernel_columns // 2

    def constant(name: str, values: list[int]) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)

    initializers = [
        numpy_helper.from_array(weights, "gabor_bank"),
        constant("wrap_left_start", [STRIP_COLUMNS - pad_columns]),
        constant("wrap_left_end", [STRIP_COLUMNS]),
        constant("wrap_right_start", [0]),
        constant("wrap_right_end", [pad_columns]),
        constant("angle_axis", [3]),
    ]
    nodes = [
        # Cyclic padding: the last columns go in front, the first ones behind.
        helper.make_node(
            "Slice",
            ["strip", "wrap_left_start", "wrap_left_end", "angle_axis"],
            ["wrap_left"],
        ),
        helper.make_node(
            "Slice",
            ["strip", "wrap_right_start", "wrap_right_end", "angle_axis"],
            ["wrap_right"],
        ),
        helper.make_node(
            "Concat", ["wrap_left", "strip", "wrap_right"], ["wrapped"], axis=3
        ),
        helper.make_node(
            "Conv",
            ["wrapped", "gabor_bank"],
            ["response"],
            pads=[pad_rows, 0, pad_rows, 0],
            strides=[row_stride, COLUMN_STRIDE],
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "iris_gabor_encoder",
        [
            helper.make_tensor_value_info(
                "strip", TensorProto.FLOAT, [1, 1, STRIP_ROWS, STRIP_COLUMNS]
            )
        ],
        [
            helper.make_tensor_value_info(
                "response",
                TensorProto.FLOAT,
                [1, channels, STRIP_ROWS // row_stride, STRIP_COLUMNS // COLUMN_STRIDE],
            )
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edge_gate models/build_iris_encoder.py",
        producer_version="1",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    """Write the model and print its SHA-256."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent / "iris_encoder.onnx",
        help="where to write the model (default: models/iris_encoder.onnx)",
    )
    args = parser.parse_args()
    data = build_model().SerializeToString()
    args.output.write_bytes(data)
    print(f"{args.output} sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
