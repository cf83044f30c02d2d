"""Checks of the unit files with systemd-analyze, and of the udev rules.

``systemd-analyze verify`` exits 0 after ignoring an unknown key or a bad
value, so these tests fail on any output at all. Verification runs against a
staging root that contains the units, the system's own units (for the targets
they depend on) and a stub for every executable they start, because the
programs exist on the board, not necessarily here.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
UNITS_DIR = REPO / "systemd"
UNITS = sorted(
    p.name for p in UNITS_DIR.iterdir() if p.suffix in (".service", ".timer")
)
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
MAX_EXPOSURE = 25  # tenths: an overall exposure of 2.5 or lower

requires_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not SYSTEM_UNITS.is_dir(),
    reason="systemd-analyze is not installed (Debian package systemd); "
    ".ci/run installs it",
)


def unit_settings(name: str) -> dict[str, list[str]]:
    """Return every key of a unit file with all its values, sections merged."""
    settings: dict[str, list[str]] = {}
    for raw_line in (UNITS_DIR / name).read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


def staging_root(tmp_path: Path, units_dir: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    target = root / "etc/systemd/system"
    target.mkdir(parents=True)
    for unit in units_dir.iterdir():
        shutil.copy(unit, target / unit.name)
        for command in unit_settings_from(unit).get("ExecStart", []):
            program = Path(command.lstrip("-@+!:").split()[0])
            stub = root / program.relative_to("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    return root


def unit_settings_from(path: Path) -> dict[str, list[str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    settings: dict[str, list[str]] = {}
    for section in parser.sections():
        for key, value in parser.items(section):
            settings.setdefault(key, []).append(value)
    return settings


def verify(root: Path, unit: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", unit],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@requires_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_verify_is_silent(tmp_path: Path, unit: str) -> None:
    result = verify(staging_root(tmp_path, UNITS_DIR), unit)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == ""


@requires_analyze
@pytest.mark.parametrize(
    ("original", "broken"),
    [
        pytest.param("WatchdogSec=15s", "WatchdogSecs=15s", id="unknown-key"),
        pytest.param("Type=notify", "Type=notifyy", id="bad-type"),
        pytest.param("ProtectSystem=strict", "ProtectSystem=strictly", id="bad-value"),
    ],
)
def test_verify_catches_typo(tmp_path: Path, original: str, broken: str) -> None:
    units = tmp_path / "units"
    shutil.copytree(UNITS_DIR, units)
    service = units / "edge-gate.service"
    text = service.read_text(encoding="utf-8")
    assert original in text
    service.write_text(text.replace(original, broken), encoding="utf-8")
    result = verify(staging_root(tmp_path, units), "edge-gate.service")
    assert result.stderr != ""


@requires_analyze
@pytest.mark.parametrize("unit", [u for u in UNITS if u.endswith(".service")])
def test_security_exposure_at_most_2_5(unit: str) -> None:
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            f"--threshold={MAX_EXPOSURE}",
            str(UNITS_DIR / unit),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    overall = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert overall is not None, result.stdout + result.stderr
    assert float(overall.group(1)) <= MAX_EXPOSURE / 10
    assert result.returncode == 0, result.stdout[-2000:]


def test_lane_unit_is_notify_with_watchdog() -> None:
    settings = unit_settings("edge-gate.service")
    assert settings["Type"] == ["notify"]
    assert settings["WatchdogSec"] == ["15s"]
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["RestrictAddressFamilies"] == ["AF_UNIX AF_NETLINK"]
    assert settings["IPAddressDeny"] == ["any"]
    assert settings["PrivateNetwork"] == ["no"]
    assert settings["DevicePolicy"] == ["closed"]


def test_lane_unit_device_allow_list() -> None:
    allowed = {
        value.split()[0] for value in unit_settings("edge-gate.service")["DeviceAllow"]
    }
    assert allowed == {
        "char-gpiochip",
        "char-ttyAMA",
        "char-ttyS",
        "char-ttyUSB",
        "char-ttyACM",
        "char-video4linux",
    }


def test_lane_unit_loads_drivers_of_allowed_groups() -> None:
    # A DeviceAllow= group whose driver is not loaded when the unit starts is
    # dropped without a word, so each driver module is loaded first.
    settings = unit_settings("edge-gate.service")
    wants = " ".join(settings["Wants"]).split()
    after = " ".join(settings["After"]).split()
    for module in ("cdc_acm", "usbserial", "videodev"):
        assert f"modprobe@{module}.service" in wants
        assert f"modprobe@{module}.service" in after


def test_lane_unit_writable_dirs() -> None:
    settings = unit_settings("edge-gate.service")
    assert settings["StateDirectory"] == ["edge_gate"]
    assert settings["RuntimeDirectory"] == ["edge_gate"]
    # The audit spool in the runtime directory must survive a restart.
    assert settings["RuntimeDirectoryPreserve"] == ["yes"]
    # lgpio writes a FIFO into the working directory.
    assert settings["WorkingDirectory"] == ["%t/edge_gate"]


def test_timer_starts_sync_service() -> None:
    assert unit_settings("edge-gate-sync.timer")["Unit"] == ["edge-gate-sync.service"]
    assert "sync" in unit_settings("edge-gate-sync.service")["ExecStart"][0].split()


RULES = REPO / "udev" / "99-edge-gate.rules"


def rule_lines() -> list[str]:
    text = RULES.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_rules_give_stable_names() -> None:
    links = set(re.findall(r'SYMLINK\+="([^"]+)"', RULES.read_text(encoding="utf-8")))
    assert links == {
        "edge-gate/document-reader",
        "edge-gate/fingerprint",
        "edge-gate/iris-camera",
    }


def test_rules_keep_modemmanager_off_serial() -> None:
    serial_rules = [line for line in rule_lines() if 'SUBSYSTEM=="tty"' in line]
    assert len(serial_rules) == 2
    for line in serial_rules:
        assert 'ATTRS{idVendor}=="' in line
        assert 'ATTRS{idProduct}=="' in line
        assert 'ENV{ID_MM_DEVICE_IGNORE}="1"' in line


def test_rules_grant_service_group() -> None:
    for line in rule_lines():
        if "GROUP=" in line:
            assert 'GROUP="edge-gate"' in line
            assert 'MODE="0660"' in line
    assert any('SUBSYSTEM=="gpio"' in line for line in rule_lines())


def test_rules_are_well_formed() -> None:
    # Every clause is KEY=="v", KEY!="v", KEY="v", KEY+="v" or KEY:="v".
    clause = re.compile(r'^[A-Z_]+(\{[^}]+\})?(==|!=|\+=|:=|=)"[^"]*"$')
    for line in rule_lines():
        for part in (p.strip() for p in line.split(",")):
            assert clause.match(part), f"malformed clause {part!r} in {line!r}"


UDEV_RULES_DIR = Path("/etc/udev/rules.d")


@pytest.mark.skipif(shutil.which("udevadm") is None, reason="udevadm is not installed")
@pytest.mark.skipif(
    not UDEV_RULES_DIR.is_dir() or not os.access(UDEV_RULES_DIR, os.W_OK),
    reason="/etc/udev/rules.d is missing or not writable (needs udev and root)",
)
def test_rules_parse_with_udevadm() -> None:
    # udev 252 has no "udevadm verify"; "udevadm test" parses every rules
    # file for one device and names the file and line of each bad rule.
    installed = UDEV_RULES_DIR / "99-edge-gate-test.rules"
    shutil.copy(RULES, installed)
    try:
        result = subprocess.run(
            ["udevadm", "test", "--action=add", "/class/tty/tty0"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        installed.unlink()
    # The service group is created when the package is installed on the
    # board, so udevadm on a build machine may not know it yet.
    problems = [
        line
        for line in result.stderr.splitlines()
        if installed.name in line
        and not line.startswith("Reading rules file")
        and "Unknown group 'edge-gate'" not in line
    ]
    assert problems == []


def test_lane_closed_unit_reads_configuration() -> None:
    settings = unit_settings("edge-gate-lane-closed.service")
    command = settings["ExecStart"][0].split()
    assert command[-3:] == ["lane-closed", "--config", "/etc/edge_gate/edge-gate.toml"]
    # Fixed gpioset levels ignore the configured lock type and polarity.
    assert "gpioset" not in settings["ExecStart"][0]
    assert settings["Conflicts"] == ["edge-gate.service"]
    assert "ProcSubset" not in settings
    assert settings["WorkingDirectory"] == ["%t/edge_gate-lane-closed"]


def test_sync_unit_pulls_in_time_sync() -> None:
    settings = unit_settings("edge-gate-sync.service")
    assert "time-sync.target" in " ".join(settings["After"]).split()
    assert "time-sync.target" in " ".join(settings["Wants"]).split()


def test_serial_rules_match_adapter_serial() -> None:
    # Two adapters with the same bridge chip differ only by serial number.
    serial_rules = [line for line in rule_lines() if 'SUBSYSTEM=="tty"' in line]
    for line in serial_rules:
        assert 'ATTRS{serial}=="' in line
