"""1:N search of one iris probe over a packed gallery (the watchlist).

Every gallery template is packed into 64-bit words: its code bits and its
mask expanded to one bit per code bit, in the same (row, column, bit)
order. A comparison is then XOR, AND and a population count per word
(``numpy.bitwise_count``), with the probe rotated instead of the gallery.

Comparing every template at all 17 shifts costs about 4 s per million
templates on one core, so the search runs in two stages:

1. Coarse: a few code rows (``COARSE_ROWS``) at every shift, with the left
   half of the iris also turned one column either way
   (``HALF_SHIFT_COLUMNS``); the best distance per template, normalised for
   its valid-bit count and the pair's row redundancy like the full score,
   ranks the gallery.
2. Fine: the best-ranked templates (``candidates_for``) are compared in
   full over the same poses and scored like :func:`compare_irises`.

A mate that the coarse stage ranks below the cut is missed, so the cut is
generous: a third of a percent of the gallery and at least 300 templates.
A template that shares too few valid bits with the probe in the coarse rows
cannot be ranked, so it always goes to the fine stage.
The benchmark ``bench/bench_iris.py speed`` checks on real codes that the
two-stage search finds the same best match as the exhaustive one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge_gate.errors import TemplateError
from edge_gate.iris._match import (
    BITS_EXPONENT,
    HALF_SHIFT_COLUMNS,
    MAX_SHIFT_COLUMNS,
    MIN_COMMON_BITS,
    REFERENCE_BITS,
    half_columns,
    independence_for,
    normalise_distance,
    row_redundancy,
    shift_indices,
    turned_halves,
)
from edge_gate.iris._template import IrisTemplate

logger = logging.getLogger(__name__)

Words = npt.NDArray[np.uint64]

# Code rows of the coarse stage, every second row. The check: 160
# second-visit probes of CASIA-IrisV1 eyes 001-040 against 100,000
# templates recombined from first-visit codes, with the segmentation of
# December 2026. The mate ranked at worst 9th with these rows, 58th with
# rows (2, 5, 8, 11) and 106th with (1, 4, 7, 10, 13). Four rows also lost
# a mate below the cut in the unit test on every second CASIA eye. The six
# rows cost about 1.4 times the four. Distances are normalised for the
# valid-bit count: with raw distances a template whose coarse rows are
# mostly masked can show a distance near 0 on a handful of bits.
COARSE_ROWS = (2, 4, 6, 8, 10, 12)
# Templates compared per block, sized to stay in a CPU cache.
_BLOCK = 65_536


def _pack(bits: npt.NDArray[np.bool_]) -> Words:
    """Pack bool[..., n] (n a multiple of 64) into uint64 words, big-endian bits."""
    packed = np.packbits(bits, axis=-1)
    words: Words = packed.view(">u8").astype(np.uint64)
    return words


def _expand_mask(template: IrisTemplate) -> npt.NDArray[np.bool_]:
    """Return the mask repeated for every code bit of its cell."""
    bits = template.shape[2]
    return np.repeat(template.mask[:, :, None], bits, axis=2)


class IrisGallery:
    """A packed, read-only gallery of iris templates for 1:N search."""

    def __init__(
        self,
        ids: Sequence[str],
        codes: Words,
        masks: Words,
        shape: tuple[int, int, int],
        row_redundancies: npt.NDArray[np.float64],
    ) -> None:
        """Wrap packed arrays; use :meth:`from_templates` to build one.

        Args:
            ids: one identifier per row.
            codes: uint64[N, words] packed code bits.
            masks: uint64[N, words] packed expanded masks.
            shape: the code grid (rows, columns, bits) of every template.
            row_redundancies: float[N], each template's ``row_redundancy``.

        Raises:
            TemplateError: the arrays and ids disagree in size, or a
                redundancy is not a share.
        """
        redundancies = np.asarray(row_redundancies, dtype=np.float64)
        if (
            codes.shape != masks.shape
            or len(ids) != codes.shape[0]
            or redundancies.shape != (len(ids),)
        ):
            raise TemplateError(
                f"gallery arrays {codes.shape}, {masks.shape} and "
                f"{redundancies.shape} do not match {len(ids)} ids"
            )
        invalid = ~((redundancies >= 0.0) & (redundancies <= 1.0))
        if invalid.any():
            index = int(np.flatnonzero(invalid)[0])
            raise TemplateError(
                f"invalid row redundancy {redundancies[index]} for gallery entry "
                f"{ids[index]!r}: expected a share in [0, 1]; build the gallery "
                f"with IrisGallery.from_templates"
            )
        self._ids = list(ids)
        self._codes = codes
        self._masks = masks
        self._shape = shape
        self._row_redundancies = redundancies
        rows, columns, bits = shape
        words_per_row = columns * bits // 64
        coarse_rows = [r for r in COARSE_ROWS if r < rows] or [0]
        self._coarse_words = np.concatenate(
            [np.arange(r * words_per_row, (r + 1) * words_per_row) for r in coarse_rows]
        )
        # Word-major copies: the coarse stage adds whole rows of counts,
        # which numpy does far faster than summing short rows.
        self._coarse_codes = np.ascontiguousarray(codes[:, self._coarse_words].T)
        self._coarse_masks = np.ascontiguousarray(masks[:, self._coarse_words].T)
        # Valid-bit count at which a coarse distance keeps its raw value: the
        # full comparison's reference, scaled to the coarse rows' share.
        coarse_share = len(self._coarse_words) / max(1, codes.shape[1])
        self._coarse_reference = REFERENCE_BITS * coarse_share
        # The coarse rows cannot rank a template sharing fewer valid bits than
        # this with the probe there, so the fine stage compares it anyway.
        self._coarse_min_bits = MIN_COMMON_BITS * coarse_share
        # Packed bits of the right half of the iris (see ``half_columns``).
        right = np.zeros(shape, dtype=bool)
        right[:, half_columns(columns)] = True
        self._right_half = _pack(right.reshape(1, -1))[0]
        reach = min(MAX_SHIFT_COLUMNS, columns // 2)
        self._reach = reach
        self._tolerance = max(0, min(HALF_SHIFT_COLUMNS, columns // 2 - reach))
        # The halves (0 right, 1 left) that the bits of each coarse word
        # belong to, with the bits of each when the word straddles the two
        # (None: the whole word).
        full = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
        self._coarse_parts: list[tuple[tuple[int, np.uint64 | None], ...]] = []
        for right in self._right_half[self._coarse_words]:
            if right == full:
                self._coarse_parts.append(((0, None),))
            elif right == 0:
                self._coarse_parts.append(((1, None),))
            else:
                self._coarse_parts.append(((0, right), (1, ~right)))

    @classmethod
    def from_templates(
        cls, ids: Sequence[str], templates: Sequence[IrisTemplate]
    ) -> IrisGallery:
        """Pack templates into a gallery.

        Raises:
            TemplateError: the lengths differ, the templates have different
                code grids, or a grid row is not a whole number of 64-bit
                words.
        """
        if len(ids) != len(templates):
            raise TemplateError(
                f"{len(ids)} ids for {len(templates)} iris templates; "
                f"give one id per template"
            )
        if not templates:
            return cls(
                [],
                np.zeros((0, 0), np.uint64),
                np.zeros((0, 0), np.uint64),
                (0, 0, 0),
                np.zeros(0, np.float64),
            )
        shape = templates[0].shape
        _, columns, bits = shape
        if columns * bits % 64:
            raise TemplateError(
                f"iris code rows of {columns * bits} bits cannot be packed into "
                f"64-bit words"
            )
        for template in templates:
            if template.shape != shape:
                raise TemplateError(
                    f"gallery mixes iris code grids {shape} and {template.shape}"
                )
        codes = np.stack([t.code.reshape(-1) for t in templates])
        masks = np.stack([_expand_mask(t).reshape(-1) for t in templates])
        redundancies = np.array([row_redundancy(t) for t in templates], np.float64)
        return cls(ids, _pack(codes), _pack(masks), shape, redundancies)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def template_bytes(self) -> int:
        """Memory per template in the gallery, in bytes (code and mask words)."""
        return int(self._codes.shape[1] * 16) if len(self) else 0

    def candidates_for(self, size: int) -> int:
        """Return how many templates the fine stage compares for a gallery size."""
        return min(size, max(300, size // 300))

    def search(self, probe: IrisTemplate, top_k: int = 5) -> list[tuple[str, float]]:
        """Return the ``top_k`` most similar gallery entries, best first.

        Steps:
            1. Rotate and pack the probe at every shift.
            2. Coarse stage on a few rows at every pose; keep the
               best-ranked candidates.
            3. Compare the candidates in full at every shift, normalise for
               the valid-bit count and score as :func:`compare_irises`.

        Args:
            probe: the captured template.
            top_k: how many entries to return.

        Returns:
            (id, score) pairs with scores in [0, 1], highest first; empty
            for an empty gallery.

        Raises:
            TemplateError: the probe's code grid differs from the gallery's.
        """
        if not self._ids or top_k <= 0:
            return []
        # 1. Probe at every shift, packed like the gallery.
        probe_codes, probe_masks = self._pack_probe(probe)
        independence = self._independence(probe)

        # 2. Coarse ranking, over the same poses as the fine stage. It tries
        # every shift: every second one halved its time but could lose weak
        # mates whose best shift was odd. Among 30,000 rotated or mirrored
        # codes of other CASIA eyes, the 1,680 same-eye pairs of eyes 001-040
        # then ranked their mate at worst 63rd, and 1st at every shift.
        coarse, coarse_bits = self._coarse_distances(
            probe_codes[:, self._coarse_words],
            probe_masks[:, self._coarse_words],
            independence.astype(np.float32),
        )
        count = min(len(self), max(top_k, self.candidates_for(len(self))))
        if count < len(self):
            chosen = np.argpartition(coarse, count - 1)[:count]
            unranked = np.flatnonzero(coarse_bits < self._coarse_min_bits)
            if len(unranked):
                logger.debug(
                    "%d gallery templates share too few coarse bits with the "
                    "probe to rank; comparing them in full",
                    len(unranked),
                )
                chosen = np.union1d(chosen, unranked)
        else:
            chosen = np.arange(len(self))

        # 3. Full comparison of the candidates.
        scores = self._fine_scores(
            chosen, probe_codes, probe_masks, independence[chosen]
        )
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [(self._ids[chosen[i]], float(scores[i])) for i in order]

    def exhaustive_scores(self, probe: IrisTemplate) -> npt.NDArray[np.float64]:
        """Return the score of every gallery entry, in gallery order.

        Compares in full at every shift, with no coarse stage: the reference
        that the two-stage :meth:`search` is checked against, and the
        all-pairs score matrix of evaluations.

        Raises:
            TemplateError: the probe's code grid differs from the gallery's.
        """
        if not self._ids:
            return np.zeros(0, dtype=np.float64)
        probe_codes, probe_masks = self._pack_probe(probe)
        independence = self._independence(probe)
        scores = np.empty(len(self), dtype=np.float64)
        block = 4096
        for start in range(0, len(self), block):
            chosen = np.arange(start, min(len(self), start + block))
            scores[chosen] = self._fine_scores(
                chosen, probe_codes, probe_masks, independence[chosen]
            )
        return scores

    def _pack_probe(self, probe: IrisTemplate) -> tuple[Words, Words]:
        """Return the probe's packed code and mask at every shift.

        The shifts run ``HALF_SHIFT_COLUMNS`` further either way than
        ``MAX_SHIFT_COLUMNS``, for the left half turned against the right.
        """
        if probe.shape != self._shape:
            raise TemplateError(
                f"probe iris code grid {probe.shape} differs from the gallery's "
                f"{self._shape}"
            )
        columns = self._shape[1]
        index = shift_indices(columns, self._reach + self._tolerance)
        shifted_code = probe.code[:, index].transpose(1, 0, 2, 3)
        shifted_mask = _expand_mask(probe)[:, index].transpose(1, 0, 2, 3)
        codes = _pack(shifted_code.reshape(len(index), -1))
        masks = _pack(shifted_mask.reshape(len(index), -1))
        return codes, masks

    def _independence(self, probe: IrisTemplate) -> npt.NDArray[np.float64]:
        """Return the probe's ``pair_independence`` with every template."""
        mean = (self._row_redundancies + row_redundancy(probe)) / 2
        return independence_for(mean)

    def _coarse_distances(
        self, codes: Words, masks: Words, independence: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint16]]:
        """Return each template's best normalised coarse distance and valid bits.

        ``codes`` and ``masks`` hold the probe's coarse words at every shift,
        the ``HALF_SHIFT_COLUMNS`` extra ones either way included. The poses
        are those of the fine stage: the left half of the iris at up to that
        many shifts off the right half's (``turned_halves``). A weak mate that
        needs the turn to score above the threshold would otherwise rank too
        low to reach the fine stage.

        The bits are the most that the template shares with the probe at any
        pose. The normalisation is ``normalise_distance``'s, with the reference
        bit count scaled to the coarse rows; a pose with no valid bit scores
        above 0.5.
        ``independence`` contains each template's factor with the probe.
        """
        best = np.empty(len(self), dtype=np.float32)
        max_bits = np.empty(len(self), dtype=np.uint16)
        exponent = np.float32(BITS_EXPONENT)
        shift_count = len(codes)
        tolerance = self._tolerance
        # Tables by valid-bit count, so that the 51 poses of each template
        # need no power or division: count ** exponent and 1 / count. A pose
        # without a valid bit gets the power -1, which puts its distance above
        # 0.5, behind unrelated eyes.
        counts = np.arange(64 * codes.shape[1] + 1, dtype=np.float32)
        count_power = np.power(counts, exponent)
        count_power[0] = -1.0
        inverse = np.float32(1.0) / np.maximum(counts, np.float32(1.0))
        for start in range(0, len(self), _BLOCK):
            stop = min(len(self), start + _BLOCK)
            wrong, total = self._coarse_half_counts(codes, masks, start, stop)
            block_scale = np.power(
                independence[start:stop] * np.float32(1.0 / self._coarse_reference),
                exponent,
            )
            block_best = np.full(stop - start, 2.0, dtype=np.float32)
            block_bits = np.zeros(stop - start, dtype=np.uint16)
            for shift in range(tolerance, shift_count - tolerance):
                for turn in range(-tolerance, tolerance + 1):
                    pose_total = total[shift, 0] + total[shift + turn, 1]
                    pose_wrong = wrong[shift, 0] + wrong[shift + turn, 1]
                    # 0.5 - (0.5 - distance) * scale, computed in place.
                    distance = inverse[pose_total]
                    distance *= pose_wrong
                    distance -= 0.5
                    distance *= count_power[pose_total]
                    distance *= block_scale
                    distance += 0.5
                    np.minimum(block_best, distance, out=block_best)
                    np.maximum(block_bits, pose_total, out=block_bits)
            best[start:stop] = block_best
            max_bits[start:stop] = block_bits
        return best, max_bits

    def _coarse_half_counts(
        self, codes: Words, masks: Words, start: int, stop: int
    ) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
        """Return the disagreeing and valid coarse bits of templates start..stop.

        Both have shape (shifts, 2, stop - start): per probe shift and half
        of the gallery template's iris (0 right, 1 left).
        """
        size = stop - start
        gallery_codes = self._coarse_codes[:, start:stop]
        gallery_masks = self._coarse_masks[:, start:stop]
        wrong = np.zeros((len(codes), 2, size), dtype=np.uint16)
        total = np.zeros((len(codes), 2, size), dtype=np.uint16)
        # Buffers reused for every word, so that no temporary is allocated.
        valid = np.empty(size, dtype=np.uint64)
        differ = np.empty(size, dtype=np.uint64)
        part = np.empty(size, dtype=np.uint64)
        bit_count = np.empty(size, dtype=np.uint8)
        for shift in range(len(codes)):
            for word, word_parts in enumerate(self._coarse_parts):
                np.bitwise_and(gallery_masks[word], masks[shift, word], out=valid)
                np.bitwise_xor(gallery_codes[word], codes[shift, word], out=differ)
                differ &= valid
                for half, bits in word_parts:
                    for source, counter in ((valid, total), (differ, wrong)):
                        if bits is None:
                            np.bitwise_count(source, out=bit_count)
                        else:
                            np.bitwise_and(source, bits, out=part)
                            np.bitwise_count(part, out=bit_count)
                        counter[shift, half] += bit_count
        return wrong, total

    def _fine_scores(
        self,
        chosen: npt.NDArray[np.intp],
        codes: Words,
        masks: Words,
        independence: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Return the normalised score of each chosen template at its best shift.

        The left half of the gallery template's columns may meet the probe
        at a shift one column off the right half's (``turned_halves``).
        """
        gallery_codes = self._codes[chosen]
        gallery_masks = self._masks[chosen]
        valid = gallery_masks[:, None, :] & masks[None, :, :]
        disagree = (gallery_codes[:, None, :] ^ codes[None, :, :]) & valid
        wrong_all = np.bitwise_count(disagree).sum(axis=2, dtype=np.float64)
        total_all = np.bitwise_count(valid).sum(axis=2, dtype=np.float64)
        disagree &= self._right_half
        valid &= self._right_half
        wrong_right = np.bitwise_count(disagree).sum(axis=2, dtype=np.float64)
        total_right = np.bitwise_count(valid).sum(axis=2, dtype=np.float64)
        wrong, total = turned_halves(
            np.stack([wrong_right, wrong_all - wrong_right], -1),
            np.stack([total_right, total_all - total_right], -1),
            self._tolerance,
        )
        distance = np.where(total > 0, wrong / np.maximum(total, 1.0), 0.5)
        normalised = normalise_distance(distance, total, independence[:, None])
        best = normalised.min(axis=1)
        scores: npt.NDArray[np.float64] = np.clip(1.0 - best, 0.0, 1.0)
        return scores
