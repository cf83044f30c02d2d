"""Tests of 1:1 iris comparison and the 1:N gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_gate.errors import TemplateError
from edge_gate.iris import (
    IrisEncoder,
    IrisGallery,
    IrisTemplate,
    compare_irises,
    load_iris_image,
)
from edge_gate.iris._gallery import COARSE_ROWS
from edge_gate.iris._match import (
    BITS_EXPONENT,
    MIN_COMMON_BITS,
    REFERENCE_BITS,
    REFERENCE_ROW_AGREEMENT,
    ROW_AGREEMENT_RANGE,
    half_columns,
    hamming_distances,
    normalise_distance,
    pair_independence,
)
from edge_gate.iris._template import MIN_ROW_PAIRS


def random_template(seed: int, valid_share: float = 0.8) -> IrisTemplate:
    rng = np.random.default_rng(seed)
    return IrisTemplate(
        code=rng.random((16, 128, 2)) < 0.5,
        mask=rng.random((16, 128)) < valid_share,
        quality=1.0,
    )


def noisy_copy(template: IrisTemplate, flip_share: float, seed: int) -> IrisTemplate:
    rng = np.random.default_rng(seed)
    flips = rng.random(template.code.shape) < flip_share
    return IrisTemplate(code=template.code ^ flips, mask=template.mask, quality=1.0)


def rolled(template: IrisTemplate, columns: int) -> IrisTemplate:
    return IrisTemplate(
        code=np.roll(template.code, columns, axis=1),
        mask=np.roll(template.mask, columns, axis=1),
        quality=template.quality,
    )


def test_identical_codes_score_high() -> None:
    template = random_template(1)
    distance, _ = hamming_distances(template, template)
    assert distance.min() == 0.0
    assert compare_irises(template, template) > 0.95


def test_unrelated_codes_score_near_half() -> None:
    scores = [
        compare_irises(random_template(i), random_template(100 + i)) for i in range(20)
    ]
    assert 0.5 < float(np.mean(scores)) < 0.6


@pytest.mark.parametrize("columns", [-8, -3, 0, 5, 8], ids=lambda c: f"roll{c}")
def test_rotation_compensated(columns: int) -> None:
    template = random_template(2)
    assert compare_irises(template, rolled(template, columns)) == pytest.approx(
        compare_irises(template, template)
    )


def test_rotation_beyond_range_not_compensated() -> None:
    template = random_template(3)
    assert compare_irises(template, rolled(template, 20)) < 0.65


def left_half_turned(template: IrisTemplate, columns: int) -> IrisTemplate:
    """Return ``template`` with the left half of its columns turned by ``columns``.

    The right half stays; at the seams a column repeats or drops out.
    """
    left = ~half_columns(template.shape[1])
    code, mask = template.code.copy(), template.mask.copy()
    code[:, left] = np.roll(template.code, columns, axis=1)[:, left]
    mask[:, left] = np.roll(template.mask, columns, axis=1)[:, left]
    return IrisTemplate(code=code, mask=mask, quality=template.quality)


def test_half_columns_split_at_the_vertical() -> None:
    right = half_columns(128)
    # Column j points at angle 2 pi j / 128 from +x: 0-31 and 96-127 face right.
    assert right[:32].all()
    assert right[96:].all()
    assert not right[32:96].any()


@pytest.mark.parametrize("whole", [-8, 0, 3, 8], ids=lambda c: f"roll{c}")
@pytest.mark.parametrize("turn", [-1, 1], ids=lambda c: f"turn{c}")
def test_left_half_turned_one_column_compensated(whole: int, turn: int) -> None:
    # A pupil centre that moves against the iris turns the two sides apart.
    template = random_template(11)
    turned = rolled(left_half_turned(template, turn), whole)
    assert compare_irises(template, turned) > 0.95
    assert compare_irises(turned, template) > 0.95


def test_two_column_turn_not_compensated() -> None:
    template = random_template(12)
    # One half matches and the other looks unrelated, as for the whole code.
    one_column = compare_irises(template, left_half_turned(template, 1))
    two_columns = compare_irises(template, left_half_turned(template, 2))
    distance, bits = hamming_distances(template, left_half_turned(template, 2))
    whole = 1 - float(
        normalise_distance(distance, bits, pair_independence(template, template)).min()
    )
    assert two_columns < one_column - 0.05
    assert two_columns == pytest.approx(whole, abs=0.01)


def test_turned_halves_raise_unrelated_scores_little() -> None:
    # Unrelated codes get 3 times the poses, so their scores may rise, but
    # only a little above those of the whole code's 17 shifts.
    rises = []
    for seed in range(30):
        first, second = random_template(300 + seed), random_template(600 + seed)
        distance, bits = hamming_distances(first, second)
        whole = 1 - float(
            normalise_distance(distance, bits, pair_independence(first, second)).min()
        )
        rises.append(compare_irises(first, second) - whole)
    assert min(rises) >= 0.0
    assert float(np.mean(rises)) < 0.01


def test_gallery_scores_turned_halves_like_compare() -> None:
    templates = [random_template(900 + i) for i in range(40)]
    probe = templates[5]
    # Mates with the left half turned, the whole code at the edge of the range.
    templates[6] = rolled(left_half_turned(probe, 1), 8)
    templates[7] = rolled(left_half_turned(probe, -1), -8)
    gallery = IrisGallery.from_templates([str(i) for i in range(40)], templates)
    expected = [compare_irises(probe, t) for t in templates]
    scores = gallery.exhaustive_scores(probe)
    assert np.allclose(scores, expected)
    assert min(scores[5], scores[6], scores[7]) > 0.95
    assert [name for name, _ in gallery.search(probe, top_k=3)] == ["5", "6", "7"]


@pytest.mark.parametrize("columns", [128, 96], ids=lambda c: f"columns{c}")
def test_search_ranks_mate_needing_half_turn(columns: int) -> None:
    # 400 templates share the probe's right half exactly and have a random
    # left half, so with the code turned only as a whole they beat a noisy
    # mate whose left half is turned one column. A coarse stage without the
    # half turn ranks that mate below its cut of 300 and misses it. With 96
    # columns the halves split 64-bit words.
    def random_grid(seed: int) -> IrisTemplate:
        rng = np.random.default_rng(seed)
        return IrisTemplate(
            code=rng.random((16, columns, 2)) < 0.5,
            mask=rng.random((16, columns)) < 0.8,
            quality=1.0,
        )

    probe = random_grid(70)
    right = half_columns(columns)
    distractors = []
    for seed in range(400):
        other = random_grid(1000 + seed)
        code, mask = other.code.copy(), other.mask.copy()
        code[:, right], mask[:, right] = probe.code[:, right], probe.mask[:, right]
        distractors.append(IrisTemplate(code=code, mask=mask, quality=1.0))
    mate = noisy_copy(left_half_turned(probe, 1), 0.1, seed=71)
    gallery = IrisGallery.from_templates(
        ["mate"] + [f"half-{i}" for i in range(400)], [mate, *distractors]
    )
    exhaustive = gallery.exhaustive_scores(probe)
    assert int(np.argmax(exhaustive)) == 0
    best_id, best_score = gallery.search(probe, top_k=1)[0]
    assert best_id == "mate"
    assert best_score == pytest.approx(compare_irises(probe, mate))


@pytest.mark.parametrize("rows", [12, 16, 32], ids=lambda r: f"rows{r}")
def test_turned_halves_on_other_grids(rows: int) -> None:
    # 12 rows pack a column into 3 bytes, which no single integer type fits.
    rng = np.random.default_rng(rows)
    templates = [
        IrisTemplate(
            code=rng.random((rows, 128, 2)) < 0.5,
            mask=rng.random((rows, 128)) < 0.8,
            quality=1.0,
        )
        for _ in range(12)
    ]
    probe = templates[0]
    templates[1] = rolled(left_half_turned(probe, -1), 5)
    gallery = IrisGallery.from_templates([str(i) for i in range(12)], templates)
    expected = [compare_irises(probe, t) for t in templates]
    assert np.allclose(gallery.exhaustive_scores(probe), expected)
    assert expected[1] > 0.95
    assert max(expected[2:]) < 0.7


def test_few_valid_bits_pulled_to_half() -> None:
    sparse = random_template(4, valid_share=0.05)
    score = compare_irises(sparse, sparse)
    valid_bits = sparse.mask.sum() * 2
    assert valid_bits < REFERENCE_BITS / 4
    assert score < 0.5 + 0.5 * (valid_bits / REFERENCE_BITS) ** BITS_EXPONENT + 1e-9


def with_valid_cells(template: IrisTemplate, cells: int) -> IrisTemplate:
    """Return ``template`` with only its first ``cells`` grid cells valid."""
    mask = np.zeros(template.mask.size, bool)
    mask[:cells] = True
    return IrisTemplate(
        code=template.code, mask=mask.reshape(template.mask.shape), quality=1.0
    )


@pytest.mark.parametrize("cells", [45, 200, MIN_COMMON_BITS // 2 - 1])
def test_few_common_bits_score_unrelated(cells: int) -> None:
    # Identical codes on a few bits would otherwise reach the threshold.
    sparse = with_valid_cells(random_template(6), cells)
    assert compare_irises(sparse, sparse) == 0.5


def test_enough_common_bits_count() -> None:
    sparse = with_valid_cells(random_template(6), MIN_COMMON_BITS // 2 + 40)
    assert compare_irises(sparse, sparse) > 0.75


def test_mismatched_grids_rejected() -> None:
    other = IrisTemplate(
        code=np.zeros((8, 128, 2), bool), mask=np.ones((8, 128), bool), quality=1.0
    )
    with pytest.raises(TemplateError, match="grid"):
        compare_irises(random_template(5), other)


def test_gallery_finds_planted_mate() -> None:
    templates = [random_template(10 + i) for i in range(3000)]
    ids = [f"id-{i}" for i in range(3000)]
    gallery = IrisGallery.from_templates(ids, templates)
    probe = rolled(noisy_copy(templates[1234], 0.25, seed=9), 4)
    results = gallery.search(probe, top_k=3)
    assert len(gallery) == 3000
    assert results[0][0] == "id-1234"
    assert results[0][1] == pytest.approx(compare_irises(probe, templates[1234]))
    assert results[0][1] > results[1][1]


@pytest.mark.parametrize("columns", [-7, -3, 1, 5])
def test_gallery_finds_mate_at_odd_shift(columns: int) -> None:
    # Unrelated neighbouring columns: one column off, a mate looks random.
    templates = [random_template(700 + i) for i in range(1000)]
    mate = templates[321]
    probe = rolled(noisy_copy(mate, 0.2, seed=columns + 50), columns)
    gallery = IrisGallery.from_templates([f"id-{i}" for i in range(1000)], templates)
    assert gallery.candidates_for(len(gallery)) < len(gallery)
    best_id, best_score = gallery.search(probe, top_k=1)[0]
    assert best_id == "id-321"
    assert best_score == pytest.approx(compare_irises(probe, mate))


def test_gallery_matches_exhaustive_scores() -> None:
    templates = [random_template(20 + i) for i in range(50)]
    gallery = IrisGallery.from_templates([str(i) for i in range(50)], templates)
    probe = templates[7]
    exhaustive = gallery.exhaustive_scores(probe)
    expected = [compare_irises(probe, t) for t in templates]
    assert np.allclose(exhaustive, expected)


def without_rows(template: IrisTemplate, rows: tuple[int, ...]) -> IrisTemplate:
    mask = template.mask.copy()
    mask[list(rows)] = False
    return IrisTemplate(code=template.code, mask=mask, quality=1.0)


@pytest.mark.parametrize("masked_side", ["mate", "probe"])
def test_gallery_finds_mate_without_coarse_rows(masked_side: str) -> None:
    # A lid can cover exactly the rows the coarse stage reads; the mate must
    # still reach the full comparison.
    templates = [random_template(400 + i) for i in range(400)]
    probe = random_template(7)
    mate = probe
    if masked_side == "mate":
        mate = without_rows(probe, COARSE_ROWS)
    else:
        probe = without_rows(probe, COARSE_ROWS)
    gallery = IrisGallery.from_templates(
        [f"id-{i}" for i in range(401)], [*templates, mate]
    )
    assert gallery.candidates_for(len(gallery)) < len(gallery)
    results = gallery.search(probe, top_k=3)
    assert results[0][0] == "id-400"
    assert results[0][1] == pytest.approx(compare_irises(probe, mate))
    assert results[0][1] > 0.9


def radial_template(seed: int, agreement: float) -> IrisTemplate:
    """Return a random template whose rows repeat the next row inwards.

    Each bit equals the one a row further in with share ``agreement``.
    """
    rng = np.random.default_rng(seed)
    code = np.empty((16, 128, 2), bool)
    code[0] = rng.random((128, 2)) < 0.5
    for row in range(1, 16):
        flips = rng.random((128, 2)) < 1.0 - agreement
        code[row] = code[row - 1] ^ flips
    return IrisTemplate(code=code, mask=np.ones((16, 128), bool), quality=1.0)


def column_noise(template: IrisTemplate, flip_share: float, seed: int) -> IrisTemplate:
    """Return a copy with the same bits flipped in every row (row agreement kept)."""
    rng = np.random.default_rng(seed)
    flips = rng.random((1, *template.code.shape[1:])) < flip_share
    return IrisTemplate(code=template.code ^ flips, mask=template.mask, quality=1.0)


def test_row_agreement_counts_valid_neighbours() -> None:
    template = radial_template(1, 1.0)
    assert template.row_agreement == 1.0
    alternating = template.code.copy()
    alternating[1::2] ^= True
    flipped = IrisTemplate(code=alternating, mask=template.mask, quality=1.0)
    assert flipped.row_agreement == 0.0
    # Only rows 3 and 4 valid: one neighbouring pair per column.
    mask = np.zeros((16, 128), bool)
    mask[3:5] = True
    code = template.code.copy()
    code[4, :64] ^= True
    half = IrisTemplate(code=code, mask=mask, quality=1.0)
    assert half.row_agreement == 0.5


def test_row_agreement_unmeasured_when_sparse() -> None:
    mask = np.zeros((16, 128), bool)
    mask[3:5, : MIN_ROW_PAIRS - 1] = True
    sparse = IrisTemplate(code=radial_template(2, 0.9).code, mask=mask, quality=1.0)
    assert sparse.row_agreement is None
    assert pair_independence(sparse, sparse) == 1.0


def test_redundant_rows_pull_towards_half() -> None:
    # Codes whose rows repeat each other more carry fewer independent bits.
    # So the same raw distance from them must score nearer to 0.5.
    scores, distances = [], set()
    for agreement in (0.82, 0.86, 0.9):
        template = radial_template(3, agreement)
        assert template.row_agreement == pytest.approx(agreement, abs=0.02)
        # The same columns flipped in each: the same raw distance at shift 0.
        copy = column_noise(template, 0.3, seed=4)
        distance, _ = hamming_distances(template, copy)
        distances.add(float(distance[8]))
        scores.append(compare_irises(template, copy))
    assert len(distances) == 1
    assert 0.2 < distances.pop() < 0.35
    assert scores[0] > scores[1] > scores[2] > 0.5


def test_independence_stays_in_tested_range() -> None:
    low, high = ROW_AGREEMENT_RANGE
    assert low < REFERENCE_ROW_AGREEMENT < high
    # Rows of unrelated bits (agreement near 0.5) count as the range's end.
    unrelated = random_template(5)
    assert pair_independence(unrelated, unrelated) == pytest.approx(
        (1 - low) / (1 - REFERENCE_ROW_AGREEMENT)
    )
    constant = radial_template(6, 1.0)
    assert pair_independence(constant, constant) == pytest.approx(
        (1 - high) / (1 - REFERENCE_ROW_AGREEMENT)
    )
    reference = radial_template(7, REFERENCE_ROW_AGREEMENT)
    assert pair_independence(reference, reference) == pytest.approx(1.0, abs=0.05)


def test_complemented_rows_score_like_equal() -> None:
    # Inverting every second row of both codes changes no distance. A row that
    # inverts its neighbour is as redundant as one that repeats it.
    equal = [radial_template(60 + i, 1.0) for i in range(2)]
    inverted = []
    for template in equal:
        code = template.code.copy()
        code[1::2] ^= True
        inverted.append(IrisTemplate(code=code, mask=template.mask, quality=1.0))
    assert np.array_equal(hamming_distances(*equal)[0], hamming_distances(*inverted)[0])
    assert compare_irises(*inverted) == pytest.approx(compare_irises(*equal))


def test_gallery_scores_redundancy_like_compare() -> None:
    templates = [
        column_noise(radial_template(30 + i, 0.78 + 0.01 * i), 0.1 * (i % 4), seed=i)
        for i in range(16)
    ]
    gallery = IrisGallery.from_templates([str(i) for i in range(16)], templates)
    for probe in (templates[0], templates[9], radial_template(50, 0.86)):
        expected = [compare_irises(probe, t) for t in templates]
        assert np.allclose(gallery.exhaustive_scores(probe), expected)
    assert len({round(pair_independence(templates[0], t), 6) for t in templates}) > 8


def test_gallery_rejects_invalid_redundancy() -> None:
    gallery = IrisGallery.from_templates(["a"], [random_template(1)])
    redundancies = np.array([np.nan])
    with pytest.raises(TemplateError, match="row redundancy nan for gallery entry 'a'"):
        IrisGallery(["a"], gallery._codes, gallery._masks, gallery._shape, redundancies)


def test_empty_gallery_returns_nothing() -> None:
    gallery = IrisGallery.from_templates([], [])
    assert len(gallery) == 0
    assert gallery.search(random_template(1)) == []


def test_gallery_rejects_mixed_grids() -> None:
    other = IrisTemplate(
        code=np.zeros((8, 128, 2), bool), mask=np.ones((8, 128), bool), quality=1.0
    )
    with pytest.raises(TemplateError, match="mixes"):
        IrisGallery.from_templates(["a", "b"], [random_template(1), other])


def test_search_keeps_mates_of_real_codes(data_dir: Path) -> None:
    # Session-1 template of every eye enrolled among 20,000 templates
    # recombined from real code rows; session-2 probes must find the same
    # best entry as the exhaustive search.
    folder = data_dir / "iris" / "casia-iris-v1"
    encoder = IrisEncoder(min_quality=0.0)
    enrolled, probes = [], []
    for eye in sorted(p for p in folder.iterdir() if p.is_dir())[::2]:
        enrolled.append(encoder.encode(load_iris_image(eye / f"{eye.name}_1_1.jpg")))
        probes.append(encoder.encode(load_iris_image(eye / f"{eye.name}_2_1.jpg")))
    rng = np.random.default_rng(3)
    background = []
    for _ in range(20_000):
        source = rng.integers(0, len(enrolled), size=16)
        shift = int(rng.integers(0, 128))
        code = np.stack([enrolled[s].code[r] for r, s in enumerate(source)])
        mask = np.stack([enrolled[s].mask[r] for r, s in enumerate(source)])
        background.append(
            IrisTemplate(
                code=np.roll(code, shift, axis=1),
                mask=np.roll(mask, shift, axis=1),
                quality=1.0,
            )
        )
    ids = [f"eye-{i}" for i in range(len(enrolled))]
    ids += [f"background-{i}" for i in range(len(background))]
    gallery = IrisGallery.from_templates(ids, enrolled + background)
    for index, probe in enumerate(probes):
        exhaustive = gallery.exhaustive_scores(probe)
        best_id, best_score = gallery.search(probe, top_k=1)[0]
        assert best_score == pytest.approx(float(exhaustive.max()))
        assert best_id == f"eye-{index}"
