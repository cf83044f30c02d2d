"""Contract of FingerprintSensor: the driver against the module (or emulator).

Each test states one behaviour the lane relies on, including the failure
modes seen in the field: stray bytes, corrupt and lost packets, stalled
uploads, unplugging.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge_gate.errors import (
    CaptureError,
    DeviceInitError,
    DeviceIOError,
    DeviceTimeoutError,
)
from edge_gate.fingerprint import emulate_sensor_image
from edge_gate.fingerprint._protocol import build_packet
from edge_gate.rig.fingerprint_module import FingerprintModuleEmulator


def expected_image(
    image: npt.NDArray[np.uint8], width: int, height: int
) -> npt.NDArray[np.uint8]:
    return emulate_sensor_image(image, width, height)


@pytest.mark.parametrize(
    ("profile", "size"),
    [
        pytest.param("r307", (256, 288), id="r307-256x288"),
        pytest.param("as608", (256, 288), id="as608-256x288"),
        pytest.param("zfm20", (256, 288), id="zfm20-256x288"),
        pytest.param("r503", (192, 192), id="r503-192x192-from-prodinfo"),
    ],
)
def test_capture_returns_the_placed_image_at_profile_size(
    make_rig: Any, finger: npt.NDArray[np.uint8], profile: str, size: tuple[int, int]
) -> None:
    rig = make_rig(profile)
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        assert sensor.image_size == size
        emulator.place_finger(finger)
        image = sensor.capture_image(timeout_s=5)
    assert image.shape == (size[1], size[0])
    assert np.array_equal(image, expected_image(finger, *size))
    assert len(np.unique(image)) <= 16


@pytest.mark.parametrize(
    "packet_size", [32, 64, 128, 256], ids=lambda n: f"packets-{n}"
)
def test_upload_does_not_depend_on_packet_size(
    make_rig: Any, finger: npt.NDArray[np.uint8], packet_size: int
) -> None:
    rig = make_rig(packet_size=packet_size)
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        emulator.place_finger(finger)
        image = sensor.capture_image(timeout_s=5)
    assert np.array_equal(image, expected_image(finger, 256, 288))


def test_no_finger_raises_capture_error_at_the_deadline(rig: Any) -> None:
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        start = time.monotonic()
        with pytest.raises(CaptureError, match="no finger"):
            sensor.capture_image(timeout_s=0.4)
        elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < 1.5
    polls = [e for e in emulator.events if e.kind == "command" and e.detail == "0x01"]
    assert len(polls) >= 3


def test_finger_placed_while_polling_is_captured(
    rig: Any, finger: npt.NDArray[np.uint8]
) -> None:
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        with pytest.raises(CaptureError):
            sensor.capture_image(timeout_s=0.1)
        emulator.place_finger(finger)
        assert sensor.capture_image(timeout_s=2).shape == (288, 256)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("corrupt_next_image_packet", id="corrupt-data-packet"),
        pytest.param("stall_next_upload", id="stalled-upload"),
        pytest.param("corrupt_next_reply", id="corrupt-acknowledge"),
        pytest.param("drop_next_reply", id="lost-acknowledge"),
    ],
)
def test_capture_recovers_from_one_fault(
    rig: Any, finger: npt.NDArray[np.uint8], fault: str
) -> None:
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        emulator.place_finger(finger)
        getattr(emulator, fault)()
        image = sensor.capture_image(timeout_s=5)
    assert np.array_equal(image, expected_image(finger, 256, 288))
    assert any(
        e.kind.endswith(("corrupted", "stalled", "dropped")) for e in emulator.events
    )


def test_garbage_and_ready_bytes_before_replies_are_skipped(
    rig: Any, finger: npt.NDArray[np.uint8]
) -> None:
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        emulator.place_finger(finger)
        emulator.inject_garbage(b"\x55\x00\xef\x13\x37")
        time.sleep(0.05)
        image = sensor.capture_image(timeout_s=5)
        assert np.array_equal(image, expected_image(finger, 256, 288))


def test_stale_data_packets_are_not_taken_as_the_reply(
    rig: Any, finger: npt.NDArray[np.uint8]
) -> None:
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        emulator.place_finger(finger)
        emulator.inject_garbage(build_packet(0x02, b"\x00" * 128))
        time.sleep(0.05)
        assert sensor.capture_image(timeout_s=5).shape == (288, 256)
        assert sensor.dropped_packets >= 1


def test_packets_split_across_reads_are_reassembled(
    rig: Any, finger: npt.NDArray[np.uint8]
) -> None:
    emulator = rig.need_emulator()
    emulator.split_writes = True
    with rig.open() as sensor:
        emulator.place_finger(finger)
        assert sensor.capture_image(timeout_s=10).shape == (288, 256)


def test_module_that_stays_late_raises_timeout(rig: Any) -> None:
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        emulator.reply_delay_s = 0.5
        with pytest.raises(DeviceTimeoutError):
            sensor.capture_image(timeout_s=1)
        emulator.reply_delay_s = 0.0


def test_password_protected_module(
    tmp_path: Path, finger: npt.NDArray[np.uint8]
) -> None:
    link = tmp_path / "fp"
    with FingerprintModuleEmulator("r307", link, password=0x1234) as emulator:
        from edge_gate.config import FingerprintConfig
        from edge_gate.fingerprint import SerialFingerprintSensor

        good = FingerprintConfig(port=str(link), password=0x1234, probe_baudrates=False)
        with SerialFingerprintSensor(good) as sensor:
            emulator.place_finger(finger)
            assert sensor.capture_image(timeout_s=2).shape == (288, 256)
        bad = FingerprintConfig(port=str(link), password=1, probe_baudrates=False)
        with pytest.raises(DeviceInitError, match="password"):
            SerialFingerprintSensor(bad)


def test_module_at_another_address_is_reported_silent(tmp_path: Path) -> None:
    link = tmp_path / "fp"
    with FingerprintModuleEmulator("r307", link, address=0x12345678):
        from edge_gate.config import FingerprintConfig
        from edge_gate.fingerprint import SerialFingerprintSensor

        config = FingerprintConfig(
            port=str(link), probe_baudrates=False, reply_timeout_s=0.2
        )
        with pytest.raises(DeviceInitError, match="does not respond"):
            SerialFingerprintSensor(config)


def test_missing_port_is_an_init_error(tmp_path: Path) -> None:
    from edge_gate.config import FingerprintConfig
    from edge_gate.fingerprint import SerialFingerprintSensor

    with pytest.raises(DeviceInitError, match="cannot open"):
        SerialFingerprintSensor(FingerprintConfig(port=str(tmp_path / "absent")))


def test_unplug_raises_io_error_and_replug_recovers(
    rig: Any, finger: npt.NDArray[np.uint8]
) -> None:
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        emulator.unplug()
        with pytest.raises(DeviceIOError):
            sensor.capture_image(timeout_s=1)
        assert not sensor.is_open
        with pytest.raises(DeviceIOError):
            sensor.capture_image(timeout_s=1)
        emulator.replug()
        emulator.place_finger(finger)
        assert sensor.capture_image(timeout_s=2).shape == (288, 256)
        assert sensor.is_open


@pytest.mark.parametrize(
    ("profile", "switches"),
    [
        pytest.param("r503", True, id="r503-aura-ring"),
        pytest.param("as608", True, id="as608-backlight"),
        pytest.param("r307", False, id="r307-no-led-is-a-no-op"),
    ],
)
def test_led_control_where_the_module_has_it(
    make_rig: Any, profile: str, switches: bool
) -> None:
    rig = make_rig(profile)
    emulator = rig.need_emulator()
    with rig.open() as sensor:
        sensor.set_led(True)
        assert emulator.led_on is switches
        sensor.set_led(False)
        assert emulator.led_on is False


def test_close_is_idempotent(rig: Any) -> None:
    sensor = rig.open()
    sensor.close()
    sensor.close()
    assert not sensor.is_open
