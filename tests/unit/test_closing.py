"""The shared ``with`` support of drivers, emulators and stores."""

from __future__ import annotations

import pytest

from edge_gate._closing import Closing


class _Counter(Closing):
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_block_closes_and_returns_the_object() -> None:
    with _Counter() as counter:
        assert counter.closed == 0
    assert counter.closed == 1


def test_raising_block_still_closes() -> None:
    counter = _Counter()
    with pytest.raises(KeyError, match="lost"), counter:
        raise KeyError("lost")
    assert counter.closed == 1


def test_missing_close_names_the_class() -> None:
    class Forgetful(Closing):
        pass

    forgetful = Forgetful()
    with pytest.raises(NotImplementedError, match="Forgetful must define close"):
        forgetful.__exit__(None, None, None)
