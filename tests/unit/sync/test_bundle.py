"""The encrypted bundle format and the bundle index."""

from __future__ import annotations

import datetime
import io
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.errors import UpdateVerificationError
from edge_gate.store import (
    EYES,
    FINGERS,
    DocumentRecord,
    EnrolmentRecord,
    record_from_json,
    record_to_json,
)
from edge_gate.sync import (
    BundleHeader,
    BundleIndex,
    BundleRef,
    BundleWriter,
    read_bundle,
)
from edge_gate.sync._bundle import CHUNK_PLAINTEXT_BYTES, read_header
from edge_gate.sync._index import parse_index

FLEET_KEY = bytes(range(32))
HEADER = BundleHeader("delta", 7, 6, "bundles/delta-6-7.egtb")


def write(path: Path, records: Any, count: int, *, deletes: int = 0) -> Path:
    with BundleWriter(path, FLEET_KEY, HEADER) as writer:
        for n in range(deletes):
            writer.delete(f"E{n}")
        for n in range(count):
            writer.put(records(n, template_bytes=512))
    return path


def read_all(data: bytes, header: BundleHeader = HEADER, key: bytes = FLEET_KEY) -> Any:
    puts, deletes = [], []
    for chunk in read_bundle(io.BytesIO(data), key, header):
        puts.extend(chunk.puts)
        deletes.extend(chunk.deletes)
    return puts, deletes


def chunk_offsets(data: bytes) -> list[tuple[int, int]]:
    """Return (start, end) of every chunk, length prefix included."""
    _header, raw = read_header(io.BytesIO(data))
    offsets = []
    position = len(raw)
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        offsets.append((position, position + 4 + length))
        position += 4 + length
    return offsets


def test_round_trip_single_chunk(tmp_path: Path, records: Any) -> None:
    path = write(tmp_path / "b.egtb", records, 5, deletes=2)

    puts, deletes = read_all(path.read_bytes())

    assert puts == [records(n, template_bytes=512) for n in range(5)]
    assert deletes == ["E0", "E1"]


def test_round_trip_many_chunks(tmp_path: Path, records: Any) -> None:
    # Random templates do not compress, so this spans several chunks.
    count = 3 * CHUNK_PLAINTEXT_BYTES // 2000
    with BundleWriter(tmp_path / "b.egtb", FLEET_KEY, HEADER) as writer:
        expected = []
        for n in range(count):
            record = records(n)
            record = type(record)(
                **{**record.__dict__, "irises": {"left": os.urandom(1400)}}
            )
            expected.append(record)
            writer.put(record)
    data = (tmp_path / "b.egtb").read_bytes()

    puts, _deletes = read_all(data)

    assert len(chunk_offsets(data)) >= 3
    assert puts == expected


def test_bytes_do_not_reveal_templates(tmp_path: Path, records: Any) -> None:
    data = write(tmp_path / "b.egtb", records, 3).read_bytes()

    assert b"D00000001" not in data
    assert b"P000001" not in data


def test_wrong_fleet_key_rejected(tmp_path: Path, records: Any) -> None:
    data = write(tmp_path / "b.egtb", records, 3).read_bytes()

    with pytest.raises(UpdateVerificationError, match="failed authentication"):
        read_all(data, key=bytes(32))


