"""``edge-gate biometrics``: pair files, output lines, failures to enrol.

The modality here is a small stand-in whose templates are the image bytes,
so the command's own logic (caching, fte, output format, rates) is tested
apart from any matcher.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from edge_gate._image_file import check_image_file
from edge_gate.cli import _biometrics, main
from edge_gate.errors import CaptureError


class ByteModality:
    """Stand-in modality whose template is the file's first byte.

    Equal bytes score 1, other pairs 0.1. A file that starts with ``bad`` is
    a readable image from which the matcher makes no template (a failure to
    enrol). Files are checked by the real ``check_image_file``, so a
    missing or empty file raises ``ImageError`` as a real loader's would.
    """

    name = "bytes"

    def __init__(self) -> None:
        self.extractions = 0

    def list_samples(self, directory: Path) -> list[tuple[str, Path]]:
        return [(p.stem.split("_")[0], p) for p in sorted(directory.glob("*.img"))]

    def load_image(self, path: Path) -> npt.NDArray[np.uint8]:
        check_image_file(path, kind="bytes image")
        return np.frombuffer(path.read_bytes(), dtype=np.uint8)

    def extract(self, image: npt.NDArray[np.uint8]) -> bytes:
        self.extractions += 1
        if image.tobytes().startswith(b"bad"):
            raise CaptureError("the sample shows nothing usable")
        return bytes(image[:1])

    def compare(self, first: bytes, second: bytes) -> float:
        return 1.0 if first == second else 0.1

    def threshold(self) -> float:
        return 0.5


@pytest.fixture
def modality(monkeypatch: pytest.MonkeyPatch) -> ByteModality:
    stand_in = ByteModality()
    monkeypatch.setattr(_biometrics, "load_modality", lambda _name: stand_in)
    return stand_in


def _image(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def test_compare_prints_one_line_per_pair(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    a1 = _image(tmp_path, "1_1.img", b"a")
    a2 = _image(tmp_path, "1_2.img", b"a")
    b1 = _image(tmp_path, "2_1.img", b"b")
    unusable = _image(tmp_path, "3_1.img", b"bad")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{a1}\t{a2}\n{a1}\t{b1}\n\n{a1}\t{unusable}\n")

    status = main(
        ["biometrics", "compare", "--modality", "iris", "--pairs", str(pairs)]
    )

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0] == f"{a1}\t{a2}\t1.000000\taccept\tok"
    assert lines[1] == f"{a1}\t{b1}\t0.100000\treject\tok"
    assert lines[2] == f"{a1}\t{unusable}\t0.000000\treject\tfte"
    # Four images, of which a1 appears three times but is extracted once.
    assert modality.extractions == 4


def test_compare_malformed_line_fails(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("only-one-path\n")
    status = main(
        ["biometrics", "compare", "--modality", "iris", "--pairs", str(pairs)]
    )
    assert status == 1
    assert "line 1" in capsys.readouterr().err


def test_compare_unknown_modality_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["biometrics", "compare", "--modality", "face", "--pairs", "x"])
    assert caught.value.code == 2


def test_evaluate_counts_pairs_and_fte(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "set"
    data.mkdir()
    for identity, content in (("1", b"a"), ("2", b"b"), ("3", b"c")):
        for impression in (1, 2):
            _image(data, f"{identity}_{impression}.img", content)
    _image(data, "3_3.img", b"bad")
    det = tmp_path / "det.png"

    status = main(
        [
            "biometrics",
            "evaluate",
            "--modality",
            "iris",
            str(data),
            "--det",
            str(det),
            "--json",
        ]
    )

    figures = json.loads(capsys.readouterr().out)
    assert status == 0
    assert figures["genuine_pairs"] == 5
    assert figures["impostor_pairs"] == 16
    assert figures["failure_to_enrol_rate"] == pytest.approx(1 / 7)
    # The failed impression scores 0 against its own finger: 2 of 5 genuine
    # pairs are lost at the threshold.
    assert figures["fnmr_at_shipped_threshold"] == pytest.approx(2 / 5)
    assert figures["fmr_at_shipped_threshold"] == 0.0
    assert det.read_bytes().startswith(b"\x89PNG")


def test_compare_all_fte_fails(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{tmp_path / 'a.img'}\t{tmp_path / 'b.img'}\n")
    (tmp_path / "a.img").write_bytes(b"bad")
    (tmp_path / "b.img").write_bytes(b"bad")
    status = main(
        ["biometrics", "compare", "--modality", "iris", "--pairs", str(pairs)]
    )
    captured = capsys.readouterr()
    assert status == 1
    assert "\tfte" in captured.out
    assert "no template could be made" in captured.err


def test_evaluate_det_folder_rejected_first(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "biometrics",
            "evaluate",
            "--modality",
            "iris",
            str(tmp_path),
            "--det",
            str(tmp_path),
        ]
    )
    assert status == 1
    assert "is a folder" in capsys.readouterr().err
    assert modality.extractions == 0


def test_evaluate_det_missing_folder_rejected(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "biometrics",
            "evaluate",
            "--modality",
            "iris",
            str(tmp_path),
            "--det",
            str(tmp_path / "absent" / "det.png"),
        ]
    )
    assert status == 1
    assert "does not exist" in capsys.readouterr().err


def test_compare_reads_file_names_that_are_not_utf8(
    tmp_path: Path, modality: ByteModality, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    # A pairs file is a list of file names, and Linux names are bytes: one
    # that is not UTF-8 used to end the run with an internal error.
    folder = bytes(tmp_path)
    odd = folder + b"/caf\xe9_1.img"
    with open(odd, "wb") as handle:
        handle.write(b"a")
    plain = _image(tmp_path, "1_1.img", b"a")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_bytes(b"\xef\xbb\xbf" + bytes(plain) + b"\t" + odd + b"\n")

    status = main(
        ["biometrics", "compare", "--modality", "iris", "--pairs", str(pairs)]
    )

    captured = capsysbinary.readouterr()
    assert status == 0, captured.err
    assert captured.out == bytes(plain) + b"\t" + odd + b"\t1.000000\taccept\tok\n"


def test_compare_nul_in_path_names_the_line(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_bytes(b"# header\na.img\tb\x00.img\n")
    status = main(
        ["biometrics", "compare", "--modality", "iris", "--pairs", str(pairs)]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert "line 2" in err
    assert "NUL" in err
    assert "internal error" not in err


@pytest.mark.parametrize("command", ["compare", "evaluate"])
def test_help_lists_exit_statuses(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["biometrics", command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0" in text
    assert "2 for a usage error" in text


@pytest.mark.parametrize(
    ("modality", "layout"),
    [("fingerprint", "<finger>_<impression>"), ("iris", "one folder per eye")],
)
def test_evaluate_empty_folder_names_the_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], modality: str, layout: str
) -> None:
    (tmp_path / "scan.png").write_bytes(b"")

    status = main(["biometrics", "evaluate", "--modality", modality, str(tmp_path)])

    assert status == 1
    assert layout in capsys.readouterr().err


def _compare(pairs: Path) -> int:
    return main(["biometrics", "compare", "--modality", "iris", "--pairs", str(pairs)])


def test_compare_lists_every_bad_line(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "1_1.img"
    good.write_bytes(b"a")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(
        f"only-one-path\n{good}\t{good}\n{good} {good}\n# comment\n"
        f"{good}\t{good}\t{good}\n"
    )

    status = _compare(pairs)

    captured = capsys.readouterr()
    assert status == 1
    assert f"'{pairs}' has 3 bad line(s)" in captured.err
    assert f"'{pairs}' line 1:" in captured.err
    assert f"'{pairs}' line 3:" in captured.err
    assert f"'{pairs}' line 5:" in captured.err
    assert f"'{pairs}' line 2:" not in captured.err
    assert captured.out == ""
    assert modality.extractions == 0


def test_compare_caps_listed_bad_lines(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = _biometrics.MAX_LISTED_PROBLEMS
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("only-one-path\n" * (limit + 5))

    status = _compare(pairs)

    err = capsys.readouterr().err
    assert status == 1
    assert f"has {limit + 5} bad line(s)" in err
    assert f"line {limit}:" in err
    assert f"line {limit + 1}:" not in err
    assert "and 5 more" in err


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("", id="empty-file"),
        pytest.param("# header only\n\n", id="comments-only"),
    ],
)
def test_compare_no_pairs_is_usage_error(
    tmp_path: Path,
    modality: ByteModality,
    capsys: pytest.CaptureFixture[str],
    content: str,
) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(content)

    status = _compare(pairs)

    captured = capsys.readouterr()
    assert status == 2
    assert f"'{pairs}' lists no pair" in captured.err
    assert captured.out == ""


def test_compare_missing_image_is_data_error(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "1_1.img"
    good.write_bytes(b"a")
    missing = tmp_path / "absent.img"
    empty = tmp_path / "2_1.img"
    empty.write_bytes(b"")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{good}\t{missing}\n{good}\t{empty}\n{good}\t{good}\n")

    status = _compare(pairs)

    captured = capsys.readouterr()
    assert status == 1
    assert "2 image file(s) cannot be read or decoded" in captured.err
    assert f"'{missing}' not found" in captured.err
    assert f"'{empty}' is empty" in captured.err
    assert captured.out == ""
    assert modality.extractions == 0


def test_compare_long_bad_line_cut(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = _biometrics.MAX_QUOTED_CHARS
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("x" * 50_000 + "\n")

    status = _compare(pairs)

    err = capsys.readouterr().err
    assert status == 1
    assert f"got {'x' * limit!r}... (50,000 characters)" in err
    assert len(err) < 2 * limit + 300


def test_compare_short_bad_line_quoted_whole(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    line = "a" * _biometrics.MAX_QUOTED_CHARS
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(line + "\n")

    status = _compare(pairs)

    err = capsys.readouterr().err
    assert status == 1
    assert err.rstrip().endswith(f"got {line!r}")
    assert "characters)" not in err


def test_compare_image_path_with_trailing_space_quoted(
    tmp_path: Path, modality: ByteModality, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _image(tmp_path, "1_1.img", b"a")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{good}\t{good} \n")

    status = _compare(pairs)

    err = capsys.readouterr().err
    assert status == 1
    assert f"'{good} ' not found" in err
