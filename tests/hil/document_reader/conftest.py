"""Fixtures for the document-reader contract suite: emulator and driver.

The suite runs against :class:`DocumentReaderEmulator` on a real
pseudo-terminal.

TODO: a hardware-in-loop run needs a fixture that opens a real reader and a
person presenting documents; add it with the rig, then this mark can go.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_gate.config import DocumentReaderConfig
from edge_gate.document import SerialMrzReader
from edge_gate.rig.document_reader import DocumentReaderEmulator


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[DocumentReaderEmulator]:
    """An emulated reader under a stable link in ``tmp_path``."""
    with DocumentReaderEmulator(tmp_path / "document-reader") as device:
        yield device


@pytest.fixture
def reader_config(emulator: DocumentReaderEmulator) -> DocumentReaderConfig:
    """Driver settings for the emulator, with short timeouts for tests."""
    return DocumentReaderConfig(
        port=emulator.port,
        frame_timeout_s=0.2,
        read_timeout_s=0.02,
        reconnect_min_s=0.01,
        reconnect_max_s=0.1,
    )


@pytest.fixture
def reader(reader_config: DocumentReaderConfig) -> Iterator[SerialMrzReader]:
    """The serial driver, opened on the emulator."""
    with SerialMrzReader(reader_config) as driver:
        yield driver
