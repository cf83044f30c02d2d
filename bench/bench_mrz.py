"""Benchmark the MRZ parser against the PyPI packages ``mrz`` and PassportEye.

One run measures, on the same MRZ cases (tests/data/mrz/dev_cases.jsonl):

* parse throughput: documents per second, the median of ``--repeats`` timed
  passes over all cases, each pass parsing every case ``--loops`` times. A
  parse is the verdict plus the fields: ``parse_mrz`` for edge_gate, the
  ``mrz`` checker plus its ``fields()``, PassportEye's ``MRZ(lines)``. The
  verdict alone is timed too: edge_gate's ``mrz_is_valid`` against the
  ``mrz`` checker without ``fields()``;
* verdict agreement: how often each parser's valid/invalid verdict equals
  the corpus verdict (strict ICAO 9303; national non-ICAO layouts count as
  invalid).

edge_gate and ``mrz`` (0.6.2) run in this process. PassportEye pulls in
scikit-image for its OCR part, so it lives in its own virtual environment
and runs as a subprocess of this script. Only its text parser
``passporteye.mrz.text.MRZ`` is measured. It is loaded from its file, so the
package's image modules are not imported. Make that environment with::

    python3 -m venv /tmp/h1-peers/passporteye
    /tmp/h1-peers/passporteye/bin/pip install --no-deps passporteye==2.2.2

Usage: ``.venv/bin/python bench/bench_mrz.py [--passporteye-python PATH]``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CASES_PATH = (
    Path(__file__).resolve().parents[1] / "tests" / "data" / "mrz" / "dev_cases.jsonl"
)
TODAY = datetime.date(2026, 12, 4)
DEFAULT_PASSPORTEYE_PYTHON = "/tmp/h1-peers/passporteye/bin/python"

Verdict = Callable[[Sequence[str]], bool]
PARSE = "edge_gate parse_mrz"
VERDICT = "edge_gate mrz_is_valid"


def load_cases() -> list[dict[str, Any]]:
    """Return the MRZ cases with their corpus verdicts."""
    cases = [json.loads(line) for line in CASES_PATH.read_text("utf-8").splitlines()]
    for case in cases:
        case["icao_valid"] = bool(case["valid"]) and case["format"] != "other"
    return cases


def edge_gate_verdict() -> Verdict:
    from edge_gate.document import parse_mrz

    def verdict(lines: Sequence[str]) -> bool:
        return parse_mrz(lines, today=TODAY).valid

    return verdict


def edge_gate_verdict_alone() -> Verdict:
    from edge_gate.document import mrz_is_valid

    def verdict(lines: Sequence[str]) -> bool:
        return mrz_is_valid(lines)

    return verdict


def mrz_package_verdict(*, read_fields: bool = True) -> Verdict:
    """Pick the ``mrz`` checker by shape, as a caller of that package must.

    With ``read_fields`` False only the checker runs (its verdict), which is
    less work than edge_gate's parse; both figures are reported.
    """
    from mrz.checker.mrva import MRVACodeChecker
    from mrz.checker.mrvb import MRVBCodeChecker
    from mrz.checker.td1 import TD1CodeChecker
    from mrz.checker.td2 import TD2CodeChecker
    from mrz.checker.td3 import TD3CodeChecker

    def verdict(lines: Sequence[str]) -> bool:
        is_visa = bool(lines) and lines[0][:1] == "V"
        if len(lines) == 3:
            checker: Any = TD1CodeChecker
        elif len(lines) == 2 and len(lines[0]) == 44:
            checker = MRVACodeChecker if is_visa else TD3CodeChecker
        elif len(lines) == 2 and len(lines[0]) == 36:
            checker = MRVBCodeChecker if is_visa else TD2CodeChecker
        else:
            return False
        try:
            result = checker("\n".join(lines))
            if read_fields:
                # edge_gate's parse returns the fields as well.
                result.fields()
            return bool(result)
        except Exception:  # the package raises on lengths and characters
            return False

    return verdict


def passporteye_verdict() -> Verdict:
    """Load ``passporteye/mrz/text.py`` alone (the package imports skimage)."""
    spec = importlib.util.find_spec("passporteye")
    assert spec is not None and spec.submodule_search_locations
    text_path = Path(next(iter(spec.submodule_search_locations))) / "mrz" / "text.py"
    module_spec = importlib.util.spec_from_file_location("passporteye_text", text_path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)

    def verdict(lines: Sequence[str]) -> bool:
        try:
            return bool(module.MRZ(list(lines)).valid)
        except Exception:
            return False

    return verdict


def measure(
    parsers: dict[str, Verdict], cases: list[dict[str, Any]], loops: int, repeats: int
) -> dict[str, dict[str, Any]]:
    """Time ``repeats`` passes per parser and compare verdicts with the corpus.

    The parsers' passes are interleaved, so that a change in machine load
    between passes touches every parser alike.
    """
    all_lines = [case["lines"] for case in cases]
    pass_times_s: dict[str, list[float]] = {name: [] for name in parsers}
    for _ in range(repeats):
        for name, verdict in parsers.items():
            started_s = time.perf_counter()
            for _ in range(loops):
                for lines in all_lines:
                    verdict(lines)
            pass_times_s[name].append(time.perf_counter() - started_s)

    results = {}
    documents = loops * len(all_lines)
    for name, verdict in parsers.items():
        verdicts = [verdict(lines) for lines in all_lines]
        median_s = statistics.median(pass_times_s[name])
        agree = sum(v == c["icao_valid"] for v, c in zip(verdicts, cases, strict=True))
        results[name] = {
            "pass_times_s": pass_times_s[name],
            "docs_per_s": documents / median_s,
            "us_per_doc": median_s / documents * 1e6,
            "agree": agree,
            "cases": len(cases),
            "verdicts": verdicts,
        }
    return results


def _speed_up(ours: dict[str, Any], peer: dict[str, Any]) -> float:
    """Median over rounds of the peer's pass time over edge_gate's.

    Passes of one round ran back to back, so a per-round ratio cancels most
    of the load that other processes put on a shared machine. A peer run as a
    subprocess has no paired rounds; its ratio uses the medians.
    """
    peer_times = peer.get("pass_times_s")
    if peer is ours or peer_times is None or "subprocess" in peer:
        return float(peer["us_per_doc"] / ours["us_per_doc"])
    ratios = [p / o for p, o in zip(peer_times, ours["pass_times_s"], strict=True)]
    return statistics.median(ratios)


def run_peer_subprocess(python: str, loops: int, repeats: int) -> dict[str, Any] | None:
    """Run this script under PassportEye's environment; None if it is missing."""
    if not Path(python).exists():
        print(
            f"PassportEye skipped: {python} not found (see the module docstring)",
            file=sys.stderr,
        )
        return None
    completed = subprocess.run(
        [
            python,
            __file__,
            "--peer",
            "passporteye",
            "--loops",
            str(loops),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    result["subprocess"] = True
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--loops", type=int, default=5, help="parses of every case per pass"
    )
    parser.add_argument(
        "--repeats", type=int, default=41, help="timed passes; the median is reported"
    )
    parser.add_argument("--passporteye-python", default=DEFAULT_PASSPORTEYE_PYTHON)
    parser.add_argument("--peer", choices=["passporteye"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = load_cases()

    if args.peer == "passporteye":
        peer_results = measure(
            {"passporteye": passporteye_verdict()}, cases, args.loops, args.repeats
        )
        print(json.dumps(peer_results["passporteye"]))
        return 0

    # Each peer is timed against the edge_gate call that returns what it
    # returns: the verdict alone, or the verdict with the fields.
    results = measure(
        {
            PARSE: edge_gate_verdict(),
            VERDICT: edge_gate_verdict_alone(),
            "mrz 0.6.2, checker + fields()": mrz_package_verdict(),
            "mrz 0.6.2, checker only": mrz_package_verdict(read_fields=False),
        },
        cases,
        args.loops,
        args.repeats,
    )
    peer = run_peer_subprocess(args.passporteye_python, args.loops, args.repeats)
    if peer is not None:
        results["passporteye 2.2.2 (subprocess)"] = peer

    counterpart = {"mrz 0.6.2, checker only": VERDICT}
    print(
        f"{len(cases)} cases, {args.loops} loops per pass, "
        f"median of {args.repeats} passes"
    )
    print(
        "| parser | documents/s | µs/document | compared with | edge_gate speed-up "
        "(median ratio) | verdicts equal to corpus |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for name, result in results.items():
        if name in (PARSE, VERDICT):
            compared = "-"
        else:
            ours_name = counterpart.get(name, PARSE)
            ratio = _speed_up(results[ours_name], result)
            compared = f"{ours_name} | {ratio:.1f}x"
        if compared == "-":
            compared = "- | -"
        print(
            f"| {name} | {result['docs_per_s']:,.0f} | {result['us_per_doc']:.1f} | "
            f"{compared} | {result['agree']}/{result['cases']} |"
        )
    ours = results[PARSE]
    for name, result in results.items():
        if name in (PARSE, "mrz 0.6.2, checker only"):
            continue
        differ = [
            c["id"]
            for c, a, b in zip(cases, ours["verdicts"], result["verdicts"], strict=True)
            if a != b
        ]
        print(
            f"\n{name} differs from edge_gate on {len(differ)} cases: "
            + ", ".join(differ)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
