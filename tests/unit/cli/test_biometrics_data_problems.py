"""``edge-gate biometrics evaluate`` on files and folders it cannot use.

A file or folder that cannot be read is a problem of the data set. The
command stops before any comparison and names each path, instead of
counting the file as a failure to enrol. Each test runs the real command in
a child process, because root reads a file of mode 000. As root, the child
runs without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
STAND_IN = Path(__file__).with_name("fingerprint_stand_in.py")
EXTRACT_MARK = "stand-in: extract"


def write_png(path: Path, grey_level: int) -> Path:
    """Write a 64 x 64 greyscale PNG of one grey level."""
    pixels = np.full((64, 64), grey_level, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def fingerprint_set(folder: Path, fingers: int, impressions: int) -> Path:
    """Write an FVC-named data set in which finger N's images have grey level 30 N."""
    folder.mkdir()
    for finger in range(1, fingers + 1):
        for impression in range(1, impressions + 1):
            write_png(folder / f"{finger}_{impression}.png", 30 * finger)
    return folder


def run_unprivileged(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run a Python command without the capabilities that bypass file modes."""
    command = [sys.executable, *arguments]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, and setpriv (util-linux) is missing")
        dropped = "-dac_override,-dac_read_search"
        command = [setpriv, f"--bounding-set={dropped}", *command]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def restore_modes() -> Iterator[list[tuple[Path, int]]]:
    """List of paths and original modes, restored after the test so cleanup can run."""
    changed: list[tuple[Path, int]] = []
    yield changed
    for path, mode in reversed(changed):
        path.chmod(mode)


def lock(path: Path, restore: list[tuple[Path, int]], mode: int = 0) -> None:
    restore.append((path, path.stat().st_mode & 0o7777))
    path.chmod(mode)


def test_evaluate_unreadable_image_stops(
    tmp_path: Path, restore_modes: list[tuple[Path, int]]
) -> None:
    data = fingerprint_set(tmp_path / "set", fingers=7, impressions=3)
    locked = data / "4_2.png"
    lock(locked, restore_modes)
    det = tmp_path / "det.png"

    completed = run_unprivileged(
        str(STAND_IN), "biometrics", "evaluate", "--modality", "fingerprint",
        str(data), "--det", str(det), "--json",
    )  # fmt: skip

    assert completed.returncode == 1, completed.stdout
    assert f"'{locked}' cannot be read: permission denied" in completed.stderr
    assert "not a failure to enrol" in completed.stderr
    assert EXTRACT_MARK not in completed.stderr
    assert completed.stdout == ""
    assert not det.exists()


def test_evaluate_unusable_image_stays_fte(tmp_path: Path) -> None:
    data = fingerprint_set(tmp_path / "set", fingers=7, impressions=3)
    write_png(data / "4_2.png", 0)

    completed = run_unprivileged(
        str(STAND_IN), "biometrics", "evaluate", "--modality", "fingerprint",
        str(data), "--det", str(tmp_path / "det.png"), "--json",
    )  # fmt: skip

    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout)
    assert figures["samples"] == 21
    assert figures["failure_to_enrol_rate"] == pytest.approx(1 / 21)
    assert "no template from" in completed.stderr


def test_evaluate_lists_every_bad_file(tmp_path: Path) -> None:
    data = fingerprint_set(tmp_path / "set", fingers=3, impressions=2)
    (data / "1_2.png").write_bytes(b"")
    (data / "3_1.png").write_bytes(b"")

    completed = run_unprivileged(
        str(STAND_IN), "biometrics", "evaluate", "--modality", "fingerprint",
        str(data), "--det", str(tmp_path / "det.png"),
    )  # fmt: skip

    assert completed.returncode == 1
    assert "2 image file(s) cannot be read or decoded" in completed.stderr
    assert f"'{data / '1_2.png'}' is empty (0 bytes)" in completed.stderr
    assert f"'{data / '3_1.png'}' is empty (0 bytes)" in completed.stderr
    assert EXTRACT_MARK not in completed.stderr


def test_evaluate_unreadable_eye_folder_named(
    tmp_path: Path, restore_modes: list[tuple[Path, int]]
) -> None:
    data = tmp_path / "iris"
    for eye in ("001_L", "002_L", "003_L"):
        (data / eye).mkdir(parents=True)
        for index in (1, 2):
            write_png(data / eye / f"{index}.png", 100)
    locked = data / "002_L"
    lock(locked, restore_modes)

    # The real command, because listing the data set fails before any model loads.
    completed = run_unprivileged(
        "-m", "edge_gate", "biometrics", "evaluate", "--modality", "iris",
        str(data), "--det", str(tmp_path / "det.png"),
    )  # fmt: skip

    assert completed.returncode == 1
    assert f"cannot list the data set folder '{locked}'" in completed.stderr
    assert "Permission denied" in completed.stderr
    assert "read and execute permission" in completed.stderr
    assert "[Errno 13]" not in completed.stderr


def test_evaluate_checks_det_folder_first(
    tmp_path: Path, restore_modes: list[tuple[Path, int]]
) -> None:
    data = fingerprint_set(tmp_path / "set", fingers=3, impressions=2)
    plots = tmp_path / "plots"
    plots.mkdir()
    lock(plots, restore_modes, 0o555)

    completed = run_unprivileged(
        str(STAND_IN), "biometrics", "evaluate", "--modality", "fingerprint",
        str(data), "--det", str(plots / "det.png"),
    )  # fmt: skip

    assert completed.returncode == 1
    assert f"--det '{plots / 'det.png'}': cannot create a file" in completed.stderr
    assert EXTRACT_MARK not in completed.stderr
    assert completed.stdout == ""
    assert list(plots.iterdir()) == []


def test_evaluate_truncated_images_stop(tmp_path: Path) -> None:
    # A truncated file is a problem of the data set. Counted as a failure
    # to enrol, it raised the FTE rate and the FNMR of the run instead.
    data = fingerprint_set(tmp_path / "set", fingers=7, impressions=3)
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    for name, image_format in (("2_2.jpg", "JPEG"), ("5_1.png", "PNG")):
        (data / name.replace(".jpg", ".png")).unlink(missing_ok=True)
        Image.fromarray(pixels).save(data / name, image_format)
        encoded = (data / name).read_bytes()
        (data / name).write_bytes(encoded[: len(encoded) // 2])
    write_png(data / "6_3.png", 0)

    completed = run_unprivileged(
        str(STAND_IN), "biometrics", "evaluate", "--modality", "fingerprint",
        str(data), "--det", str(tmp_path / "det.png"), "--json",
    )  # fmt: skip

    assert completed.returncode == 1, completed.stdout
    assert "2 image file(s) cannot be read or decoded" in completed.stderr
    assert f"'{data / '2_2.jpg'}' is truncated or corrupt" in completed.stderr
    assert f"'{data / '5_1.png'}' is truncated or corrupt" in completed.stderr
    assert "6_3.png" not in completed.stderr
    assert EXTRACT_MARK not in completed.stderr
    assert completed.stdout == ""
