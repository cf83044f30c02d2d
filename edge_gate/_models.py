"""Find, verify and open the ONNX models shipped in ``models/``.

``models/manifest.json`` lists every model with its file, SHA-256, input
names, shapes and dtypes, source and licence, and holds each modality's
calibrated thresholds. A model whose hash differs from the manifest is never
loaded. Sessions run on the CPU execution provider, named explicitly, with a
fixed thread count.

Manifest layout (format_version 1)::

    {"format_version": 1,
     "models": {"NAME": {"file": "NAME.onnx", "sha256": "...",
                         "inputs": {"INPUT": {"shape": [...], "dtype": "float32"}},
                         "source": "...", "licence": "...", "card": "..."}},
     "thresholds": {"MODALITY": {"threshold": 0.5, "target_fmr": 0.001,
                                 "calibration_set": "...",
                                 "fmr_curve": [[score, fmr], ...]}}}
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_gate.config import setting_text
from edge_gate.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
_ONNX_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "float16"}


def find_models_dir(configured: str = "") -> Path:
    """Return the models folder: the setting, the source checkout, or the install.

    A configured folder is the only one tried, so an invalid setting stops the
    start instead of loading models other than the ones it names.

    Args:
        configured: ``[daemon] models_dir``; "" searches the shipped folders.

    Raises:
        ConfigError: ``configured`` names a folder without a manifest.
        ModelError: nothing is configured and no shipped folder has a
            manifest.
    """
    if configured:
        return _configured_models_dir(configured)
    candidates = [Path(__file__).resolve().parents[1] / "models"]
    candidates.append(Path(sys.prefix) / "share" / "edge_gate" / "models")
    for candidate in candidates:
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    searched = ", ".join(str(c) for c in candidates)
    raise ModelError(f"no {MANIFEST_NAME} found in {searched}; set [daemon] models_dir")


def _configured_models_dir(configured: str) -> Path:
    folder = Path(configured)
    if (folder / MANIFEST_NAME).is_file():
        return folder
    if not folder.exists():
        problem = "the folder does not exist"
    elif not folder.is_dir():
        problem = "it is not a folder"
    else:
        problem = f"the folder contains no {MANIFEST_NAME}"
    raise ConfigError(
        f"{setting_text('daemon', 'models_dir', configured)}: {problem}. Set it "
        f"to the folder that contains {MANIFEST_NAME} and the ONNX models, or "
        "remove the setting to use the installed models"
    )


@dataclass(frozen=True)
class Threshold:
    """A modality's shipped decision threshold and its calibration."""

    threshold: float
    target_fmr: float
    calibration_set: str
    fmr_curve: tuple[tuple[float, float], ...]


def load_manifest(models_dir: Path) -> dict[str, Any]:
    """Read the manifest of ``models_dir``.

    Raises:
        ModelError: the manifest is missing or not valid JSON.
    """
    path = models_dir / MANIFEST_NAME
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read model manifest {path}: {err}") from err
    if manifest.get("format_version") != 1:
        raise ModelError(f"{path}: unsupported format_version, expected 1")
    return manifest


def load_threshold(models_dir: Path, modality: str) -> Threshold:
    """Return the shipped threshold of ``modality`` from the manifest.

    Raises:
        ModelError: the manifest has no threshold for that modality.
    """
    entry = load_manifest(models_dir).get("thresholds", {}).get(modality)
    if not entry:
        raise ModelError(f"model manifest has no threshold for {modality!r}")
    curve = tuple((float(s), float(f)) for s, f in entry.get("fmr_curve", []))
    return Threshold(
        threshold=float(entry["threshold"]),
        target_fmr=float(entry["target_fmr"]),
        calibration_set=str(entry.get("calibration_set", "")),
        fmr_curve=curve,
    )


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_model_path(models_dir: Path, name: str) -> Path:
    """Return the path of model ``name`` after checking its SHA-256.

    Raises:
        ModelError: unknown model, missing file, or hash mismatch.
    """
    entry = load_manifest(models_dir).get("models", {}).get(name)
    if entry is None:
        raise ModelError(f"model {name!r} is not in {models_dir / MANIFEST_NAME}")
    path: Path = models_dir / str(entry["file"])
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; rebuild it (models/README.md)")
    actual = sha256_file(path)
    if actual != entry["sha256"]:
        raise ModelError(
            f"model file {path} has SHA-256 {actual}, the manifest expects "
            f"{entry['sha256']}; reinstall or rebuild the model"
        )
    return path


def open_session(models_dir: Path, name: str, threads: int = 1) -> Any:
    """Open an ONNX Runtime session for ``name`` on the CPU provider.

    Args:
        models_dir: folder holding the manifest and models.
        name: the model's manifest key.
        threads: intra-op threads (1 on the benchmark core, up to 4 on a Pi).

    Raises:
        ModelError: hash mismatch, or ONNX Runtime cannot load the file, or
            its inputs differ from the manifest.
    """
    import onnxruntime as ort

    path = verified_model_path(models_dir, name)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:  # onnxruntime raises its own untyped errors
        raise ModelError(f"ONNX Runtime cannot load {path}: {err}") from err
    expected = load_manifest(models_dir)["models"][name].get("inputs", {})
    actual = {i.name: i for i in session.get_inputs()}
    for input_name, spec in expected.items():
        if input_name not in actual:
            raise ModelError(f"model {name!r} has no input {input_name!r}")
        dtype = str(spec.get("dtype", ""))
        # ONNX Runtime names element types the ONNX way: float32 is "float".
        ort_type = f"tensor({_ONNX_TYPE_NAMES.get(dtype, dtype)})"
        if dtype and ort_type != actual[input_name].type:
            raise ModelError(
                f"model {name!r} input {input_name!r} is {actual[input_name].type}, "
                f"the manifest expects {dtype}"
            )
    logger.info("loaded model %s from %s", name, path)
    return session
