"""Load the one TOML configuration file into frozen dataclasses.

The file has one table per component (``document_reader``, ``fingerprint``,
``iris``, ``turnstile``, ``policy``, ``store``, ``sync``, ``daemon``,
``audit``). Each table maps onto one frozen dataclass below. A key that is
unknown, of the wrong type or outside its bounds adds one message to the
:class:`~edge_gate.errors.ConfigError` raised at the end, so that every problem
is reported in one pass.

Precedence: the dataclass defaults, then the file, then command-line flags the
caller applies with :func:`dataclasses.replace`. The only environment variable
read here is ``EDGE_GATE_CONFIG``, the file's path.

Bounds live in each field's metadata: ``min`` and ``max`` for numbers,
``choices`` is implied by ``Literal`` annotations.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_gate.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/edge_gate/edge-gate.toml")
CONFIG_ENV = "EDGE_GATE_CONFIG"


def bounded(default: Any, low: float | None = None, high: float | None = None) -> Any:
    """Return a dataclass field with a default and inclusive numeric bounds."""
    return field(default=default, metadata={"min": low, "max": high})


PathKind = Literal["required", "optional", "credential", "optional_credential"]


def path_setting(default: str, kind: PathKind = "required") -> Any:
    """Return a dataclass field for a file system path read from the file.

    The path must be absolute, because the daemon's working folder is ``/``
    under systemd and the folder the command was started in otherwise.
    ``optional`` kinds also take "" (not set), and ``credential`` kinds also
    take ``credential:NAME``.
    """
    return field(default=default, metadata={"path": kind})


# A lane id goes into every audit row and journal line, so it is one short
# word: no spaces, newlines or other characters that could split a line.
LANE_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The prefix of a key setting that names a systemd credential of the unit.
# The same as edge_gate.store's CREDENTIAL_PREFIX, repeated so that loading
# the configuration imports no store code.
CREDENTIAL_PREFIX = "credential:"


def credential_name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name a systemd credential, or None.

    The key reader opens ``$CREDENTIALS_DIRECTORY/NAME``, so the name must be
    one file name in that folder: not empty, ``.`` or ``..``, and without ``/``
    or NUL. The configuration check and the key reader both use this check.
    """
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        return (
            f"the credential name {name!r} is invalid: it must be one file name "
            "(not empty, '.' or '..', and no '/'); give the name from the "
            "unit's LoadCredential= line, such as credential:template.key"
        )
    return None


@dataclass(frozen=True)
class DocumentReaderConfig:
    """Serial document reader (desk OCR reader or its emulator)."""

    port: str = path_setting("/dev/edge-gate/document-reader")
    baudrate: int = bounded(9600, 300, 4_000_000)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    framing: Literal["auto", "lines", "stx_etx", "length_checksum"] = "auto"
    max_frame_bytes: int = bounded(1024, 64, 65_536)
    frame_timeout_s: float = bounded(0.5, 0.05, 10.0)
    read_timeout_s: float = bounded(0.1, 0.01, 1.0)
    reconnect_min_s: float = bounded(0.05, 0.01, 10.0)
    reconnect_max_s: float = bounded(1.0, 0.05, 60.0)
    step_timeout_s: float = bounded(30.0, 1.0, 600.0)
    # Named tolerances for known national deviations from ICAO 9303, from
    # edge_gate.document.TOLERANCES. Each use adds a warning to the parse.
    tolerances: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Imported here: edge_gate.document imports this module.
        from edge_gate.document._parse import TOLERANCES

        unknown = sorted(set(self.tolerances) - TOLERANCES)
        if unknown:
            raise ValueError(
                f"tolerances {unknown} are unknown; known: {sorted(TOLERANCES)}"
            )
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"reconnect_min_s = {self.reconnect_min_s} is above "
                f"reconnect_max_s = {self.reconnect_max_s}"
            )


