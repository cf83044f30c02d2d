"""Symmetric keys of the gate: the template key and the fleet key.

Both are 32-byte AES-256 keys kept in files outside the repository. A key
file contains either the 32 raw bytes or 64 hexadecimal digits (a trailing
newline is ignored). A configured path of the form ``credential:NAME`` names
a systemd credential (``LoadCredential=`` or ``LoadCredentialEncrypted=``),
read from ``$CREDENTIALS_DIRECTORY/NAME``, which systemd sets for the unit.
"""

from __future__ import annotations

import binascii
import logging
import os
import secrets
import stat
from pathlib import Path

from edge_gate.config import credential_name_problem
from edge_gate.errors import ConfigError

logger = logging.getLogger(__name__)

KEY_BYTES = 32
CREDENTIAL_PREFIX = "credential:"


def resolve_key_path(configured: str) -> Path:
    """Turn a configured key location into a file path.

    Args:
        configured: a file path, or ``credential:NAME`` for a systemd
            credential.

    Returns:
        The path of the key file.

    Raises:
        ConfigError: ``credential:`` is used outside a unit that has
            credentials, or the name is not one file name (see
            :func:`edge_gate.config.credential_name_problem`).
    """
    if not configured.startswith(CREDENTIAL_PREFIX):
        return Path(configured)
    name = configured.removeprefix(CREDENTIAL_PREFIX)
    problem = credential_name_problem(name)
    if problem is not None:
        raise ConfigError(f"key location {configured!r}: {problem}")
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ConfigError(
            f"key location {configured!r} names a systemd credential, but "
            "CREDENTIALS_DIRECTORY is not set: run inside the unit that has "
            f"LoadCredential={name}:... or configure a file path"
        )
    return Path(directory) / name


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Read a 32-byte key from a file (raw bytes or 64 hex digits).

    Args:
        path: the key file; ``credential:NAME`` is resolved first, see
            :func:`resolve_key_path`.

    Returns:
        The 32 key bytes.

    Raises:
        ConfigError: the file is missing, unreadable, or contains anything but
            32 raw bytes or 64 hexadecimal digits.
    """
    key_path = resolve_key_path(os.fspath(path))
    try:
        data = key_path.read_bytes()
        mode = key_path.stat().st_mode
    except FileNotFoundError as err:
        raise ConfigError(
            f"key file {key_path} not found: provision it (edge-gate publish "
            "gate-key FILE makes a new one) or fix the configured path"
        ) from err
    except OSError as err:
        raise ConfigError(f"cannot read key file {key_path}: {err}") from err

    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "key file %s is readable by group or others; restrict it with chmod 600",
            key_path,
        )

    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return binascii.unhexlify(text)
        except (binascii.Error, ValueError):
            pass
    raise ConfigError(
        f"key file {key_path} must hold {KEY_BYTES} raw bytes or "
        f"{2 * KEY_BYTES} hexadecimal digits, found {len(data)} bytes"
    )


def generate_key_file(path: str | os.PathLike[str]) -> Path:
    """Write a new random 32-byte key as hex to a new file with mode 0600.

    Args:
        path: the file to create.

    Returns:
        The path written.

    Raises:
        FileExistsError: the file exists already (a key is never overwritten).
        OSError: the file could not be written.
    """
    key_path = Path(path)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key_path
