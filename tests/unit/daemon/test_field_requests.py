"""Field command requests on a running lane: malformed values move nothing.

The lane runs on the rig's emulators with mock GPIO. Requests go through a
real control socket where the attack came that way, and straight to the
handlers otherwise.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_gate.daemon import ControlServer
from edge_gate.fingerprint import FingerprintExtractor
from edge_gate.iris import IrisEncoder


@pytest.fixture
def control(lane: Any) -> Iterator[Path]:
    path = Path(lane.config.daemon.control_socket)
    server = ControlServer(path, lane.runner.control_handlers(), lane.runner.events)
    server.start()
    yield path
    server.stop()


def raw_request(path: Path, line: bytes) -> dict[str, Any]:
    """Send one raw request line over the socket; return the reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(30)
        client.connect(str(path))
        client.sendall(line + b"\n")
        reply = b""
        while b"\n" not in reply:
            chunk = client.recv(65536)
            assert chunk, f"no reply; got {reply!r}"
            reply += chunk
    message: dict[str, Any] = json.loads(reply.split(b"\n", 1)[0])
    return message


def manual_opens(lane: Any) -> list[Any]:
    return [e.record for e in lane.audit() if e.record.kind == "manual_open"]


@pytest.mark.parametrize(
    "relay",
    [
        pytest.param(b'"false"', id="text-false"),
        pytest.param(b'"true"', id="text-true"),
        pytest.param(b"1", id="one"),
        pytest.param(b"0", id="zero"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[true]", id="list"),
    ],
)
def test_selftest_relay_must_be_boolean(
    lane: Any, control: Path, relay: bytes, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    reply = raw_request(control, b'{"command": "selftest", "relay": ' + relay + b"}")
    assert reply["ok"] is False
    assert f"relay {json.loads(relay)!r} is not true or false" in reply["error"]
    assert manual_opens(lane) == []
    assert lane.status()["state"] == "idle"


def test_selftest_relay_false_keeps_barrier(
    lane: Any, control: Path, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    reply = raw_request(control, b'{"command": "selftest", "relay": false}')
    assert reply["ok"] is True
    assert "relay" not in [result["check"] for result in reply["result"]]
    assert manual_opens(lane) == []


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        pytest.param("x\x1b[2J", "control character U+001B at character 2", id="esc"),
        pytest.param("two\nlines", "control character U+000A", id="newline"),
        pytest.param("nul\x00", "control character U+0000", id="nul"),
        pytest.param("bell\x07", "control character U+0007", id="bell"),
        pytest.param("c1\x9b", "control character U+009B", id="c1-csi"),
        pytest.param("ab\u2028c", "control character U+2028", id="line-separator"),
        pytest.param("abc\u202e", "control character U+202E", id="bidi-override"),
    ],
)
def test_open_rejects_control_characters(
    lane: Any, control: Path, reason: str, named: str, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    line = json.dumps({"command": "open", "reason": reason}).encode("ascii")
    reply = raw_request(control, line)
    assert reply["ok"] is False
    assert named in reply["error"]
    assert "write it as plain text on one line" in reply["error"]
    assert manual_opens(lane) == []
    assert lane.status()["state"] == "idle"


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        pytest.param("\u200b", "U+200B at character 1", id="zero-width-space"),
        pytest.param("\u200b\u200b", "U+200B at character 1", id="two-zwsp"),
        pytest.param("\u200e", "U+200E at character 1", id="lrm"),
        pytest.param("\u200f", "U+200F at character 1", id="rlm"),
        pytest.param("\ufeff", "U+FEFF at character 1", id="bom"),
        pytest.param("\u2060", "U+2060 at character 1", id="word-joiner"),
        pytest.param("crew\u00ad", "U+00AD at character 5", id="soft-hyphen"),
    ],
)
def test_open_rejects_invisible_reason(
    lane: Any, control: Path, reason: str, named: str, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    line = json.dumps({"command": "open", "reason": reason}).encode("ascii")
    reply = raw_request(control, line)
    assert reply["ok"] is False
    assert f"invisible format character {named}" in reply["error"]
    assert manual_opens(lane) == []
    assert lane.pins.pin(lane.config.turnstile.unlock_pin).state == 0
    assert lane.status()["state"] == "idle"


@pytest.mark.parametrize("reason", ["!", "--- ...", "\u00a0!\u3000"])
def test_open_needs_letter_or_digit(
    lane: Any, control: Path, reason: str, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    line = json.dumps({"command": "open", "reason": reason}).encode("ascii")
    reply = raw_request(control, line)
    assert reply["ok"] is False
    assert "has no letter or digit" in reply["error"]
    assert manual_opens(lane) == []
    assert lane.status()["state"] == "idle"


def test_open_lone_surrogate_rejected(
    lane: Any, control: Path, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    reply = raw_request(control, b'{"command": "open", "reason": "x\\ud800"}')
    assert reply["ok"] is False
    assert "field 'reason' contains the lone UTF-16 surrogate" in reply["error"]
    assert manual_opens(lane) == []
    # A later opening is recorded as usual.
    opened = raw_request(control, b'{"command": "open", "reason": "caf\\u00e9"}')
    assert opened["ok"] is True, opened
    assert [r.reason for r in manual_opens(lane)] == ["café"]


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: type) -> list[int]:
    """Count calls of ``owner._run`` (the model inference) and still run it."""
    calls: list[int] = []
    real_run = owner._run  # type: ignore[attr-defined]

    def counted(self: Any, *args: Any) -> Any:
        calls.append(1)
        return real_run(self, *args)

    monkeypatch.setattr(owner, "_run", counted)
    return calls


def test_selftest_runs_both_models(
    lane: Any, monkeypatch: pytest.MonkeyPatch, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    fingerprint_runs = count_calls(monkeypatch, FingerprintExtractor)
    iris_runs = count_calls(monkeypatch, IrisEncoder)
    results = lane.runner.control_handlers()["selftest"]({"command": "selftest"})
    checks = {result["check"]: result for result in results}
    assert checks["fingerprint_model"]["ok"], checks["fingerprint_model"]
    assert checks["iris_model"]["ok"], checks["iris_model"]
    assert "model ran on a synthetic sample" in checks["iris_model"]["detail"]
    assert fingerprint_runs
    assert iris_runs


def test_selftest_reports_broken_model(
    lane: Any, monkeypatch: pytest.MonkeyPatch, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)

    def broken(self: Any, *args: Any) -> Any:
        raise RuntimeError("ONNX Runtime session failed")

    monkeypatch.setattr(IrisEncoder, "_run", broken)
    results = lane.runner.control_handlers()["selftest"]({"command": "selftest"})
    checks = {result["check"]: result for result in results}
    assert checks["fingerprint_model"]["ok"], checks["fingerprint_model"]
    assert not checks["iris_model"]["ok"]
    assert checks["iris_model"]["detail"] == (
        "model failed: RuntimeError: ONNX Runtime session failed"
    )
