"""Check that the default simulate run's synthetic people separate.

``edge-gate simulate`` without ``--dataset`` uses synthetic fingers and
eyes. This script scores every pair of ``--people`` synthetic identities
with two captures each against the shipped matchers and thresholds: the
fingerprint as the UART module delivers it (``emulate_sensor_image``), the
iris as the camera folder does. It is a check of the rig, not an accuracy
figure; accuracy comes from the real images only.

Usage: ``.venv/bin/python bench/bench_synthetic.py [--people 24] [--seed 1]``
"""

from __future__ import annotations

import argparse
import itertools
import sys
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from edge_gate.fingerprint import modality as fingerprint
    from edge_gate.fingerprint._image import emulate_sensor_image
    from edge_gate.iris import modality as iris
    from edge_gate.rig.travellers import SyntheticSource

    source = SyntheticSource(seed=args.seed)
    captures = [(p, c) for p in range(args.people) for c in (0, 1)]
    templates = {
        "fingerprint": [
            fingerprint.extract(emulate_sensor_image(source.fingerprint(p, c)))
            for p, c in captures
        ],
        "iris": [iris.extract(source.iris(p, c)) for p, c in captures],
    }
    matchers: dict[str, Any] = {"fingerprint": fingerprint, "iris": iris}
    print(
        "| modality | threshold | genuine pairs | lowest genuine score | impostor "
        "pairs | highest impostor score | impostor pairs at or above the threshold |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, matcher in matchers.items():
        threshold = matcher.threshold()
        genuine: list[float] = []
        impostor: list[float] = []
        pairs = itertools.combinations(range(len(captures)), 2)
        for a, b in pairs:
            score = matcher.compare(templates[name][a], templates[name][b])
            same = captures[a][0] == captures[b][0]
            (genuine if same else impostor).append(score)
        above = sum(score >= threshold for score in impostor)
        print(
            f"| {name} | {threshold:.4f} | {len(genuine)} | {min(genuine):.3f} | "
            f"{len(impostor):,} | {max(impostor):.3f} | {above} "
            f"({100 * above / len(impostor):.1f} %) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