@dataclass(frozen=True)
class FingerprintConfig:
    """UART fingerprint module (header EF01 family) and the matcher."""

    port: str = path_setting("/dev/edge-gate/fingerprint")
    baudrate: int = bounded(57600, 9600, 115_200)
    profile: Literal["r307", "as608", "zfm20", "r503"] = "r307"
    address: int = bounded(0xFFFFFFFF, 0, 0xFFFFFFFF)
    password: int = bounded(0, 0, 0xFFFFFFFF)
    capture_timeout_s: float = bounded(15.0, 1.0, 120.0)
    max_attempts: int = bounded(3, 1, 10)
    min_quality: float = bounded(0.2, 0.0, 1.0)
    # Wait for one acknowledge packet; an image upload gets its own deadline
    # from the image size and baud rate.
    reply_timeout_s: float = bounded(1.0, 0.1, 10.0)
    # Pause between GenImg polls while no finger is on the sensor.
    poll_interval_s: float = bounded(0.1, 0.01, 2.0)
    # Restarts of an image upload after a corrupt or lost data packet.
    upload_retries: int = bounded(2, 0, 5)
    # Try the other standard baud rates when the configured one stays silent.
    probe_baudrates: bool = True


@dataclass(frozen=True)
class IrisConfig:
    """Iris camera (V4L2 or a directory of images) and the matcher."""

    source: Literal["v4l2", "directory"] = "v4l2"
    device: str = path_setting("/dev/edge-gate/iris-camera")
    # Folder the rig writes eye images into (source = "directory").
    directory: str = path_setting("", "optional")
    frame_width: int = bounded(640, 160, 4096)
    frame_height: int = bounded(480, 120, 4096)
    # Frames read per capture; the sharpest one is encoded.
    frames_per_capture: int = bounded(5, 1, 60)
    capture_timeout_s: float = bounded(15.0, 1.0, 120.0)
    max_attempts: int = bounded(3, 1, 10)
    # Overall ISO/IEC 29794-6 quality in [0, 1] below which the lane
    # recaptures.
    min_quality: float = bounded(0.3, 0.0, 1.0)
    # ONNX Runtime threads of the iris encoder.
    threads: int = bounded(1, 1, 8)
    # How each frame is turned before encoding, so that the eye appears as
    # the enrolment camera saw it. A mirrored eye never matches its
    # enrolment, because its iris code runs the other way round. "mirror"
    # undoes a camera that delivers mirror images or looks through a mirror;
    # "rotate_180" undoes a camera mounted upside down; "flip_vertical" does
    # both.
    orientation: Literal["as_is", "mirror", "rotate_180", "flip_vertical"] = "as_is"


@dataclass(frozen=True)
class TurnstileConfig:
    """GPIO wiring of the exit barrier (BCM pin numbers) and its alarm limits.

    Outputs are named by meaning. With ``lock_type = "fail_secure"`` (power
    to open), the output on ``unlock_pin`` is active only while unlocking.
    With ``"fail_safe"`` (power to hold), the same pin drives the hold
    circuit, which is active while locked and dropped to unlock. Inputs are
    read through the pull named by ``input_pull``, and each ``*_active_high``
    gives the level that means "active" (beam broken, barrier closed, key
    on, tamper open).
    """

    pin_factory: Literal["lgpio", "mock"] = "lgpio"
    lock_type: Literal["fail_secure", "fail_safe"] = "fail_secure"
    unlock_mode: Literal["pulse", "hold"] = "pulse"
    unlock_pulse_s: float = bounded(0.5, 0.1, 10.0)
    passage_timeout_s: float = bounded(10.0, 2.0, 120.0)
    unlock_pin: int = bounded(17, 0, 53)
    unlock_active_high: bool = True
    # Lamps, buzzer and silent alarm share one active level.
    indicators_active_high: bool = True
    green_pin: int = bounded(22, 0, 53)
    red_pin: int = bounded(23, 0, 53)
    buzzer_pin: int = bounded(24, 0, 53)
    silent_alarm_pin: int = bounded(25, 0, 53)
    input_pull: Literal["up", "down", "none"] = "up"
    barrier_closed_pin: int = bounded(5, 0, 53)
    # A closed switch to ground reads low through the pull-up.
    barrier_closed_active_high: bool = False
    entrance_beam_pin: int = bounded(6, 0, 53)
    inside_beam_pin: int = bounded(13, 0, 53)
    exit_beam_pin: int = bounded(19, 0, 53)
    # Level of a beam receiver's output when the beam is broken.
    beams_active_high: bool = True
    fire_release_pin: int = bounded(26, 0, 53)
    # Normally closed: a contact to ground held closed while there is no fire,
    # so a broken wire also reads as a fire release.
    fire_release_normally_closed: bool = True
    key_switch_pin: int = bounded(20, 0, 53)
    key_switch_active_high: bool = False
    tamper_pin: int = bounded(21, 0, 53)
    # Normally closed tamper loop to ground: opening it reads high.
    tamper_active_high: bool = True
    # Alarm limits. These defaults are estimates; tune them on the lane.
    barrier_held_open_s: float = bounded(15.0, 2.0, 600.0)
    stuck_beam_s: float = bounded(300.0, 10.0, 3600.0)
    buzzer_s: float = bounded(3.0, 0.1, 60.0)
    silent_alarm_s: float = bounded(3.0, 0.1, 60.0)
    # Input levels are re-read this often, since edges can be missed.
    input_poll_s: float = bounded(0.1, 0.01, 1.0)

    def __post_init__(self) -> None:
        """Reject two functions wired to one GPIO line.

        Raises:
            ValueError: names every pin number used more than once.
        """
        users: dict[int, list[str]] = {}
        for item in dataclasses.fields(self):
            if item.name.endswith("_pin"):
                users.setdefault(getattr(self, item.name), []).append(item.name)
        shared = [
            f"GPIO{pin} is used by {' and '.join(names)}"
            for pin, names in sorted(users.items())
            if len(names) > 1
        ]
        if shared:
            raise ValueError(
                "each pin may serve one function: "
                + "; ".join(shared)
                + "; give each its own pin"
            )


