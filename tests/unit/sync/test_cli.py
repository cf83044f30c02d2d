"""``edge-gate sync``, ``templates`` and ``publish`` through the real parser."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_gate.cli import main
from edge_gate.fingerprint import FingerprintTemplate
from edge_gate.iris import IrisTemplate
from edge_gate.sync import Publisher


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def input_line(number: int, **extra: Any) -> str:
    rng = np.random.default_rng(number)
    iris = IrisTemplate(
        code=rng.random((16, 128, 2)) < 0.5,
        mask=rng.random((16, 128)) < 0.9,
        quality=0.9,
    ).to_bytes()
    minutiae = np.column_stack(
        [
            rng.uniform(0, 255, 5),
            rng.uniform(0, 287, 5),
            rng.uniform(0, 6, 5),
            rng.integers(0, 2, 5),
            rng.uniform(0, 1, 5),
        ]
    ).astype(np.float32)
    finger = FingerprintTemplate(minutiae, width=256, height=288).to_bytes()
    value = {
        "person_id": f"P{number}",
        "documents": [
            {
                "issuing_state": "UTO",
                "document_number": f"X{number:07d}",
                "expiry": "2031-01-01",
            }
        ],
        "enrolment_expiry": "2030-01-01",
        "fingerprints": {"right_index": {"template_b64": b64(finger)}},
        "irises": {"left": {"template_b64": b64(iris)}},
        **extra,
    }
    return json.dumps(value)


def test_publish_sync_templates(
    tmp_path: Path,
    gate_toml: Any,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(
        "# enrolments\n"
        + "\n".join([input_line(1), input_line(2, watchlisted=True), ""])
    )
    toml = gate_toml(tmp_path / "gate.toml", configure(http_server.url))

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )
    assert status == 0
    assert "published version 1: 2 records" in capsys.readouterr().out

    assert main(["sync", "--config", str(toml)]) == 0
    assert "updated from version 0 to 1" in capsys.readouterr().out
    assert main(["sync", "--config", str(toml)]) == 0
    assert "current at version 1" in capsys.readouterr().out

    assert main(["templates", "--config", str(toml), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 1
    assert report["enrolments"] == 2
    assert report["watchlisted"] == 1
    assert report["usable"] is True
    assert report["age_s"] >= 0

    assert main(["templates", "--config", str(toml)]) == 0
    assert "usable" in capsys.readouterr().out


def test_sync_rejected_update_exits_1(
    tmp_path: Path,
    gate_toml: Any,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher.publish([records(1)])
    toml = gate_toml(tmp_path / "gate.toml", configure(http_server.url))
    assert main(["sync", "--config", str(toml)]) == 0
    publisher.publish([records(1), records(2)])
    http_server.substitutions["timestamp.json"] = b"{}"
    capsys.readouterr()

    assert main(["sync", "--config", str(toml)]) == 1

    error = capsys.readouterr().err
    assert "rejected the update" in error
    assert "keeps template version 1" in error


def test_sync_unreachable_exits_1(
    tmp_path: Path,
    gate_toml: Any,
    publisher: Publisher,
    configure: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    del publisher
    toml = gate_toml(tmp_path / "gate.toml", configure("http://127.0.0.1:9/"))

    assert main(["sync", "--config", str(toml)]) == 1

    error = capsys.readouterr().err
    assert "server unreachable" in error
    assert "no verified update yet" in error


def test_sync_invalid_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "gate.toml"
    toml.write_text("[sync]\nretries = -1\n")

    assert main(["sync", "--config", str(toml)]) == 2
    assert "retries" in capsys.readouterr().err


def test_sync_missing_key_exits_2(
    tmp_path: Path,
    gate_toml: Any,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    del publisher
    config = configure(http_server.url)
    toml = gate_toml(tmp_path / "gate.toml", config)
    Path(config.store.key_file).unlink()

    assert main(["sync", "--config", str(toml)]) == 2
    assert "not found" in capsys.readouterr().err


def test_publish_invalid_input_lists_lines(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(
        "\n".join([input_line(1), "{not json", input_line(3, watchlisted="no")])
    )

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "2 invalid enrolment record(s); nothing was published" in error
    assert "records.jsonl:2: not valid JSON" in error
    assert "records.jsonl:3: watchlisted must be true or false" in error
    assert publisher.version == 0


def test_publish_rejects_unreadable_templates(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_iris = json.loads(input_line(2, watchlisted=True))
    bad_iris["irises"]["left"] = {"template_b64": "AAAA"}
    bad_finger = json.loads(input_line(3))
    bad_finger["fingerprints"]["right_index"] = {"template_b64": b64(b"EGFP")}
    records = tmp_path / "records.jsonl"
    lines = [input_line(1), json.dumps(bad_iris), json.dumps(bad_finger)]
    records.write_text("\n".join(lines))

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "2 invalid enrolment record(s); nothing was published" in error
    assert "records.jsonl:2: irises.left: iris template has 3 bytes" in error
    assert "records.jsonl:3: fingerprints.right_index: fingerprint template" in error
    assert publisher.version == 0


def test_publish_duplicate_document_names_lines(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "records.jsonl"
    lines = [input_line(1), "# a comment", input_line(2), input_line(1, person_id="Q1")]
    records.write_text("\n".join(lines) + "\n")

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "1 invalid enrolment record(s); nothing was published" in error
    assert (
        f"{records}:4: documents[0] (issuing state UTO) is also a document of "
        "enrolment P1, the record on line 1; list each document in one "
        "enrolment only"
    ) in error
    assert "X0000001" not in error
    assert publisher.version == 0


def test_publish_duplicate_id_names_lines(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "records.jsonl"
    lines = [
        input_line(1),
        input_line(2, revoked="no"),
        input_line(3),
        "",
        input_line(4, person_id="P3"),
    ]
    records.write_text("\n".join(lines) + "\n")

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "2 invalid enrolment record(s); nothing was published" in error
    problems = [line.strip() for line in error.splitlines()[1:]]
    # Problems are listed in line order, whichever check found them.
    assert problems == [
        f"{records}:2: revoked must be true or false, got 'no'",
        f"{records}:5: enrolment id P3 is already used by the record on line 3; "
        "give each enrolment its own id",
    ]
    assert publisher.version == 0


def test_publish_deeply_nested_line_names_line(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "records.jsonl"
    lines = [input_line(1), "[" * 100_000, input_line(3)]
    records.write_text("\n".join(lines) + "\n")

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "internal error" not in error
    assert "1 invalid enrolment record(s); nothing was published" in error
    assert f"{records}:2: not valid JSON: arrays or objects nest too deeply" in error
    assert publisher.version == 0


def test_publish_init_refresh_rotate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "pub"

    assert main(["publish", "init", "--dir", str(folder)]) == 0
    assert "sync.trusted_root_file" in capsys.readouterr().out
    assert main(["publish", "init", "--dir", str(folder)]) == 1
    assert "already contains a publisher" in capsys.readouterr().err
    assert main(["publish", "refresh", "--dir", str(folder)]) == 0
    assert main(["publish", "rotate", "--dir", str(folder), "--role", "root"]) == 0
    assert "new root key" in capsys.readouterr().out
    assert (folder / "repository" / "metadata" / "2.root.json").exists()
    assert list((folder / "keys").glob("root.pem.retired-*"))


def test_publish_uninitialised_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish", "refresh", "--dir", str(tmp_path / "none")]) == 1
    assert "publish init" in capsys.readouterr().err


def test_publish_gate_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gate.key"

    assert main(["publish", "gate-key", str(path)]) == 0
    assert len(path.read_text().strip()) == 64
    assert main(["publish", "gate-key", str(path)]) == 1
    assert "never overwritten" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--timestamp-expiry-h", "0"),
        ("--timestamp-expiry-h", "inf"),
        ("--timestamp-expiry-h", "nan"),
        ("--timestamp-expiry-h", "0.01"),
        ("--metadata-expiry-days", "1e12"),
        ("--metadata-expiry-days", "-3"),
        ("--root-expiry-days", "0.00001"),
        ("--root-expiry-days", "1e12"),
        ("--root-expiry-days", "soon"),
    ],
)
def test_publish_expiry_out_of_range_is_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    folder = tmp_path / "pub"

    with pytest.raises(SystemExit) as stopped:
        main(["publish", "init", "--dir", str(folder), option, value])

    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}: must be a number from" in error
    assert repr(value) in error
    assert not folder.exists()


def test_publish_refresh_expiry_out_of_range_is_usage_error(
    publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(publisher.workdir)

    with pytest.raises(SystemExit) as stopped:
        main(["publish", "refresh", "--dir", folder, "--timestamp-expiry-h", "inf"])

    assert stopped.value.code == 2
    assert "--timestamp-expiry-h: must be a number from" in capsys.readouterr().err


def test_publish_expiry_help_states_the_bounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["publish", "refresh", "--help"])

    shown = " ".join(capsys.readouterr().out.split())
    assert "0.25 to 744 hours" in shown
    assert "0.0416667 to 366 days" in shown
    assert "1 to 3660 days" in shown


def test_publish_empty_input_refused(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(publisher.workdir)
    full = tmp_path / "full.jsonl"
    full.write_text("\n".join(input_line(n) for n in range(1, 6)) + "\n")
    assert main(["publish", "records", "--dir", folder, "--input", str(full)]) == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("# header only\n\n")
    capsys.readouterr()

    status = main(["publish", "records", "--dir", folder, "--input", str(empty)])

    assert status == 1
    error = capsys.readouterr().err
    assert "empty.jsonl contains no enrolment record; nothing was published" in error
    assert Publisher(publisher.workdir).version == 1


def test_publish_partial_input_refused_without_allow_delete(
    tmp_path: Path,
    gate_toml: Any,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = str(publisher.workdir)
    full = tmp_path / "full.jsonl"
    lines = [input_line(n) for n in range(1, 5)] + [input_line(5, watchlisted=True)]
    full.write_text("\n".join(lines) + "\n")
    assert main(["publish", "records", "--dir", folder, "--input", str(full)]) == 0
    toml = gate_toml(tmp_path / "gate.toml", configure(http_server.url))
    assert main(["sync", "--config", str(toml)]) == 0
    partial = tmp_path / "partial.jsonl"
    partial.write_text(lines[0] + "\n")
    capsys.readouterr()

    status = main(["publish", "records", "--dir", folder, "--input", str(partial)])

    assert status == 1
    error = capsys.readouterr().err
    assert "deletes 4 of 5 published records" in error
    assert "removes 1 watchlist entry" in error
    assert "--allow-delete 4" in error
    assert main(["sync", "--config", str(toml)]) == 0
    assert "current at version 1" in capsys.readouterr().out

    status = main(
        [
            "publish",
            "records",
            "--dir",
            folder,
            "--input",
            str(partial),
            "--allow-delete",
            "4",
        ]
    )

    assert status == 0
    assert "published version 2: 1 records, 0 new or changed, 4 deleted" in (
        capsys.readouterr().out
    )


def test_publish_non_utf8_input_names_file_and_line(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "records.jsonl"
    records.write_bytes(input_line(1).encode() + b"\n\xff\xfe\n")

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "records.jsonl:2: not UTF-8 text (byte 0xff at column 1)" in error
    assert "Traceback" not in error
    assert publisher.version == 0


def test_publish_missing_input_names_file(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jsonl"

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(missing)]
    )

    assert status == 1
    assert f"cannot read {missing}" in capsys.readouterr().err


def test_publish_lists_every_problem_of_a_record(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "records.jsonl"
    bad = input_line(1, person_id="", enrolment_expiry="2033-02-30")
    records.write_text(bad + "\n" + input_line(2, revoked="no") + "\n")

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "2 invalid enrolment record(s); nothing was published; 3 problem(s)" in error
    assert "records.jsonl:1: person_id must be a non-empty string" in error
    assert "records.jsonl:1: enrolment_expiry must be a date YYYY-MM-DD" in error
    assert "records.jsonl:2: revoked must be true or false" in error


def test_templates_exit_status_follows_usability(
    tmp_path: Path,
    gate_toml: Any,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    toml = gate_toml(tmp_path / "gate.toml", configure(http_server.url))

    assert main(["templates", "--config", str(toml)]) == 1
    assert "usable" in capsys.readouterr().out
    assert main(["templates", "--config", str(toml), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["usable"] is False

    publisher.publish([records(1)])
    assert main(["sync", "--config", str(toml)]) == 0
    assert main(["templates", "--config", str(toml)]) == 0


def iris_b64(shape: tuple[int, int, int], valid_cells: int) -> dict[str, str]:
    """Return an iris template entry with the first ``valid_cells`` cells valid."""
    rng = np.random.default_rng(7)
    mask = np.zeros(shape[0] * shape[1], dtype=bool)
    mask[:valid_cells] = True
    template = IrisTemplate(
        code=rng.random(shape) < 0.5, mask=mask.reshape(shape[:2]), quality=0.9
    )
    return {"template_b64": b64(template.to_bytes())}


def finger_b64(count: int, width: int = 256, height: int = 288, dpi: int = 500) -> Any:
    """Return a fingerprint template entry with ``count`` minutiae."""
    rng = np.random.default_rng(8)
    minutiae = np.column_stack(
        [
            rng.uniform(0, width - 1, count),
            rng.uniform(0, height - 1, count),
            rng.uniform(0, 6, count),
            rng.integers(0, 2, count),
            rng.uniform(0, 1, count),
        ]
    ).astype(np.float32)
    template = FingerprintTemplate(minutiae, width=width, height=height, dpi=dpi)
    return {"template_b64": b64(template.to_bytes())}


@pytest.mark.parametrize("watchlisted", [True, False], ids=["listed", "enrolled"])
@pytest.mark.parametrize(
    ("field", "position", "entry", "message"),
    [
        pytest.param(
            "irises",
            "left",
            iris_b64((16, 64, 2), 1024),
            "irises.left: iris code grid 16 x 64 x 2 differs from the lane "
            "encoder's 16 x 128 x 2",
            id="iris-grid",
        ),
        pytest.param(
            "irises",
            "left",
            iris_b64((16, 128, 2), 0),
            "irises.left: iris template has 0 valid code bits, fewer than the 512",
            id="iris-no-mask",
        ),
        pytest.param(
            "irises",
            "left",
            iris_b64((16, 128, 2), 255),
            "irises.left: iris template has 510 valid code bits",
            id="iris-few-bits",
        ),
        pytest.param(
            "fingerprints",
            "right_index",
            finger_b64(0),
            "fingerprints.right_index: fingerprint template has 0 minutiae, fewer "
            "than the 4",
            id="no-minutiae",
        ),
        pytest.param(
            "fingerprints",
            "right_index",
            finger_b64(3),
            "fingerprints.right_index: fingerprint template has 3 minutiae",
            id="three-minutiae",
        ),
        pytest.param(
            "fingerprints",
            "right_index",
            finger_b64(20, dpi=1000),
            "fingerprints.right_index: fingerprint template is at 1000 dpi",
            id="dpi",
        ),
        pytest.param(
            "fingerprints",
            "right_index",
            finger_b64(20, width=32),
            "fingerprints.right_index: fingerprint image geometry 32x288 is "
            "outside the 64..2048 pixels",
            id="narrow",
        ),
        pytest.param(
            "fingerprints",
            "right_index",
            finger_b64(20, height=4096),
            "fingerprints.right_index: fingerprint image geometry 256x4096 is outside",
            id="tall",
        ),
    ],
)
def test_publish_rejects_unusable_templates(
    tmp_path: Path,
    publisher: Publisher,
    capsys: pytest.CaptureFixture[str],
    watchlisted: bool,
    field: str,
    position: str,
    entry: dict[str, str],
    message: str,
) -> None:
    bad = json.loads(input_line(2, watchlisted=watchlisted))
    bad[field][position] = entry
    records = tmp_path / "records.jsonl"
    records.write_text("\n".join([input_line(1), json.dumps(bad)]))

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "1 invalid enrolment record(s); nothing was published" in error
    assert f"records.jsonl:2: {message}" in error
    assert publisher.version == 0


def test_publish_accepts_limit_templates(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    # 256 valid cells are 512 bits, the matcher's minimum. 4 minutiae are the
    # extractor's minimum.
    line = json.loads(input_line(1, watchlisted=True))
    line["irises"]["left"] = iris_b64((16, 128, 2), 256)
    line["fingerprints"]["right_index"] = finger_b64(4, width=64, height=2048)
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps(line))

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 0
    assert "published version 1: 1 records" in capsys.readouterr().out
