"""The control socket's commands, carried out inside the lane daemon.

Each handler takes the request object sent by ``edge-gate COMMAND`` and
returns a JSON-ready result; it raises :class:`ControlError` or
``ValueError`` with a message for the engineer. Commands that move hardware
(``open``, ``selftest`` with ``relay``) refuse while a transaction runs and
write an audit row before they act.
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edge_gate.daemon._records import MAX_MANUAL_REASON_CHARS
from edge_gate.errors import CaptureError, EdgeGateError
from edge_gate.gate import (
    BarrierChanged,
    BeamChanged,
    FireReleaseChanged,
    InputEvent,
    KeySwitchChanged,
    TamperChanged,
)

if TYPE_CHECKING:
    from edge_gate.daemon._components import Matcher
    from edge_gate.daemon._runner import LaneRunner

logger = logging.getLogger(__name__)

# A device that responded within this many seconds passes the self-test.
RESPONSE_MAX_AGE_S = 5.0
# Maximum length of a manual opening's reason: the audit field's size less the
# longest refusal-row prefix, so the opening and refusal rows keep all of it.
MAX_REASON_CHARS = MAX_MANUAL_REASON_CHARS
# The range of ``log``'s row limit (the audit query's own bounds).
MAX_LOG_LIMIT = 100_000
# Seed of the synthetic fingerprint and eye the self-test runs the models on.
# Both samples of seed 1 yield a template with the shipped models.
SELF_TEST_SEED = 1


class FieldCommands:
    """Handlers for ``status``, ``devices``, ``selftest``, ``open``, ``log``."""

    def __init__(self, runner: LaneRunner) -> None:
        self._runner = runner

    def handlers(self) -> dict[str, Callable[[Mapping[str, Any]], Any]]:
        """Return the command table for the control server."""
        return {
            "status": lambda request: self._runner.status(),
            "devices": lambda request: self._runner.devices(),
            "selftest": self.selftest,
            "open": self.open,
            "log": self.log,
            "log_verify": self.log_verify,
        }

    def log_verify(self, request: Mapping[str, Any]) -> Any:
        """Check the open audit log's hash chain and whether its path still names it.

        A chain can be intact in a file that was deleted or moved away, so
        the result carries ``file_problem``: the ``audit_file`` hold's
        reason, or "" while the path names the open file.
        """
        del request
        audit = self._runner.audit
        result = audit.verify().to_json_dict()
        result["file_problem"] = audit.file_problem or audit.head_write_problem
        return result

    def open(self, request: Mapping[str, Any]) -> Any:
        """Unlock for one passage; ``reason`` is required and recorded.

        Raises:
            ValueError: ``reason`` is not a non-empty text, or
                :func:`reason_problem` rejects it.
        """
        reason = request.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(
                f"reason {reason!r:.80} is not usable; send a non-empty text "
                "(edge-gate open --reason TEXT)"
            )
        problem = reason_problem(reason)
        if problem is not None:
            raise ValueError(f"reason {problem}")
        return self._runner.manual_open(reason)

    def log(self, request: Mapping[str, Any]) -> Any:
        """Return audit rows filtered by time (ISO 8601) and outcome."""
        return self.query_audit(self._runner.audit, request)

    @staticmethod
    def query_audit(audit: Any, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Query an audit log with a request's filters, as JSON rows.

        Raises:
            ValueError: a time is not ISO 8601, a filter is not text, or the
                limit is not a whole number from 1 to MAX_LOG_LIMIT.
        """
        limit = filters.get("limit")
        if limit is None:
            limit = 100
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValueError(
                f"limit {limit!r} is not a whole number; send 1 to {MAX_LOG_LIMIT}"
            )
        if not 1 <= limit <= MAX_LOG_LIMIT:
            raise ValueError(
                f"limit {limit} is out of range; send 1 to {MAX_LOG_LIMIT}"
            )
        entries = audit.query(
            since=_parse_time(filters.get("since"), "since"),
            until=_parse_time(filters.get("until"), "until"),
            outcome=_text_filter(filters.get("outcome"), "outcome"),
            kind=_text_filter(filters.get("kind"), "kind"),
            limit=limit,
        )
        return [entry.to_json_dict() for entry in entries]

    def selftest(self, request: Mapping[str, Any]) -> Any:
        """Check every device, the models and the stores; pulse the relay
        only when ``relay`` is the JSON value true.

        Returns:
            A list of ``{"check", "ok", "detail"}`` results.

        Raises:
            ValueError: ``relay`` is present but not true or false, checked
                before any test runs.
        """
        # Only a JSON boolean may open the barrier: "false" or 1 is a
        # malformed request, not a request to pulse.
        relay = request.get("relay", False)
        if not isinstance(relay, bool):
            raise ValueError(
                f"relay {relay!r:.80} is not true or false; send "
                '{"command": "selftest", "relay": true} to pulse the relay, '
                "or leave relay out"
            )
        runner = self._runner
        results: list[dict[str, Any]] = []

        def check(name: str, ok: bool, detail: str) -> None:
            results.append({"check": name, "ok": bool(ok), "detail": detail})

        # Serial devices and the camera pass when their worker has them open
        # and they responded lately. The workers own the ports, so the
        # self-test opens none itself.
        for worker_name, device in (
            ("document-reader", "document_reader"),
            ("fingerprint", "fingerprint"),
            ("iris", "iris_camera"),
        ):
            check(device, *_device_responds(runner, worker_name))

        for name, matcher in runner.matchers.items():
            check(f"{name}_model", *_model_extracts(name, matcher))

        # Stores. An intact chain in a file that its path no longer names, or
        # without its head file, still fails.
        verify = runner.audit.verify()
        file_problem = runner.audit.file_problem or runner.audit.head_write_problem
        check(
            "audit_log",
            verify.is_intact and not file_problem,
            verify.problem
            or file_problem
            or f"{verify.rows_checked} rows, chain intact",
        )
        status = runner.status()
        templates = status.get("templates", {})
        check(
            "templates",
            "templates" not in status["holds"],
            f"version {templates.get('version')}, {templates.get('enrolments')} "
            "enrolments"
            + (
                f"; {status['holds']['templates']}"
                if "templates" in status["holds"]
                else ""
            ),
        )
        check(
            "clock",
            "clock" not in status["holds"],
            status["holds"].get("clock", "trusted"),
        )

        # GPIO: read every input level; the relay moves only on request.
        turnstile = runner.turnstile
        try:
            levels = turnstile.read_inputs()
            check("gpio_inputs", True, ", ".join(describe_input(e) for e in levels))
        except EdgeGateError as err:
            check("gpio_inputs", False, str(err))
        if relay is True:
            try:
                opened = runner.manual_open("self-test: relay pulse")
                check(
                    "relay",
                    True,
                    f"unlock pulse sent (audit row {opened['audit_seq']})",
                )
            except EdgeGateError as err:
                check("relay", False, str(err))
        return results