@dataclass(frozen=True)
class PolicyConfig:
    """Decision policy (which modalities must pass, and how) and the lane's
    step timeouts that no device section covers."""

    mode: Literal["both", "either", "fused", "fallback"] = "both"
    # Stricter target false-match rate for the remaining modality in
    # "fallback" mode, after the other failed max_attempts captures.
    fallback_fmr: float = bounded(1e-5, 1e-9, 1e-2)
    fused_fmr: float = bounded(1e-4, 1e-9, 1e-2)
    lookup_timeout_s: float = bounded(5.0, 0.5, 60.0)
    # Slack beyond a sensor's capture timeout before the lane gives up on it.
    capture_grace_s: float = bounded(5.0, 0.5, 60.0)
    scoring_timeout_s: float = bounded(10.0, 0.5, 120.0)
    watchlist_timeout_s: float = bounded(10.0, 0.5, 120.0)
    # How long "see an officer" stays on the display after a referral.
    referral_display_s: float = bounded(5.0, 1.0, 120.0)


@dataclass(frozen=True)
class StoreConfig:
    """Where the SQLite files live and how templates are keyed at rest."""

    state_dir: str = path_setting("/var/lib/edge_gate")
    # A file path, or credential:NAME for a systemd credential of the unit.
    key_file: str = path_setting("/etc/edge_gate/template.key", "credential")
    # How far the clock may step back behind the latest trusted time seen
    # and still count as trustworthy (NTP corrections), in seconds.
    clock_max_backward_s: float = bounded(300.0, 0.0, 86_400.0)


@dataclass(frozen=True)
class SyncConfig:
    """Template update client (TUF)."""

    # The repository root: metadata/ and targets/ lie under it.
    repository_url: str = "https://templates.invalid/repository/"
    # A file path, or credential:NAME for a systemd credential of the unit.
    fleet_key_file: str = path_setting("/etc/edge_gate/fleet.key", "credential")
    trusted_root_file: str = path_setting("/etc/edge_gate/root.json")
    # PEM CA certificates for HTTPS; empty trusts the system's store.
    ca_file: str = path_setting("", "optional")
    # Templates stay usable this long past their update metadata's expiry.
    max_offline_age_h: float = bounded(24.0, 0.0, 24.0 * 365)
    # Attempts after the first one, for transport failures only.
    retries: int = bounded(3, 0, 20)
    # Wait for a connection or for the next bytes.
    timeout_s: float = bounded(30.0, 1.0, 600.0)
    # Total time one file's download may take.
    download_timeout_s: float = bounded(600.0, 1.0, 86_400.0)
    # Pause before the first retry; it doubles per retry up to the maximum.
    backoff_s: float = bounded(2.0, 0.0, 600.0)
    backoff_max_s: float = bounded(60.0, 0.0, 3600.0)
    max_download_bytes: int = bounded(512 * 1024 * 1024, 1024, 8 * 1024**3)

    def __post_init__(self) -> None:
        if self.backoff_s > self.backoff_max_s:
            raise ValueError(
                f"backoff_s = {self.backoff_s} is above backoff_max_s = "
                f"{self.backoff_max_s}; the first pause between retries cannot "
                "be longer than the longest, so lower backoff_s or raise "
                "backoff_max_s"
            )


