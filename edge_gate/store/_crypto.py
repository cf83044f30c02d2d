"""Encryption of templates at rest, and the keyed document index.

The gate's template key never encrypts directly. HKDF-SHA256 derives two
subkeys from it, one per purpose:

1. the AES-256-GCM key that seals every template. A sealed template is a
   random 96-bit nonce followed by the ciphertext and its 16-byte tag. The
   associated data binds the enrolment id and the template kind and position
   (``fingerprint/right_index``), so a ciphertext copied onto another
   enrolment or finger fails to open.
2. the HMAC-SHA256 key of the document index: ``templates.db`` finds an
   enrolment by HMAC(issuing state, document number), so the file contains no
   document number in clear.
3. the HMAC-SHA256 key of the key check value: HMAC of a fixed label, kept
   in ``templates.db``'s metadata, so that a reader or writer with another
   key finds out before it opens or seals anything. HKDF and HMAC are
   one-way, so the value gives no help in finding the key.

Random nonces allow at most 2**32 seals per key (NIST SP 800-38D, 8.3); a
gate re-seals its templates once per applied record, far below that.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edge_gate.errors import StoreError

from ._keys import KEY_BYTES

NONCE_BYTES = 12
TAG_BYTES = 16
_AD_PREFIX = b"edge_gate template v1\x00"
_KEY_CHECK_LABEL = b"edge_gate templates.db key check v1"


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose
    ).derive(key)


class TemplateCipher:
    """Seal and open templates, and compute document index keys.

    Args:
        key: the gate's 32-byte template key.

    Raises:
        ValueError: the key is not 32 bytes long.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"the template key must be {KEY_BYTES} bytes, got {len(key)}"
            )
        self._aead = AESGCM(_derive(key, b"edge_gate templates at rest v1"))
        self._index_key = _derive(key, b"edge_gate document index v1")
        self._key_check = hmac.new(
            _derive(key, b"edge_gate key check v1"), _KEY_CHECK_LABEL, hashlib.sha256
        ).hexdigest()

    @property
    def key_check_value(self) -> str:
        """The key check value of this key, 64 hexadecimal digits."""
        return self._key_check

    def matches_key_check(self, stored: str) -> bool:
        """Tell whether a stored key check value belongs to this key."""
        return hmac.compare_digest(stored.encode(), self._key_check.encode())

    @staticmethod
    def associated_data(enrolment_id: str, kind: str, position: str) -> bytes:
        """Build the associated data binding a template to its place."""
        return b"\x00".join(
            (_AD_PREFIX, enrolment_id.encode(), kind.encode(), position.encode())
        )

    def seal(
        self, enrolment_id: str, kind: str, position: str, template: bytes
    ) -> bytes:
        """Encrypt one template for storage.

        Returns:
            nonce + ciphertext + tag.
        """
        nonce = os.urandom(NONCE_BYTES)
        ad = self.associated_data(enrolment_id, kind, position)
        return nonce + self._aead.encrypt(nonce, template, ad)

    def open(self, enrolment_id: str, kind: str, position: str, sealed: bytes) -> bytes:
        """Decrypt one stored template.

        Raises:
            StoreError: the ciphertext was changed, moved to another
                enrolment or position, or sealed under another key.
        """
        ad = self.associated_data(enrolment_id, kind, position)
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], ad)
        except (InvalidTag, ValueError) as err:
            raise StoreError(
                f"stored {kind} template {position} of enrolment {enrolment_id} "
                "failed authentication: the store was changed or the template key "
                "is not the one it was written with. Restore the key that sealed "
                "templates.db, or stop edge-gate.service, move templates.db aside "
                "with its -wal and -shm files, run edge-gate sync, and start "
                "edge-gate.service again"
            ) from err

    def document_index(self, issuing_state: str, document_number: str) -> bytes:
        """Compute the index key of a document (HMAC-SHA256, 32 bytes).

        Trailing '<' fillers and letter case are normalised first, so that
        ``D<<`` and ``D``, or ``L898902C<`` and ``l898902c``, find the same
        enrolment whichever way the publisher or the MRZ reader wrote them.
        """
        state = issuing_state.strip().upper().rstrip("<")
        number = document_number.strip().upper().rstrip("<")
        message = f"{state}\x00{number}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).digest()
