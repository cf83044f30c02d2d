"""Events that drive the lane state machine.

Every event is a frozen dataclass. Transaction events (document, enrolment,
capture, score, watchlist, walk-away) carry the ``transaction_id`` that the
lane issued with the command that asked for them, except :class:`DocumentRead`,
which starts a transaction. Input events (beams, barrier switch, fire release,
key switch, tamper, device presence) report levels, not edges: sending the
same level twice is harmless, so a runner may re-send every input level on a
periodic re-read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Modality = Literal["fingerprint", "iris"]
Beam = Literal["entrance", "inside", "exit"]
DeviceName = Literal["document_reader", "fingerprint", "iris_camera", "turnstile"]

MODALITIES: tuple[Modality, ...] = ("fingerprint", "iris")


@dataclass(frozen=True)
class DocumentRead:
    """The document reader delivered an MRZ and the runner parsed it.

    Attributes:
        issuing_state: ICAO code of the issuing state, used for the lookup.
        document_number: document number, used for the lookup.
        valid: every check digit and the layout passed (ICAO Doc 9303).
        expired: the expiry date is before today.
        dates_plausible: birth and expiry dates are possible dates.
    """

    issuing_state: str
    document_number: str
    valid: bool
    expired: bool
    dates_plausible: bool = True


@dataclass(frozen=True)
class EnrolmentFound:
    """The template store contains an enrolment for the document.

    Attributes:
        transaction_id: the id from the :class:`LookUpEnrolment` command.
        enrolment_id: the store's enrolment id (for the audit record).
        expired: the enrolment is past its expiry date.
        revoked: the document or the enrolment was revoked.
        watchlisted: the enrolment carries the 1:1 watchlist flag.
    """

    transaction_id: str
    enrolment_id: str
    expired: bool
    revoked: bool
    watchlisted: bool


@dataclass(frozen=True)
class EnrolmentNotFound:
    """The template store contains no enrolment for the document."""

    transaction_id: str


@dataclass(frozen=True)
class SampleCaptured:
    """A sensor delivered a sample; its template and score are still to come.

    The lane moves on to the next capture, so fingerprint extraction may run
    while the traveller presents the iris. :class:`SampleScored` or
    :class:`CaptureFailed` for the same modality must follow.
    """

    transaction_id: str
    modality: Modality


@dataclass(frozen=True)
class SampleScored:
    """A sample was turned into a template and compared 1:1.

    Attributes:
        transaction_id: the id from the :class:`StartCapture` command.
        modality: which modality.
        score: best 1:1 comparison score against the enrolled templates, in
            [0, 1], higher meaning more similar.
        quality: quality of the captured sample, in [0, 1].
    """

    transaction_id: str
    modality: Modality
    score: float
    quality: float = 1.0


@dataclass(frozen=True)
class CaptureFailed:
    """One capture attempt gave no usable sample (no finger, low quality,
    failure to enrol). The lane retries up to its attempt limit."""

    transaction_id: str
    modality: Modality
    reason: str = "no_sample"


@dataclass(frozen=True)
class WatchlistResult:
    """The 1:N search against the watchlist gallery finished.

    Attributes:
        transaction_id: the id from the :class:`RunWatchlistSearch` command.
        hit: a watchlist template matched a probe.
        searched: modalities whose probe was searched.
        gallery: modalities for which the watchlist contains templates.
    """

    transaction_id: str
    hit: bool
    searched: frozenset[Modality]
    gallery: frozenset[Modality]


@dataclass(frozen=True)
class WalkAway:
    """The runner saw the traveller leave before the decision."""

    transaction_id: str


@dataclass(frozen=True)
class BeamChanged:
    """A passage beam is now broken (someone in it) or clear."""

    beam: Beam
    broken: bool


@dataclass(frozen=True)
class BarrierChanged:
    """The barrier-closed switch reports the barrier closed or open."""

    closed: bool


@dataclass(frozen=True)
class FireReleaseChanged:
    """The fire-alarm release input is now active (emergency) or not."""

    active: bool


@dataclass(frozen=True)
class KeySwitchChanged:
    """The officer's key switch is now on (lane in manual mode) or off."""

    active: bool


@dataclass(frozen=True)
class TamperChanged:
    """The enclosure tamper switch is now active (opened) or not."""

    active: bool


@dataclass(frozen=True)
class DeviceLost:
    """A device stopped responding or was unplugged."""

    device: DeviceName


@dataclass(frozen=True)
class DeviceBack:
    """A lost device responds again."""

    device: DeviceName


@dataclass(frozen=True)
class ManualOpen:
    """An officer asked, through the control socket, to let one person
    through without a transaction (the runner audits who and why)."""


@dataclass(frozen=True)
class Tick:
    """Nothing happened; the lane only checks its deadlines."""


TransactionEvent = (
    EnrolmentFound
    | EnrolmentNotFound
    | SampleCaptured
    | SampleScored
    | CaptureFailed
    | WatchlistResult
    | WalkAway
)
InputEvent = (
    BeamChanged | BarrierChanged | FireReleaseChanged | KeySwitchChanged | TamperChanged
)
Event = (
    DocumentRead
    | TransactionEvent
    | InputEvent
    | DeviceLost
    | DeviceBack
    | ManualOpen
    | Tick
)