def test_flipped_byte_rejected(tmp_path: Path, records: Any) -> None:
    data = bytearray(write(tmp_path / "b.egtb", records, 3).read_bytes())
    data[len(data) // 2] ^= 0x80

    with pytest.raises(UpdateVerificationError):
        read_all(bytes(data))


def test_renamed_bundle_rejected(tmp_path: Path, records: Any) -> None:
    data = write(tmp_path / "b.egtb", records, 3).read_bytes()
    expected = BundleHeader("delta", 8, 7, "bundles/delta-7-8.egtb")

    with pytest.raises(UpdateVerificationError, match="does not match the index"):
        read_all(data, header=expected)


def test_header_version_changed_rejected(tmp_path: Path, records: Any) -> None:
    data = bytearray(write(tmp_path / "b.egtb", records, 3).read_bytes())
    # Version is the u64 at offset 8; claim version 8 and expect it too.
    data[8:16] = (8).to_bytes(8, "big")
    claimed = BundleHeader("delta", 8, 6, HEADER.name)

    with pytest.raises(UpdateVerificationError, match="failed authentication"):
        read_all(bytes(data), header=claimed)


def test_truncated_before_final_chunk_rejected(tmp_path: Path, records: Any) -> None:
    data = _multi_chunk(tmp_path, records)
    offsets = chunk_offsets(data)

    with pytest.raises(UpdateVerificationError, match="without its final chunk"):
        read_all(data[: offsets[-1][0]])


def test_truncated_inside_chunk_rejected(tmp_path: Path, records: Any) -> None:
    data = write(tmp_path / "b.egtb", records, 3).read_bytes()

    with pytest.raises(UpdateVerificationError, match="truncated"):
        read_all(data[:-10])


def test_reordered_chunks_rejected(tmp_path: Path, records: Any) -> None:
    data = _multi_chunk(tmp_path, records)
    (a, b), (c, d) = chunk_offsets(data)[:2]
    swapped = data[:a] + data[c:d] + data[a:b] + data[d:]

    with pytest.raises(UpdateVerificationError, match="chunk 0 failed authentication"):
        read_all(swapped)


def test_dropped_middle_chunk_rejected(tmp_path: Path, records: Any) -> None:
    data = _multi_chunk(tmp_path, records)
    (a, b) = chunk_offsets(data)[1]

    with pytest.raises(UpdateVerificationError, match="chunk 1 failed authentication"):
        read_all(data[:a] + data[b:])


def test_data_after_final_chunk_rejected(tmp_path: Path, records: Any) -> None:
    data = write(tmp_path / "b.egtb", records, 3).read_bytes()

    with pytest.raises(UpdateVerificationError, match="after its final chunk"):
        read_all(data + b"\0")


def test_not_a_bundle_rejected() -> None:
    with pytest.raises(UpdateVerificationError, match="not a template bundle"):
        read_all(b"PK\x03\x04" + bytes(40))


def _multi_chunk(tmp_path: Path, records: Any) -> bytes:
    path = tmp_path / "multi.egtb"
    with BundleWriter(path, FLEET_KEY, HEADER) as writer:
        for n in range(3 * CHUNK_PLAINTEXT_BYTES // 2000):
            record = records(n)
            writer.put(
                type(record)(
                    **{**record.__dict__, "irises": {"left": os.urandom(1400)}}
                )
            )
    data = path.read_bytes()
    assert len(chunk_offsets(data)) >= 3
    return data


# Index

PUBLISHED = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)


def make_index(deltas: list[tuple[int, int]], version: int = 5) -> BundleIndex:
    return BundleIndex(
        version=version,
        published_at=PUBLISHED,
        record_count=10,
        full=BundleRef(f"bundles/full-{version}.egtb", "full", version, 0),
        deltas=tuple(
            BundleRef(f"bundles/delta-{a}-{b}.egtb", "delta", b, a) for a, b in deltas
        ),
    )


def test_index_round_trip() -> None:
    index = make_index([(3, 4), (4, 5)])

    assert parse_index(index.to_json()) == index


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        pytest.param(3, [(3, 4), (4, 5)], id="two-behind"),
        pytest.param(4, [(4, 5)], id="one-behind"),
        pytest.param(2, None, id="before-oldest-delta"),
        pytest.param(5, [], id="current"),
    ],
)
def test_delta_chain(current: int, expected: list[tuple[int, int]] | None) -> None:
    chain = make_index([(3, 4), (4, 5)]).delta_chain(current)

    if expected is None:
        assert chain is None
    else:
        assert chain is not None
        assert [(ref.base_version, ref.version) for ref in chain] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(b"not json", "invalid", id="not-json"),
        pytest.param(b'{"format": 2}', "format 2", id="other-format"),
        pytest.param(
            make_index([]).to_json().replace(b"full-5", b"../../etc"),
            "bundles/NAME",
            id="path-escape",
        ),
        pytest.param(
            make_index([(5, 6)]).to_json(), "beyond the index version", id="delta-ahead"
        ),
        pytest.param(
            make_index([]).to_json().replace(b'"version": 5', b'"version": -1', 1),
            "invalid",
            id="negative-version",
        ),
    ],
)
def test_invalid_index_rejected(text: bytes, message: str) -> None:
    with pytest.raises(UpdateVerificationError, match=message):
        parse_index(text)


# Property: any valid record survives the bundle and the JSON layout.

IDENTIFIERS = st.text(
    alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabc0123456789._:@-"),
    min_size=1,
    max_size=20,
)
DATES = st.dates(
    min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2099, 12, 31)
)
TEMPLATES = st.binary(min_size=1, max_size=300)
DOCUMENTS = st.builds(
    DocumentRecord,
    # Stored documents carry no trailing fillers (the validator drops them).
    issuing_state=st.from_regex(r"[A-Z]([A-Z<]?[A-Z])?", fullmatch=True),
    document_number=st.from_regex(
        r"[A-Z0-9]([A-Z0-9<]{0,28}[A-Z0-9])?", fullmatch=True
    ),
    expiry=DATES,
)


@st.composite
def enrolment_records(draw: st.DrawFn) -> EnrolmentRecord:
    documents = draw(
        st.lists(
            DOCUMENTS,
            max_size=3,
            unique_by=lambda d: (d.issuing_state, d.document_number),
        )
    )
    fingerprints = draw(
        st.dictionaries(st.sampled_from(FINGERS), TEMPLATES, max_size=3)
    )
    irises = draw(
        st.dictionaries(
            st.sampled_from(EYES), TEMPLATES, min_size=0 if fingerprints else 1
        )
    )
    return EnrolmentRecord(
        enrolment_id=draw(IDENTIFIERS),
        person_id=draw(IDENTIFIERS),
        documents=tuple(documents),
        enrolment_expiry=draw(DATES),
        watchlisted=draw(st.booleans()) if documents else True,
        revoked=draw(st.booleans()),
        fingerprints=fingerprints,
        irises=irises,
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(enrolment_records(), max_size=8), st.lists(IDENTIFIERS, max_size=4))
def test_bundle_round_trip_property(
    puts: list[EnrolmentRecord], deletes: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "b.egtb"
        with BundleWriter(path, FLEET_KEY, HEADER) as writer:
            for enrolment_id in deletes:
                writer.delete(enrolment_id)
            for record in puts:
                writer.put(record)
        data = path.read_bytes()

    read_puts, read_deletes = read_all(data)

    assert read_puts == puts
    assert read_deletes == deletes
    for record in puts:
        assert record_from_json(record_to_json(record)) == record


def test_deeply_nested_line_rejected() -> None:
    from edge_gate.sync._bundle import _parse_chunk

    line = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(UpdateVerificationError, match=r"line 1: .*nest too deeply"):
        _parse_chunk(line, "bundles/full-1.egtb", 0)
