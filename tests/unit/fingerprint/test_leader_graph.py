"""The LEADER graph rewrite of models/build_fingerprint_models.py (step 4).

Small graphs spell GELU and channel LayerNormalization the way tf2onnx does.
The fused graphs must compute the same outputs on ONNX Runtime, and graphs
that differ from the pattern must stay as they are. The shipped
model must hold no pattern left to fuse.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

MODELS = Path(__file__).resolve().parents[3] / "models"
CHANNELS = 8


def load_build_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_fingerprint_models", MODELS / "build_fingerprint_models.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def scalar(name: str, value: float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def gelu_nodes(x: str, out: str) -> list[onnx.NodeProto]:
    """tf2onnx's GELU: the cube taken on an NHWC copy and transposed back."""
    return [
        helper.make_node("Mul", ["half", x], ["g_half"]),
        helper.make_node("Transpose", [x], ["g_nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Pow", ["g_nhwc", "three"], ["g_cube"]),
        helper.make_node("Mul", ["cubic", "g_cube"], ["g_cubic"]),
        helper.make_node("Transpose", ["g_cubic"], ["g_back"], perm=[0, 3, 1, 2]),
        helper.make_node("Add", [x, "g_back"], ["g_sum"]),
        helper.make_node("Mul", ["root", "g_sum"], ["g_scaled"]),
        helper.make_node("Tanh", ["g_scaled"], ["g_tanh"]),
        helper.make_node("Add", ["one", "g_tanh"], ["g_one_plus"]),
        helper.make_node("Mul", ["g_half", "g_one_plus"], [out]),
    ]


def layernorm_nodes(x: str, out: str) -> list[onnx.NodeProto]:
    """tf2onnx's Keras LayerNormalization over the channels of NCHW."""
    return [
        helper.make_node("ReduceMean", [x], ["n_mean"], axes=[1], keepdims=1),
        helper.make_node("Neg", ["n_mean"], ["n_neg"]),
        helper.make_node("Reshape", ["n_mean", "n_shape"], ["n_mean4"]),
        helper.make_node("Sub", [x, "n_mean4"], ["n_diff"]),
        helper.make_node("Mul", ["n_diff", "n_diff"], ["n_square"]),
        helper.make_node("ReduceMean", ["n_square"], ["n_var"], axes=[1], keepdims=1),
        helper.make_node("Add", ["n_var", "eps"], ["n_var_eps"]),
        helper.make_node("Sqrt", ["n_var_eps"], ["n_sd"]),
        helper.make_node("Reciprocal", ["n_sd"], ["n_inv"]),
        helper.make_node("Mul", ["n_inv", "gamma"], ["n_scale"]),
        helper.make_node("Mul", [x, "n_scale"], ["n_scaled_x"]),
        helper.make_node("Mul", ["n_neg", "n_scale"], ["n_scaled_mean"]),
        helper.make_node("Add", ["n_scaled_mean", "beta"], ["n_shift"]),
        helper.make_node("Add", ["n_scaled_x", "n_shift"], [out]),
    ]


def make_model(nodes: list[onnx.NodeProto], half: float = 0.5) -> bytes:
    """A model from ``input`` (NCHW) to ``output`` with the shared constants."""
    rng = np.random.default_rng(1)
    constants = [
        scalar("half", half),
        scalar("three", 3.0),
        scalar("cubic", 0.044715),
        scalar("root", 0.7978846),
        numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "one"),
        numpy_helper.from_array(np.full((1, 1, 1, 1), 1e-3, np.float32), "eps"),
        numpy_helper.from_array(np.array([-1, 1, 0, 0], np.int64), "n_shape"),
        numpy_helper.from_array(
            rng.uniform(0.5, 1.5, (1, CHANNELS, 1, 1)).astype(np.float32), "gamma"
        ),
        numpy_helper.from_array(
            rng.normal(0, 0.2, (1, CHANNELS, 1, 1)).astype(np.float32), "beta"
        ),
    ]
    shape = [1, CHANNELS, 12, 10]
    graph = helper.make_graph(
        nodes,
        "pattern",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def run(model: bytes, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    output: np.ndarray = session.run(None, {"input": batch})[0]
    return output


def op_counts(model: bytes) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load_from_string(model).graph.node)


BATCH = np.random.default_rng(2).normal(0, 3, (1, CHANNELS, 12, 10)).astype(np.float32)


def test_layernorm_then_gelu_fused_to_same_outputs() -> None:
    build = load_build_script()
    original = make_model(
        layernorm_nodes("input", "normalised") + gelu_nodes("normalised", "output")
    )

    fused, gelus, norms = build.rewrite_graph(original)

    assert (gelus, norms) == (1, 1)
    counts = op_counts(fused)
    assert counts["FastGelu"] == 1
    assert counts["LayerNormalization"] == 1
    assert counts["Tanh"] == counts["ReduceMean"] == counts["Pow"] == 0
    np.testing.assert_allclose(run(fused, BATCH), run(original, BATCH), atol=1e-5)


def test_gelu_moved_before_transpose() -> None:
    build = load_build_script()
    original = make_model(
        layernorm_nodes("input", "normalised") + gelu_nodes("normalised", "output")
    )

    fused, _, _ = build.rewrite_graph(original)

    # Order: Transpose, LayerNormalization, FastGelu, Transpose.
    ops = [node.op_type for node in onnx.load_from_string(fused).graph.node]
    assert ops == ["Transpose", "LayerNormalization", "FastGelu", "Transpose"]
    np.testing.assert_allclose(run(fused, BATCH), run(original, BATCH), atol=1e-5)


def test_gelu_with_other_constant_left_alone() -> None:
    build = load_build_script()
    original = make_model(gelu_nodes("input", "output"), half=0.4)

    fused, gelus, norms = build.rewrite_graph(original)

    assert (gelus, norms) == (0, 0)
    assert op_counts(fused) == op_counts(original)


def test_layernorm_read_elsewhere_left_alone() -> None:
    build = load_build_script()
    # The variance also feeds the output, so the subgraph cannot go.
    nodes = [
        *layernorm_nodes("input", "normalised"),
        helper.make_node("Add", ["normalised", "n_var"], ["output"]),
    ]
    original = make_model(nodes)

    fused, gelus, norms = build.rewrite_graph(original)

    assert (gelus, norms) == (0, 0)
    np.testing.assert_allclose(run(fused, BATCH), run(original, BATCH), atol=1e-6)


def test_shipped_model_fully_fused() -> None:
    build = load_build_script()
    shipped = (MODELS / "leader.onnx").read_bytes()

    counts = op_counts(shipped)
    again, gelus, norms = build.rewrite_graph(shipped)

    assert counts["FastGelu"] == 27
    assert counts["LayerNormalization"] == 24
    assert counts["Tanh"] == 0
    assert build.gelu_before_transpose(onnx.load_from_string(shipped).graph) == 0
    # Nothing is left to fuse, so the step 5 check finds no difference.
    assert (gelus, norms) == (0, 0)
    assert build.output_difference(shipped, again) == 0.0