def describe_input(event: InputEvent) -> str:
    """Return an input level in the words a field engineer sees on the cabinet."""
    match event:
        case FireReleaseChanged(active=active):
            return "fire release ACTIVE" if active else "fire release off"
        case BarrierChanged(closed=closed):
            return "barrier closed" if closed else "barrier OPEN"
        case BeamChanged(beam=beam, broken=broken):
            return f"{beam} beam {'broken' if broken else 'clear'}"
        case KeySwitchChanged(active=active):
            return "key switch on" if active else "key switch off"
        case TamperChanged(active=active):
            return "tamper loop OPEN" if active else "tamper loop closed"
    return type(event).__name__


def _model_extracts(name: str, matcher: Matcher) -> tuple[bool, str]:
    """Run one modality's model on its synthetic sample; pass on a template.

    The sample must pass every check before inference (a blank image does
    not), so a template proves that the model ran and its output decoded.
    """
    try:
        sample = _self_test_sample(name).copy()
    except KeyError:
        return False, f"no self-test sample for modality {name!r}"
    started = time.monotonic()
    try:
        template = matcher.extract(sample)
    except CaptureError as err:
        return False, f"no template from the self-test sample: {err}"
    except Exception as err:  # supervision point: report, then run the next check
        logger.exception("self-test of the %s model failed", name)
        return False, f"model failed: {type(err).__name__}: {err}"
    elapsed_ms = (time.monotonic() - started) * 1000.0
    if template is None:
        return False, "the model returned no template for the self-test sample"
    return True, f"model ran on a synthetic sample in {elapsed_ms:.0f} ms"