@dataclass(frozen=True)
class DaemonConfig:
    """The lane daemon's process settings."""

    # UNIX socket for the field commands; its folder is the runtime directory.
    control_socket: str = path_setting("/run/edge_gate/control.sock")
    # Members of this group may use the control socket; "" means root only.
    control_group: str = "edge-gate"
    models_dir: str = path_setting("", "optional")
    # 1 to 64 characters of A-Z, a-z, 0-9, ".", "_" and "-" (LANE_ID_PATTERN).
    lane_id: str = field(default="lane-1", metadata={"pattern": LANE_ID_PATTERN})
    # ONNX Runtime intra-op threads per model (up to 4 on a Pi 4 or 5).
    model_threads: int = bounded(1, 1, 8)
    # A worker that makes no progress for this long stops the watchdog pings.
    worker_stall_s: float = bounded(10.0, 1.0, 300.0)
    # Seconds between device path checks when udev sends no event.
    device_check_interval_s: float = bounded(2.0, 0.1, 60.0)
    # Listen to udev events (off only where no netlink socket is available).
    use_udev: bool = True
    # Refuse service until the clock is trusted (never behind the latest
    # time the gate has persisted); off only on a bench without an RTC.
    require_trusted_clock: bool = True
    log_level: Literal["WARNING", "INFO", "DEBUG"] = "INFO"


@dataclass(frozen=True)
class AuditConfig:
    """The audit log (``audit.db`` in the store's state directory)."""

    retention_days: int = bounded(90, 1, 3650)
    # Hours between retention runs while the daemon runs (and one at start).
    prune_interval_h: float = bounded(24.0, 0.1, 24.0 * 30)


@dataclass(frozen=True)
class GateConfig:
    """The whole configuration, one attribute per component table."""

    document_reader: DocumentReaderConfig = DocumentReaderConfig()
    fingerprint: FingerprintConfig = FingerprintConfig()
    iris: IrisConfig = IrisConfig()
    turnstile: TurnstileConfig = TurnstileConfig()
    policy: PolicyConfig = PolicyConfig()
    store: StoreConfig = StoreConfig()
    sync: SyncConfig = SyncConfig()
    daemon: DaemonConfig = DaemonConfig()
    audit: AuditConfig = AuditConfig()


def resolve_config_path(cli_path: str | None) -> Path:
    """Return the configuration path: the flag, then ``EDGE_GATE_CONFIG``,
    then the default under /etc."""
    if cli_path:
        return Path(cli_path)
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str]) -> GateConfig:
    """Read and validate one configuration file.

    Args:
        path: the TOML file.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file is missing, not TOML, or has invalid keys; the
            message lists every problem.
    """
    config_path = Path(path)
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        from_env = os.environ.get(CONFIG_ENV)
        origin = f" (named by {CONFIG_ENV})" if from_env == str(path) else ""
        raise ConfigError(
            f"configuration file {config_path}{origin} not found: pass --config "
            f"FILE or set {CONFIG_ENV} to an existing file"
        ) from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"configuration file {config_path} is not UTF-8 text (byte "
            f"0x{err.object[err.start]:02x} at offset {err.start}); TOML files "
            "must be UTF-8, so save it as UTF-8 (iconv -f LATIN1 -t UTF-8 "
            "converts a Latin-1 file) or retype the line"
        ) from err
    except OSError as err:
        raise ConfigError(
            f"cannot read configuration file {config_path}: "
            f"{err.strerror or err}; check the path and its permissions"
        ) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{config_path} is not valid TOML: {err}") from err
    return config_from_mapping(raw, source=str(config_path))


