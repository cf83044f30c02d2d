"""Exception hierarchy of edge_gate.

Every error raised by the package derives from :class:`EdgeGateError`. Device
errors split by lifecycle phase; the phase classes that have a builtin
counterpart also inherit it, so ``except TimeoutError`` keeps working. Domain
branches cover documents, biometric capture, template updates and
configuration. "The server sent bad data" (:class:`UpdateVerificationError`)
is kept apart from "the transport failed" (:class:`UpdateTransportError`).

A biometric non-match is a result, never an exception.
"""


class EdgeGateError(Exception):
    """Root of every error raised by edge_gate."""


# Configuration


class ConfigError(EdgeGateError, ValueError):
    """The configuration file is missing, unreadable or invalid.

    ``problems`` lists one message per invalid key, so that a field engineer
    can fix them all in one pass.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


# Devices, by lifecycle phase


class DeviceError(EdgeGateError):
    """A hardware device (or its emulator) failed."""


class DeviceInitError(DeviceError):
    """A device could not be opened or did not pass its start-up handshake."""


class DeviceIOError(DeviceError, OSError):
    """Reading from or writing to an open device failed (for example unplug)."""


class DeviceTimeoutError(DeviceError, TimeoutError):
    """A device did not answer before its deadline."""


class DeviceUnsupportedError(DeviceError, NotImplementedError):
    """The device or its profile does not support the requested operation."""


class DeviceProtocolError(DeviceError):
    """A device sent bytes that break its protocol (bad checksum, framing)."""


# Documents


class DocumentError(EdgeGateError):
    """A travel document could not be read or parsed."""


class MrzFormatError(DocumentError, ValueError):
    """The text is not a machine-readable zone in any supported layout."""


# Biometrics


class BiometricError(EdgeGateError):
    """A biometric sample could not be captured or turned into a template."""


class CaptureError(BiometricError):
    """The sensor delivered no usable sample (no finger, no eye, timeout)."""


class ImageError(BiometricError, ValueError):
    """An image file or frame is corrupt, empty or of the wrong shape."""


class TemplateError(BiometricError, ValueError):
    """A template is corrupt, of an unknown version or of the wrong kind."""


class ModelError(BiometricError):
    """An ONNX model is missing, does not match its manifest, or failed."""


# Gate core


class GateStateError(EdgeGateError, RuntimeError):
    """An event arrived that the lane state machine cannot take in its state."""


# Storage


class StoreError(EdgeGateError):
    """A SQLite store is unreadable, corrupt or full."""


class AuditIntegrityError(StoreError):
    """The audit log's hash chain is broken (a row changed or went missing)."""


# Template updates


class UpdateError(EdgeGateError):
    """A template update could not be fetched, verified or applied."""


class UpdateTransportError(UpdateError):
    """The template server could not be reached or the transfer failed."""


class UpdateVerificationError(UpdateError):
    """The server sent data that failed verification (signature, hash,
    version, expiry or decryption)."""


class EnrolmentRecordError(UpdateError, ValueError):
    """An enrolment record is invalid (the publisher's input, or a record
    decoded from a bundle)."""


# Control socket


class ControlError(EdgeGateError):
    """A field-engineer command could not reach or was refused by the daemon."""


# Daemon lifecycle


class DaemonRunningError(EdgeGateError):
    """Another edge-gate daemon already uses the state folder or control socket."""
