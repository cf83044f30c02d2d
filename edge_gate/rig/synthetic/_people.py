"""Made-up travellers and their travel documents, deterministic from a seed.

Names, dates and document numbers are drawn from small built-in lists; the
machine-readable zone is written by :func:`edge_gate.document.build_mrz`, so
every check digit is correct. None of the people exist: name parts are
combined at random.
"""

from __future__ import annotations

import datetime
import string
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

DocumentFormat = Literal["TD1", "TD3"]

# Issuing states on a land border in the region, plus Germany (``D``), whose
# three-letter field is written ``D<<`` in the zone.
_STATES = ("VNM", "KHM", "LAO", "THA", "CHN", "D")
_SURNAMES = (
    "NGUYEN",
    "TRAN",
    "LE",
    "PHAM",
    "HOANG",
    "VO",
    "DANG",
    "BUI",
    "SOK",
    "CHEA",
    "VONGSA",
    "SITHONG",
    "CHAIYO",
    "SRISUK",
    "WANG",
    "LIU",
    "ZHAO",
    "MUELLER",
    "SCHMIDT",
    "KOCH",
    "PHAN",
    "DUONG",
    "KEO",
    "INTHAVONG",
)
_GIVEN_NAMES = (
    "AN",
    "BINH",
    "CHAU",
    "DUNG",
    "HOA",
    "KHANH",
    "LAN",
    "MINH",
    "NAM",
    "PHUONG",
    "QUANG",
    "THAO",
    "VIET",
    "DARA",
    "SOPHEA",
    "BOUNMY",
    "KANYA",
    "SOMCHAI",
    "LEI",
    "MEI",
    "JONAS",
    "ANNA",
    "LENA",
    "TOBIAS",
)


@dataclass(frozen=True)
class SyntheticDocument:
    """A made-up travel document.

    Attributes:
        format: MRZ layout, ``TD3`` (passport) or ``TD1`` (card).
        document_type: the MRZ document code (``P`` or ``ID``).
        issuing_state: ICAO code of the issuing state.
        document_number: up to 9 characters of ``A-Z0-9``.
        expiry_date: the date the document expires.
    """

    format: DocumentFormat
    document_type: str
    issuing_state: str
    document_number: str
    expiry_date: datetime.date


@dataclass(frozen=True)
class SyntheticPerson:
    """A made-up traveller.

    Attributes:
        index: position in the generated list; also names the person's
            synthetic fingers and eyes.
        person_id: opaque id used in enrolment records.
        surname: primary identifier as written in the MRZ.
        given_names: secondary identifier as written in the MRZ.
        sex: ``M`` or ``F``.
        birth_date: date of birth.
        nationality: ICAO code.
        document: the document the traveller carries.
    """

    index: int
    person_id: str
    surname: str
    given_names: str
    sex: Literal["M", "F"]
    birth_date: datetime.date
    nationality: str
    document: SyntheticDocument

    def with_document(self, document: SyntheticDocument) -> SyntheticPerson:
        """Return the same person carrying another document."""
        return replace(self, document=document)


def _document_number(rng: np.random.Generator) -> str:
    letters = string.ascii_uppercase
    prefix = "".join(letters[int(i)] for i in rng.integers(0, 26, 2))
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, 7))
    return prefix + digits


def generate_people(
    count: int, seed: int, today: datetime.date
) -> list[SyntheticPerson]:
    """Make ``count`` distinct travellers with valid, unexpired documents.

    Args:
        count: how many people; at least 1.
        seed: every name, date and number follows from it.
        today: reference date; documents expire 1 to 9 years after it.

    Returns:
        The people, indexed 0 to count - 1, with distinct document numbers.

    Raises:
        ValueError: ``count`` is less than 1.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9E09]))
    people: list[SyntheticPerson] = []
    numbers: set[str] = set()
    for index in range(count):
        number = _document_number(rng)
        while number in numbers:
            number = _document_number(rng)
        numbers.add(number)

        state = _STATES[int(rng.integers(0, len(_STATES)))]
        doc_format: DocumentFormat = "TD3" if rng.random() < 0.6 else "TD1"
        document = SyntheticDocument(
            format=doc_format,
            document_type="P" if doc_format == "TD3" else "ID",
            issuing_state=state,
            document_number=number,
            expiry_date=today
            + datetime.timedelta(days=int(rng.integers(365, 9 * 365))),
        )
        age_days = int(rng.integers(19 * 365, 75 * 365))
        people.append(
            SyntheticPerson(
                index=index,
                person_id=f"synthetic-{seed}-{index:05d}",
                surname=_SURNAMES[int(rng.integers(0, len(_SURNAMES)))],
                given_names=" ".join(
                    _GIVEN_NAMES[int(i)]
                    for i in rng.integers(0, len(_GIVEN_NAMES), int(rng.integers(1, 3)))
                ),
                sex="M" if rng.random() < 0.5 else "F",
                birth_date=today - datetime.timedelta(days=age_days),
                nationality=state,
                document=document,
            )
        )
    return people


def expired_copy(
    document: SyntheticDocument, today: datetime.date
) -> SyntheticDocument:
    """Return the document as if it had expired 30 days before ``today``."""
    return replace(document, expiry_date=today - datetime.timedelta(days=30))


def unenrolled_document(
    rng: np.random.Generator, today: datetime.date
) -> SyntheticDocument:
    """Return a valid passport whose number no generated person holds.

    Generated numbers are two letters and seven digits; this one is three
    letters and six digits, so it cannot collide.
    """
    letters = "".join(string.ascii_uppercase[int(i)] for i in rng.integers(0, 26, 3))
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, 6))
    return SyntheticDocument(
        format="TD3",
        document_type="P",
        issuing_state="VNM",
        document_number=letters + digits,
        expiry_date=today + datetime.timedelta(days=3 * 365),
    )


def mrz_lines(person: SyntheticPerson) -> list[str]:
    """Write the machine-readable zone of the person's document.

    Returns:
        The MRZ lines with correct check digits.
    """
    from edge_gate.document import build_mrz

    document = person.document
    return build_mrz(
        document.format,
        document_type=document.document_type,
        issuing_state=document.issuing_state,
        document_number=document.document_number,
        surname=person.surname,
        given_names=person.given_names,
        nationality=person.nationality,
        birth_date=person.birth_date,
        sex=person.sex,
        expiry_date=document.expiry_date,
    )
