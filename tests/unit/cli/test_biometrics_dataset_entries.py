"""``edge-gate biometrics`` on data set entries that are not image files.

``evaluate`` chooses a data set's images by name alone. An entry with an
image name that is a broken symbolic link, a link loop or a folder must stop
the run in the check before the first comparison, not be left out of the
figures without a word. ``compare`` reads a relative path from the current
folder, and its message for such a path that is not found names that folder.

The images are the real evaluation images (``EDGE_GATE_DATA``), reached by
symbolic links in the test's temporary folder; no image is copied.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge_gate.cli import main

FINGERPRINT_SET = ("fingerprints", "FVC2002_DB1_B")
IRIS_SET = ("iris", "casia-iris-v1")
HEADER = "image file(s) cannot be read or decoded"


def link_images(
    data_dir: Path, data_set: tuple[str, str], names: list[str]
) -> dict[str, Path]:
    """Return the real image paths of ``names`` in a data set, checked to exist."""
    source = data_dir.joinpath(*data_set)
    images = {name: source / name for name in names}
    missing = [str(path) for path in images.values() if not path.is_file()]
    if missing:
        pytest.skip(f"evaluation images missing: {', '.join(missing)}")
    return images


def fingerprint_folder(data_dir: Path, folder: Path) -> Path:
    """Link four real images of fingers 101 and 102 into ``folder``."""
    names = [
        f"{finger}_{impression}.tif" for finger in (101, 102) for impression in (1, 2)
    ]
    folder.mkdir()
    for name, image in link_images(data_dir, FINGERPRINT_SET, names).items():
        (folder / name).symlink_to(image)
    return folder


def iris_folder(data_dir: Path, folder: Path) -> Path:
    """Link three real images of eyes 001 and 002 into one sub-folder per eye."""
    for eye in ("001", "002"):
        names = [f"{eye}/{eye}_1_{index}.jpg" for index in (1, 2, 3)]
        (folder / eye).mkdir(parents=True)
        for name, image in link_images(data_dir, IRIS_SET, names).items():
            (folder / name).symlink_to(image)
    return folder


def evaluate(modality: str, folder: Path, det: Path) -> int:
    return main(
        ["biometrics", "evaluate", "--modality", modality, str(folder),
         "--det", str(det), "--json"]
    )  # fmt: skip


def test_fingerprint_broken_entries_stop(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = fingerprint_folder(data_dir, tmp_path / "fp")
    (folder / "101_3.tif").symlink_to(tmp_path / "absent.tif")
    (folder / "102_3.tif").symlink_to("102_3.tif")  # a link to itself
    (folder / "103_1.tif").mkdir()
    # Left out by name, as before: a hidden entry and a name of no image.
    (folder / ".101_4.tif").symlink_to(tmp_path / "absent.tif")
    (folder / "101_5.txt").symlink_to(tmp_path / "absent.tif")
    det = tmp_path / "det.png"

    status = evaluate("fingerprint", folder, det)

    captured = capsys.readouterr()
    assert status == 1, captured.out
    assert f"3 {HEADER}" in captured.err
    assert (
        f"'{folder / '101_3.tif'}' not found; check the path (a symbolic link "
        f"to '{tmp_path / 'absent.tif'}', which leads to no file)"
    ) in captured.err
    assert f"'{folder / '102_3.tif'}' cannot be opened" in captured.err
    assert f"'{folder / '103_1.tif'}' is a folder" in captured.err
    assert ".101_4.tif" not in captured.err
    assert "101_5.txt" not in captured.err
    assert captured.out == ""
    assert not det.exists()


def test_iris_broken_link_stops(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = iris_folder(data_dir, tmp_path / "iris")
    broken = folder / "001" / "001_2_1.jpg"
    broken.symlink_to(tmp_path / "absent.jpg")
    (folder / "002" / "002_2_1.jpg").mkdir()

    status = evaluate("iris", folder, tmp_path / "det.png")

    captured = capsys.readouterr()
    assert status == 1, captured.out
    assert f"2 {HEADER}" in captured.err
    assert f"iris image '{broken}' not found" in captured.err
    assert f"'{folder / '002' / '002_2_1.jpg'}' is a folder" in captured.err
    assert captured.out == ""


def test_iris_hidden_files_left_out(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A copy from macOS leaves "._NAME" files beside each image: metadata,
    # not images. Like the fingerprint layout, the iris layout leaves out
    # hidden entries, in eye folders and as eye folders.
    folder = iris_folder(data_dir, tmp_path / "iris")
    (folder / "001" / "._001_1_1.jpg").write_bytes(b"\x00\x05\x16\x07 metadata")
    (folder / ".thumbnails").mkdir()
    (folder / ".thumbnails" / "001_1_1.jpg").write_bytes(b"not an image")

    status = evaluate("iris", folder, tmp_path / "det.png")

    captured = capsys.readouterr()
    assert status == 0, captured.err
    figures = json.loads(captured.out)
    assert figures["samples"] == 6
    assert figures["genuine_pairs"] == 6


def compare(pairs: str) -> int:
    return main(
        ["biometrics", "compare", "--modality", "fingerprint", "--pairs", pairs]
    )


def relative_pairs_file(data_dir: Path, tmp_path: Path) -> Path:
    """Write ``set/pairs.tsv`` that lists ``mix/...`` paths relative to ``set``."""
    fingerprint_folder(data_dir, tmp_path / "set")
    (tmp_path / "set" / "mix").symlink_to(tmp_path / "set")
    pairs = tmp_path / "set" / "pairs.tsv"
    pairs.write_text("mix/101_1.tif\tmix/101_2.tif\n")
    return pairs


def test_compare_relative_path_names_cwd(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pairs = relative_pairs_file(data_dir, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    status = compare(str(pairs))

    captured = capsys.readouterr()
    assert status == 1
    assert (
        "fingerprint image 'mix/101_1.tif' not found; check the path (a relative "
        f"path is read from the current folder '{os.getcwd()}', not from the "
        "pairs file's folder)"
    ) in captured.err
    assert captured.out == ""

    # The rule itself is unchanged: from the folder of the paths, they are found.
    monkeypatch.chdir(pairs.parent)
    status = compare(str(pairs))

    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.out.startswith("mix/101_1.tif\tmix/101_2.tif\t")


def test_stdin_relative_path_names_cwd(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pairs = relative_pairs_file(data_dir, tmp_path)
    monkeypatch.chdir(tmp_path)
    with pairs.open(encoding="utf-8") as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        status = compare("-")

    err = capsys.readouterr().err
    assert status == 1
    assert f"(a relative path is read from the current folder '{tmp_path}')" in err
    assert "pairs file" not in err


def test_compare_help_names_cwd(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["biometrics", "compare", "--help"])

    text = " ".join(capsys.readouterr().out.split())
    assert "A relative path is read from the current folder" in text
    assert "not from the folder of FILE" in text


def test_iris_misplaced_entries_stop(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In the data set folder, each of these is an eye folder or an image
    # that would otherwise be missing from the figures.
    folder = iris_folder(data_dir, tmp_path / "iris")
    (folder / "003").symlink_to(tmp_path / "absent")
    (folder / "004").symlink_to("004")  # a link to itself
    image = link_images(data_dir, IRIS_SET, ["003/003_1_1.jpg"])["003/003_1_1.jpg"]
    (folder / "003_1_1.jpg").symlink_to(image)
    (folder / "006_1_1.JPG").write_bytes(b"not decoded: the name is enough")
    # Left out, as before: a hidden entry and files without an image suffix.
    (folder / ".007").symlink_to(tmp_path / "absent")
    (folder / "README.txt").write_text("notes on the set\n")
    det = tmp_path / "det.png"

    status = evaluate("iris", folder, det)

    captured = capsys.readouterr()
    assert status == 1, captured.out
    assert f"'{folder}' has 4 entry(ies) that should be eye folders" in captured.err
    assert (
        f"'{folder / '003'}' is a symbolic link to '{tmp_path / 'absent'}', "
        "which leads to no folder"
    ) in captured.err
    assert f"'{folder / '004'}' is a symbolic link loop (to '004')" in captured.err
    for name in ("003_1_1.jpg", "006_1_1.JPG"):
        assert (
            f"'{folder / name}' has an image name but is outside any eye folder; "
            "move it into the folder of its eye, or remove it"
        ) in captured.err
    assert ".007" not in captured.err
    assert "README.txt" not in captured.err
    assert captured.out == ""
    assert not det.exists()


def test_iris_linked_eye_folder_used(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An eye folder may be a link to a folder, and notes may sit beside them.
    elsewhere = iris_folder(data_dir, tmp_path / "elsewhere")
    folder = tmp_path / "iris"
    folder.mkdir()
    (folder / "001").symlink_to(elsewhere / "001")
    (folder / "002").symlink_to(elsewhere / "002")
    (folder / "README.txt").write_text("notes on the set\n")

    status = evaluate("iris", folder, tmp_path / "det.png")

    captured = capsys.readouterr()
    assert status == 0, captured.err
    figures = json.loads(captured.out)
    assert figures["samples"] == 6