def config_from_mapping(raw: dict[str, Any], source: str = "<config>") -> GateConfig:
    """Validate a parsed TOML document; see :func:`load_config`."""
    problems: list[str] = []
    sections: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(GateConfig)}
    for name, table in raw.items():
        if name not in known:
            problems.append(f"[{name}]: unknown section; known: {', '.join(known)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"[{name}]: must be a table, got {type(table).__name__}")
            continue
        section_type = _section_type(name)
        sections[name] = _build_section(section_type, name, table, problems)
    if problems:
        listing = "\n".join(f"  {source}: {p}" for p in problems)
        raise ConfigError(
            f"invalid configuration ({len(problems)} problem(s)):\n{listing}",
            tuple(problems),
        )
    return GateConfig(**sections)


def _section_type(name: str) -> type[Any]:
    hints = typing.get_type_hints(GateConfig)
    section_type: type[Any] = hints[name]
    return section_type


def _build_section(
    section_type: type[Any], section: str, table: dict[str, Any], problems: list[str]
) -> Any:
    hints = typing.get_type_hints(section_type)
    fields = {f.name: f for f in dataclasses.fields(section_type)}
    values: dict[str, Any] = {}
    problems_before = len(problems)
    for key, value in table.items():
        if key not in fields:
            problems.append(
                f"[{section}] {key}: unknown key; known: {', '.join(fields)}"
            )
            continue
        error = _check_value(hints[key], fields[key].metadata, value)
        if error:
            problems.append(f"[{section}] {key} = {_toml_text(value)}: {error}")
            continue
        if isinstance(value, list):
            values[key] = tuple(value)
        elif hints[key] is float:
            values[key] = float(value)
        else:
            values[key] = value
    if len(problems) > problems_before:
        # Checks across keys would see a rejected key's default and could
        # report a problem the file does not have.
        return section_type()
    try:
        built = section_type(**values)
    except (TypeError, ValueError) as err:
        problems.append(f"[{section}]: {err}")
        return section_type()
    problem = _file_problem(built)
    if problem is not None:
        problems.append(f"[{section}]: {problem}")
    return built


def _file_problem(section: Any) -> str | None:
    """Return a problem of a section that only a configuration file can have.

    A config object built in code may leave the iris folder empty, and
    opening the camera then fails with its own message.
    """
    is_iris = isinstance(section, IrisConfig)
    if is_iris and section.source == "directory" and not section.directory:
        return (
            'directory = "" but source = "directory" reads eye images from '
            "that folder; set directory to the absolute path of the folder "
            'the rig writes into, or set source = "v4l2" for a camera'
        )
    return None


def setting_text(section: str, key: str, value: Any) -> str:
    """Format a setting for error messages, e.g. ``[store] state_dir = "/x"``."""
    return f"[{section}] {key} = {_toml_text(value)}"


def _toml_text(value: Any) -> str:
    """Return ``value`` written as it would appear in the TOML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def _check_value(hint: Any, metadata: Any, value: Any) -> str | None:
    """Return why ``value`` does not fit ``hint`` and its bounds, or None."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices or isinstance(value, bool):
            return f"must be one of {', '.join(_toml_text(c) for c in choices)}"
        return None
    if origin is tuple:
        (item_type, *_rest) = typing.get_args(hint)
        if not isinstance(value, list) or not all(
            isinstance(item, item_type) for item in value
        ):
            return f"must be a list of {item_type.__name__}"
        return None
    if origin in (types.UnionType, typing.Union):
        return None
    if hint is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        # TOML allows nan and inf, which slip past every bound comparison.
        if not math.isfinite(value):
            return "must be a finite number"
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
    elif hint is str:
        if not isinstance(value, str):
            return "must be a string"
        return _check_text(metadata, value)
    low, high = metadata.get("min"), metadata.get("max")
    if low is not None and value < low:
        return f"must be at least {low}"
    if high is not None and value > high:
        return f"must be at most {high}"
    return None


def _check_text(metadata: Any, value: str) -> str | None:
    """Return why a text setting breaks its path or pattern rule, or None."""
    pattern = metadata.get("pattern")
    if pattern is not None and not pattern.fullmatch(value):
        return (
            "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-', "
            'such as "lane-1"'
        )
    kind = metadata.get("path")
    if kind is None:
        return None
    credential = " or credential:NAME" if "credential" in kind else ""
    if not value:
        if kind.startswith("optional"):
            return None
        return f"is empty; give an absolute path (starting with /){credential}"
    if "credential" in kind and value.startswith(CREDENTIAL_PREFIX):
        return credential_name_problem(value.removeprefix(CREDENTIAL_PREFIX))
    if "\0" in value:
        return f"contains a NUL character; give an absolute path{credential}"
    if not os.path.isabs(value):
        return (
            "is a relative path, which would depend on the folder the daemon "
            f"starts in; give an absolute path (starting with /){credential}"
        )
    return None
