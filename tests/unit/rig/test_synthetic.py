"""Synthetic fingers, eyes and people: determinism, shape and variation."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from edge_gate.rig.synthetic import (
    IRIS_IMAGE_SHAPE,
    SENSOR_SHAPE,
    SyntheticFingerprints,
    SyntheticIrises,
    expired_copy,
    generate_iris_pattern,
    generate_people,
    mrz_lines,
    unenrolled_document,
)

TODAY = datetime.date(2026, 12, 4)


def test_fingerprint_impression_is_deterministic() -> None:
    first = SyntheticFingerprints(seed=3).impression(person=1, finger=2, impression=0)
    second = SyntheticFingerprints(seed=3).impression(person=1, finger=2, impression=0)
    assert first.dtype == np.uint8
    assert first.shape == SENSOR_SHAPE
    assert np.array_equal(first, second)


def test_fingerprint_impressions_differ() -> None:
    fingers = SyntheticFingerprints(seed=3)
    first = fingers.impression(0, 2, 0)
    second = fingers.impression(0, 2, 1)
    assert not np.array_equal(first, second)


def test_fingerprint_has_ridges_and_background() -> None:
    image = SyntheticFingerprints(seed=5).impression(0, 2, 0).astype(float)
    centre = image[100:190, 80:180]
    # Ridges and valleys alternate in the contact region: wide grey spread.
    assert centre.std() > 25
    # Dark ridges on a light background, as an optical sensor shows them.
    assert np.median(image[:, :8]) > 150


def test_fingerprint_seed_changes_pattern() -> None:
    first = SyntheticFingerprints(seed=1).master(0, 2).ridges
    second = SyntheticFingerprints(seed=2).master(0, 2).ridges
    correlation = np.corrcoef(first.ravel(), second.ravel())[0, 1]
    assert abs(correlation) < 0.2


def test_iris_capture_is_deterministic() -> None:
    first = SyntheticIrises(seed=4).capture(person=2, eye=0, capture=1)
    second = SyntheticIrises(seed=4).capture(person=2, eye=0, capture=1)
    assert first.dtype == np.uint8
    assert first.shape == IRIS_IMAGE_SHAPE
    assert np.array_equal(first, second)


def test_iris_pupil_darker_than_iris() -> None:
    image = SyntheticIrises(seed=4).capture(0, 0, 0).astype(float)
    rows, cols = IRIS_IMAGE_SHAPE
    # The pupil centre lies within about 30 px of the image centre.
    pupil = image[rows // 2 - 6 : rows // 2 + 6, cols // 2 - 6 : cols // 2 + 6]
    assert np.median(pupil) < 60


def test_iris_texture_differs_between_eyes() -> None:
    same = generate_iris_pattern(9, 0, 0).texture
    again = generate_iris_pattern(9, 0, 0).texture
    other = generate_iris_pattern(9, 1, 0).texture
    assert np.array_equal(same, again)
    correlation = np.corrcoef(same.ravel(), other.ravel())[0, 1]
    assert abs(correlation) < 0.3


def test_iris_captures_differ() -> None:
    irises = SyntheticIrises(seed=4)
    assert not np.array_equal(irises.capture(0, 0, 0), irises.capture(0, 0, 1))


def test_people_are_deterministic_and_distinct() -> None:
    people = generate_people(50, seed=11, today=TODAY)
    again = generate_people(50, seed=11, today=TODAY)
    assert people == again
    numbers = {p.document.document_number for p in people}
    assert len(numbers) == 50
    assert all(p.document.expiry_date > TODAY for p in people)
    assert all(p.birth_date < TODAY for p in people)
    assert [p.index for p in people] == list(range(50))


def test_people_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        generate_people(0, seed=1, today=TODAY)


def test_expired_copy_is_expired() -> None:
    person = generate_people(1, seed=1, today=TODAY)[0]
    assert expired_copy(person.document, TODAY).expiry_date < TODAY


def test_unenrolled_document_matches_nobody() -> None:
    people = generate_people(200, seed=2, today=TODAY)
    rng = np.random.default_rng(0)
    numbers = {p.document.document_number for p in people}
    for _ in range(20):
        assert unenrolled_document(rng, TODAY).document_number not in numbers


def test_people_mrz_parses_valid() -> None:
    from edge_gate.document import parse_mrz

    for person in generate_people(30, seed=5, today=TODAY):
        result = parse_mrz(mrz_lines(person), today=TODAY)
        assert result.valid, (person.index, result.errors)
        assert result.format == person.document.format
        assert result.fields.document_number == person.document.document_number
        assert result.fields.expiry_date == person.document.expiry_date
        assert result.fields.birth_date == person.birth_date