@functools.cache
def _self_test_sample(modality: str) -> npt.NDArray[np.uint8]:
    """Return a synthetic image that yields a template (cached per process).

    Raises:
        KeyError: no sample exists for ``modality``.
    """
    # Imported here: the generator is needed only by the self-test.
    from edge_gate.rig.synthetic import SyntheticFingerprints, SyntheticIrises

    if modality == "fingerprint":
        return SyntheticFingerprints(SELF_TEST_SEED).impression(0, 2, 0)
    if modality == "iris":
        return SyntheticIrises(SELF_TEST_SEED).capture(0, 0, 0)
    raise KeyError(modality)


def reason_problem(reason: str) -> str | None:
    """Return why a manual opening's reason cannot be recorded, or None.

    The reason goes into the audit log and onto engineers' terminals
    (``edge-gate log``), so it must be one line of printable text with at
    least one letter or digit. Control characters could forge lines or move
    the cursor. Bidirectional overrides could make it read differently than
    it is stored, and other format characters (zero-width spaces and joiners,
    direction marks) are invisible, so a reason made of them looks empty.

    Returns:
        The problem, worded to follow the subject "reason" or "--reason".
    """
    if not reason.strip():
        return "is empty; write why the barrier is opened"
    if len(reason) > MAX_REASON_CHARS:
        return f"has {len(reason)} characters; shorten it to at most {MAX_REASON_CHARS}"
    for index, character in enumerate(reason):
        category = unicodedata.category(character)
        if category == "Cs":
            # Bytes that are not UTF-8 reach argv as lone surrogates.
            return (
                f"is not valid UTF-8 text (character {index + 1} is an undecodable "
                "byte or a lone surrogate); retype it as UTF-8 text, and check "
                "the terminal's locale"
            )
        if category in _UNPRINTABLE_CATEGORIES or character in _BIDI_CONTROLS:
            return (
                f"contains the control character U+{ord(character):04X} at "
                f"character {index + 1}; write it as plain text on one line"
            )
        if category == "Cf":
            return (
                f"contains the invisible format character U+{ord(character):04X} "
                f"at character {index + 1}; write it as plain text on one line"
            )
    if not any(unicodedata.category(c)[0] in "LN" for c in reason):
        return (
            f"{reason!r:.80} has no letter or digit; write in words why the "
            "barrier is opened"
        )
    return None


# Control characters, line and paragraph separators.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# Bidirectional embeddings, overrides and isolates (Unicode UAX #9).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _device_responds(runner: LaneRunner, worker_name: str) -> tuple[bool, str]:
    worker = runner.device_worker(worker_name)
    if worker is None:
        return False, "no worker for this device"
    if not worker.is_connected:
        return False, "not open (unplugged or failing to open)"
    if worker.last_response_s is None:
        return True, "open; no read finished yet"
    age_s = time.monotonic() - worker.last_response_s
    # The reader responds every read timeout, the sensors only on a capture.
    if age_s > RESPONSE_MAX_AGE_S and worker_name == "document-reader":
        return False, f"open but silent for {age_s:.1f} s"
    return True, f"open; last response {age_s:.1f} s ago"


def _text_filter(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 100:
        raise ValueError(
            f"{name} {value!r:.120} is not a filter text; send a short string "
            "such as accepted"
        )
    return value


def _parse_time(value: Any, name: str) -> datetime.datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError(
            f"{name} {value!r:.120} is not an ISO 8601 time text; "
            "send e.g. 2026-03-01T08:00Z"
        )
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError as err:
        raise ValueError(
            f"{name} {value!r} is not an ISO 8601 time; use e.g. 2026-03-01T08:00Z"
        ) from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    # The audit log compares times in UTC, where an offset can pass a year edge.
    try:
        return moment.astimezone(datetime.UTC)
    except (OverflowError, ValueError):
        raise ValueError(
            f"{name} {value!r} is outside the years 1 to 9999 in UTC; send a "
            "time within them, e.g. 2026-03-01T08:00Z"
        ) from None
