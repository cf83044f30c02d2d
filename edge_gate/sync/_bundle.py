"""Template bundles: enrolment records encrypted with the fleet key.

A bundle is one TUF target. It contains either a full snapshot of every
enrolment at one version or a delta from a base version. The format is a
header followed by encrypted chunks, so that neither side keeps a whole
bundle in memory:

1. Header, 24 bytes big-endian: magic ``EGTB``, format 1 (u8), kind (u8,
   0 = full, 1 = delta), two zero bytes, version (u64), base version (u64,
   0 for a full snapshot). Then the bundle name as u16 length and UTF-8.
2. Chunks, each a u32 length, then a 96-bit random nonce, then the AES-GCM
   ciphertext with its tag. The plaintext is zlib-compressed JSON lines,
   ``{"op": "put", "record": {...}}`` or ``{"op": "delete", "enrolment_id":
   "..."}``.
3. The associated data of chunk i is the header, the name, i (u32) and a
   final flag (u8). The last chunk carries the flag, so a reordered, dropped,
   duplicated or truncated chunk, a bundle renamed to another version and a
   header changed in any byte all fail to decrypt.

The TUF targets metadata already pins each bundle's length and hash; the
encryption keeps templates confidential in transit and on the web server.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_gate.errors import EnrolmentRecordError, UpdateVerificationError
from edge_gate.store import EnrolmentRecord, record_from_json, record_to_json

BundleKind = Literal["full", "delta"]

MAGIC = b"EGTB"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">4sBBxxQQ")
_KINDS: dict[BundleKind, int] = {"full": 0, "delta": 1}
_NONCE_BYTES = 12
# Plaintext collected before a chunk is sealed; bounds memory on both sides.
CHUNK_PLAINTEXT_BYTES = 1024 * 1024
# A reader rejects chunks larger than these bounds before decrypting or
# inflating them (a hostile or broken bundle cannot exhaust memory).
MAX_CHUNK_BYTES = 16 * 1024 * 1024
MAX_CHUNK_PLAINTEXT_BYTES = 64 * 1024 * 1024
MAX_NAME_BYTES = 1024


@dataclass(frozen=True)
class BundleHeader:
    """Kind, versions and name that a bundle declares (authenticated by every
    chunk)."""

    kind: BundleKind
    version: int
    base_version: int
    name: str

    def encode(self) -> bytes:
        """Serialise the header and name as written before the chunks."""
        name = self.name.encode()
        fixed = _HEADER.pack(
            MAGIC, FORMAT_VERSION, _KINDS[self.kind], self.version, self.base_version
        )
        return fixed + struct.pack(">H", len(name)) + name


@dataclass(frozen=True)
class BundleChunk:
    """The changes of one chunk: records to put and enrolment ids to delete."""

    puts: list[EnrolmentRecord]
    deletes: list[str]


def _chunk_ad(header: bytes, index: int, is_final: bool) -> bytes:
    return header + struct.pack(">IB", index, int(is_final))


class BundleWriter:
    """Write one bundle file chunk by chunk.

    Use as a context manager; leaving it without an exception writes the
    final chunk, fsyncs and closes the file.

    Args:
        path: the file to write.
        fleet_key: the 32-byte fleet key.
        header: kind, versions and name of the bundle.
    """

    def __init__(self, path: Path, fleet_key: bytes, header: BundleHeader) -> None:
        self._aead = AESGCM(fleet_key)
        self._header = header.encode()
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115
        self._file.write(self._header)
        self._buffer = io.BytesIO()
        self._index = 0
        self.records = 0

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            if exc_type is None:
                self._seal_chunk(is_final=True)
                self._file.flush()
                os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def put(self, record: EnrolmentRecord) -> None:
        """Add a record to insert or replace."""
        self._add({"op": "put", "record": record_to_json(record)})

    def delete(self, enrolment_id: str) -> None:
        """Add an enrolment id to delete."""
        self._add({"op": "delete", "enrolment_id": enrolment_id})

    def _add(self, entry: dict[str, object]) -> None:
        self._buffer.write(json.dumps(entry, separators=(",", ":")).encode())
        self._buffer.write(b"\n")
        self.records += 1
        if self._buffer.tell() >= CHUNK_PLAINTEXT_BYTES:
            self._seal_chunk(is_final=False)

    def _seal_chunk(self, *, is_final: bool) -> None:
        plaintext = zlib.compress(self._buffer.getvalue(), 6)
        nonce = os.urandom(_NONCE_BYTES)
        ad = _chunk_ad(self._header, self._index, is_final)
        sealed = nonce + self._aead.encrypt(nonce, plaintext, ad)
        self._file.write(struct.pack(">I", len(sealed)))
        self._file.write(sealed)
        self._buffer = io.BytesIO()
        self._index += 1


def read_header(stream: BinaryIO) -> tuple[BundleHeader, bytes]:
    """Read and check the header at the start of a bundle.

    Returns:
        The header and its raw bytes (part of every chunk's associated data).

    Raises:
        UpdateVerificationError: the magic, format or kind is wrong, or the
            stream ends inside the header.
    """
    fixed = _read_exact(stream, _HEADER.size, "header")
    magic, form, kind_code, version, base_version = _HEADER.unpack(fixed)
    if magic != MAGIC or form != FORMAT_VERSION:
        raise UpdateVerificationError(
            f"not a template bundle of format {FORMAT_VERSION} (magic {magic!r}, "
            f"format {form})"
        )
    kinds = {code: name for name, code in _KINDS.items()}
    if kind_code not in kinds:
        raise UpdateVerificationError(f"unknown bundle kind {kind_code}")
    (name_length,) = struct.unpack(">H", _read_exact(stream, 2, "name length"))
    if name_length > MAX_NAME_BYTES:
        raise UpdateVerificationError(f"bundle name of {name_length} bytes is too long")
    name_bytes = _read_exact(stream, name_length, "name")
    try:
        name = name_bytes.decode()
    except UnicodeDecodeError as err:
        raise UpdateVerificationError("the bundle name is not UTF-8") from err
    header = BundleHeader(kinds[kind_code], version, base_version, name)
    return header, fixed + struct.pack(">H", name_length) + name_bytes


def read_bundle(
    stream: BinaryIO, fleet_key: bytes, expected: BundleHeader
) -> Iterator[BundleChunk]:
    """Decrypt a bundle chunk by chunk and validate every record.

    Args:
        stream: the bundle file, at its start.
        fleet_key: the 32-byte fleet key.
        expected: the kind, versions and name the index promised.

    Yields:
        The changes of each chunk, in order.

    Raises:
        UpdateVerificationError: the header differs from ``expected``, a
            chunk fails to decrypt (wrong key, changed, reordered, dropped),
            the bundle ends before its final chunk or continues after it, or
            a record is invalid.
    """
    header, raw_header = read_header(stream)
    if header != expected:
        raise UpdateVerificationError(
            f"bundle header {header} does not match the index entry {expected}"
        )
    aead = AESGCM(fleet_key)
    index = 0
    while True:
        length_bytes = stream.read(4)
        if len(length_bytes) < 4:
            raise UpdateVerificationError(
                f"bundle {header.name} ends after {index} chunks without its "
                "final chunk"
            )
        (length,) = struct.unpack(">I", length_bytes)
        if not _NONCE_BYTES + 16 <= length <= MAX_CHUNK_BYTES:
            raise UpdateVerificationError(
                f"bundle {header.name}: chunk {index} has an invalid length {length}"
            )
        sealed = _read_exact(stream, length, f"chunk {index}")
        plaintext, is_final = _open_chunk(aead, raw_header, index, sealed, header.name)
        yield _parse_chunk(plaintext, header.name, index)
        if is_final:
            break
        index += 1
    if stream.read(1):
        raise UpdateVerificationError(
            f"bundle {header.name} has data after its final chunk"
        )


def _open_chunk(
    aead: AESGCM, raw_header: bytes, index: int, sealed: bytes, name: str
) -> tuple[bytes, bool]:
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    for is_final in (False, True):
        try:
            compressed = aead.decrypt(
                nonce, ciphertext, _chunk_ad(raw_header, index, is_final)
            )
        except InvalidTag:
            continue
        inflater = zlib.decompressobj()
        try:
            plaintext = inflater.decompress(compressed, MAX_CHUNK_PLAINTEXT_BYTES)
        except zlib.error as err:
            raise UpdateVerificationError(
                f"bundle {name}: chunk {index} does not inflate: {err}"
            ) from err
        if inflater.unconsumed_tail or not inflater.eof:
            raise UpdateVerificationError(
                f"bundle {name}: chunk {index} inflates beyond "
                f"{MAX_CHUNK_PLAINTEXT_BYTES} bytes or is incomplete"
            )
        return plaintext, is_final
    raise UpdateVerificationError(
        f"bundle {name}: chunk {index} failed authentication (wrong fleet key, "
        "or the bundle was changed)"
    )


def _parse_chunk(plaintext: bytes, name: str, index: int) -> BundleChunk:
    chunk = BundleChunk(puts=[], deletes=[])
    for line_number, line in enumerate(plaintext.splitlines(), start=1):
        where = f"bundle {name}, chunk {index}, line {line_number}"
        try:
            entry = json.loads(line)
        except ValueError as err:
            raise UpdateVerificationError(f"{where}: not JSON: {err}") from err
        except RecursionError:
            raise UpdateVerificationError(
                f"{where}: not JSON this gate can read: arrays or objects nest "
                "too deeply"
            ) from None
        operation = entry.get("op") if isinstance(entry, dict) else None
        if operation == "put":
            try:
                chunk.puts.append(record_from_json(entry.get("record")))
            except EnrolmentRecordError as err:
                raise UpdateVerificationError(f"{where}: {err}") from err
        elif operation == "delete" and isinstance(entry.get("enrolment_id"), str):
            chunk.deletes.append(entry["enrolment_id"])
        else:
            raise UpdateVerificationError(f"{where}: unknown entry")
    return chunk


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise UpdateVerificationError(
            f"template bundle truncated in its {what}: expected {size} bytes, "
            f"got {len(data)}"
        )
    return data
