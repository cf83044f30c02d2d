"""``edge-gate biometrics compare`` and ``edge-gate biometrics evaluate``.

Both commands work on either modality through its ``modality`` object (see
:class:`edge_gate.evaluation.Modality`). Each image's template is computed
once per run. An image from which no template can be made is a failure to
enrol (``fte``): its pairs score 0 and count as non-matches.

An image file that cannot be read or decoded (missing, a folder or device,
no read permission, empty, truncated or corrupt, too large or too small, or
in a pixel format without a sound conversion to grey) is a problem of the
data set, not a failure to enrol. Both commands decode every file before the
first comparison and stop with a list of those files, so a run never
reports rates that such files skewed.
"""

from __future__ import annotations

import argparse
import importlib
import io
import itertools
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from edge_gate._image_file import quote_path
from edge_gate.errors import BiometricError, EdgeGateError, ImageError
from edge_gate.evaluation import (
    Modality,
    equal_error_rate,
    error_rates,
    fnmr_at_fmr,
    fnmr_at_zero_fmr,
    rule_of_three,
    write_det_png,
)

logger = logging.getLogger(__name__)

# Some editors write this byte order mark first in a UTF-8 file. No path has it.
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
# Fixed registry: modality name to the module holding its ``modality`` object.
_MODALITIES = {"fingerprint": "edge_gate.fingerprint", "iris": "edge_gate.iris"}
# Maximum number of problems (bad pairs lines, unreadable image files) listed
# in one error. The rest are only counted, so a wrong file does not flood the
# terminal.
MAX_LISTED_PROBLEMS = 20
# Maximum number of characters of an input line quoted in a message.
MAX_QUOTED_CHARS = 100


def register(subparsers: Any) -> None:
    """Add ``biometrics compare`` and ``biometrics evaluate``."""
    group = subparsers.add_parser(
        "biometrics", help="compare images or evaluate a data set"
    )
    commands = group.add_subparsers(dest="biometrics_command", metavar="COMMAND")

    compare = commands.add_parser(
        "compare",
        help="score pairs of images listed in a file",
        description="Print 'pathA, pathB, score, accept|reject, ok|fte' for "
        "each tab-separated pair. Exit status: 0 when every pair was printed "
        "(an image without a template counts as fte), 1 when the pairs file "
        "cannot be read or has bad lines, an image file cannot be read or "
        "decoded, or no pair gave two templates, 2 for a usage error or a pairs "
        "file that lists no pair.",
    )
    _add_modality(compare)
    compare.add_argument(
        "--pairs",
        required=True,
        metavar="FILE",
        help="one tab-separated pair of image paths per line ('-' for stdin). "
        "A relative path is read from the current folder, not from the folder "
        "of FILE",
    )
    compare.set_defaults(handler=run_compare)

    evaluate = commands.add_parser(
        "evaluate",
        help="error rates over all pairs of a labelled data set",
        description="Compare every pair of images of the labelled set in "
        "DIR and print the error rates. Exit status: 0 when the figures were "
        "printed (also when the DET curve could not be written), 1 when DIR, "
        "a folder in it or the folder of --det cannot be read or written, an "
        "image file in it cannot be read or decoded, or DIR contains too few "
        "identities, 2 for a usage error.",
    )
    _add_modality(evaluate)
    evaluate.add_argument("directory", metavar="DIR", help="data set folder")
    evaluate.add_argument(
        "--det",
        metavar="PNG",
        help="where to write the DET curve (default: det-MODALITY.png)",
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(handler=run_evaluate)
    group.set_defaults(handler=lambda _args: _usage(group))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _add_modality(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--modality", required=True, choices=sorted(_MODALITIES), help="biometric"
    )


def load_modality(name: str) -> Modality:
    """Import the named modality's implementation."""
    module = importlib.import_module(_MODALITIES[name])
    modality: Modality = module.modality
    return modality


class TemplateCache:
    """Templates by image path, computed once; ``None`` marks a failure to enrol.

    Only an image from which no template can be made is a failure to enrol.
    An image file that cannot be read or decoded raises ``ImageError``.
    """

    def __init__(self, modality: Modality) -> None:
        self._modality = modality
        self._templates: dict[Path, bytes | None] = {}

    def get(self, path: Path) -> bytes | None:
        """Return the template of ``path``, or None when none can be made.

        Raises:
            ImageError: the file cannot be read or decoded (it changed after
                ``_check_image_files`` decoded it).
        """
        if path not in self._templates:
            self._templates[path] = self._extract(path)
        return self._templates[path]

    def _extract(self, path: Path) -> bytes | None:
        image = self._modality.load_image(path)
        try:
            return self._modality.extract(image)
        except BiometricError as err:
            print(
                f"edge-gate biometrics: no template from {quote_path(path)}: {err}",
                file=sys.stderr,
            )
            return None

    @property
    def failures(self) -> int:
        """Number of images that gave no template."""
        return sum(1 for t in self._templates.values() if t is None)


def _read_pairs(stream: BinaryIO, source: str) -> list[tuple[Path, Path]]:
    """Read tab-separated path pairs; bytes that are not UTF-8 stay as in the
    file system (``os.fsdecode``), so any file name can be listed.

    Raises:
        EdgeGateError: the file has lines that are not two paths separated
            by one tab. The message names each by its number (the first
            :data:`MAX_LISTED_PROBLEMS`, then a count of the rest).
    """
    pairs = []
    problems: list[str] = []
    for number, raw in enumerate(stream, start=1):
        line = raw.removeprefix(_BYTE_ORDER_MARK) if number == 1 else raw
        text = os.fsdecode(line).rstrip("\r\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if "\0" in text:
            problems.append(
                f"{source} line {number}: a path contains a NUL byte, which no "
                "file name can hold"
            )
            continue
        parts = text.split("\t")
        if len(parts) != 2 or not all(parts):
            problems.append(
                f"{source} line {number}: expected two image paths separated by "
                f"one tab, got {_excerpt(text)}"
            )
            continue
        pairs.append((Path(parts[0]), Path(parts[1])))
    if problems:
        raise EdgeGateError(
            _problem_list(
                problems,
                f"{source} has {len(problems)} bad line(s); fix or remove them",
            )
        )
    return pairs


def _problem_list(problems: list[str], summary: str) -> str:
    """Join a summary and the first problems, one per line, and count the rest."""
    listed = problems[:MAX_LISTED_PROBLEMS]
    lines = [summary + ":", *(f"  {problem}" for problem in listed)]
    if len(problems) > len(listed):
        lines.append(f"  and {len(problems) - len(listed)} more")
    return "\n".join(lines)


def _excerpt(text: str) -> str:
    """Quote ``text`` for a message, cut to ``MAX_QUOTED_CHARS`` characters."""
    if len(text) <= MAX_QUOTED_CHARS:
        return repr(text)
    return f"{text[:MAX_QUOTED_CHARS]!r}... ({len(text):,} characters)"


def _check_image_files(
    modality: Modality, paths: list[Path], *, from_pairs_file: bool = False
) -> None:
    """Decode every image file once, before any comparison.

    A file that decodes only in part (a JPEG cut short decodes its first
    rows) raises when it is loaded, because Pillow's
    ``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False.

    Args:
        modality: Reads the images.
        paths: The image files; a path may appear more than once.
        from_pairs_file: The paths come from a pairs file, so the message
            for a relative path that is not found says that it was not
            looked up in that file's folder.

    Raises:
        EdgeGateError: some files cannot be read or decoded, or are not
            usable images of the modality (``ImageError`` from its
            ``load_image``). The message names each file and the fix.
    """
    problems = []
    for path in dict.fromkeys(paths):
        try:
            modality.load_image(path)
        except ImageError as err:
            problems.append(f"{err}{_where_note(path, from_pairs_file)}")
    if problems:
        raise EdgeGateError(
            _problem_list(
                problems,
                f"{len(problems)} image file(s) cannot be read or decoded. A "
                "file that cannot be read or decoded is a problem of the data "
                "set, not a failure to enrol, so nothing was compared. Fix or "
                "remove these files and run again",
            )
        )


def _where_note(path: Path, from_pairs_file: bool) -> str:
    """Return a note on where an image path that cannot be opened leads.

    The note is empty unless ``path`` is a symbolic link that leads to no
    file, or a relative path with nothing at it. The second case names the
    current folder, against which relative paths are read.
    """
    try:
        if path.is_symlink() and not path.exists():
            target = quote_path(os.readlink(path))
            return f" (a symbolic link to {target}, which leads to no file)"
        if path.is_absolute() or os.path.lexists(path):
            return ""
        folder = quote_path(os.getcwd())
    except OSError:
        # The note is only a hint, because the message already names the file.
        return ""
    other = ", not from the pairs file's folder" if from_pairs_file else ""
    return f" (a relative path is read from the current folder {folder}{other})"


def _load_pairs(name: str) -> list[tuple[Path, Path]]:
    """Read the pairs file ``name``, or stdin for ``-``.

    Raises:
        EdgeGateError: the file cannot be read or has invalid lines.
    """
    if name == "-":
        stdin_bytes = getattr(sys.stdin, "buffer", None)
        if stdin_bytes is None:
            # A text-only stdin (an embedding program or a test): its text
            # goes back to the bytes the file system would have given.
            text = sys.stdin.read()
            stdin_bytes = io.BytesIO(text.encode("utf-8", "surrogateescape"))
        return _read_pairs(stdin_bytes, "stdin")
    try:
        with open(name, "rb") as handle:
            return _read_pairs(handle, quote_path(name))
    except OSError as err:
        raise EdgeGateError(
            f"cannot read pairs file {quote_path(name)}: "
            f"{err.strerror or err}; check the path"
        ) from err


def run_compare(args: argparse.Namespace) -> int:
    """Print ``pathA, pathB, score, accept|reject, ok|fte`` for each pair."""
    modality = load_modality(args.modality)
    pairs = _load_pairs(args.pairs)
    if not pairs:
        # Exit status 2 (usage error), because an empty pairs file is most
        # likely the wrong file or an export that wrote nothing.
        source = "stdin" if args.pairs == "-" else quote_path(args.pairs)
        print(
            f"edge-gate biometrics compare: {source} lists no pair; give one "
            "tab-separated pair of image paths per line",
            file=sys.stderr,
        )
        return 2
    _check_image_files(
        modality,
        [path for pair in pairs for path in pair],
        from_pairs_file=args.pairs != "-",
    )

    if isinstance(sys.stdout, io.TextIOWrapper):
        # Print each path with the bytes of its file name, UTF-8 or not.
        sys.stdout.reconfigure(errors="surrogateescape")
    threshold = modality.threshold()
    cache = TemplateCache(modality)
    failed_pairs = 0
    for first, second in pairs:
        template_a, template_b = cache.get(first), cache.get(second)
        if template_a is None or template_b is None:
            score, status = 0.0, "fte"
            failed_pairs += 1
        else:
            score, status = modality.compare(template_a, template_b), "ok"
        decision = "accept" if score >= threshold else "reject"
        print(f"{first}\t{second}\t{score:.6f}\t{decision}\t{status}", flush=False)
    sys.stdout.flush()
    # Every line printed is a result, but a run in which no pair could be
    # compared at all points at wrong paths or a wrong modality.
    if failed_pairs == len(pairs):
        print(
            f"edge-gate biometrics: no template could be made for any of the "
            f"{len(pairs)} pair(s); check the paths and --modality",
            file=sys.stderr,
        )
        return 1
    return 0


@dataclass(frozen=True)
class Evaluation:
    """Scores of every pair of a data set."""

    genuine: list[float]
    impostor: list[float]
    samples: int
    failures_to_enrol: int


_LAYOUTS = {
    "fingerprint": "FVC names <finger>_<impression>.<ext> (101_1.tif)",
    "iris": "one sub-folder per eye holding its images",
}


def score_all_pairs(modality: Modality, directory: Path) -> Evaluation:
    """Compare every pair of images in ``directory`` once.

    Raises:
        EdgeGateError: a folder or image file of the data set cannot be
            read, or the folder contains no images in the modality's layout.
    """
    samples = _list_samples(modality, directory)
    if len(samples) < 2:
        raise EdgeGateError(
            f"{quote_path(directory)} contains {len(samples)} usable "
            f"{modality.name} image(s); "
            f"at least two are needed, laid out as {_LAYOUTS[modality.name]}"
        )
    _check_image_files(modality, [path for _identity, path in samples])
    cache = TemplateCache(modality)
    templates = [(identity, cache.get(path)) for identity, path in samples]
    genuine: list[float] = []
    impostor: list[float] = []
    for (id_a, tpl_a), (id_b, tpl_b) in itertools.combinations(templates, 2):
        score = 0.0
        if tpl_a is not None and tpl_b is not None:
            score = modality.compare(tpl_a, tpl_b)
        (genuine if id_a == id_b else impostor).append(score)
    if not genuine or not impostor:
        raise EdgeGateError(
            f"{quote_path(directory)} needs at least two identities with two "
            "images each"
        )
    return Evaluation(genuine, impostor, len(samples), cache.failures)


def _list_samples(modality: Modality, directory: Path) -> list[tuple[str, Path]]:
    """List the data set's images as (identity, path) pairs.

    Raises:
        EdgeGateError: ``directory`` or a folder in it cannot be listed.
    """
    try:
        return modality.list_samples(directory)
    except OSError as err:
        folder = err.filename or directory
        if isinstance(err, PermissionError):
            fix = (
                "give the user running edge-gate read and execute permission "
                f"on it, or move it out of {quote_path(directory)}"
            )
        else:
            fix = f"check the data set folder {quote_path(directory)}"
        raise EdgeGateError(
            f"cannot list the data set folder {quote_path(folder)}: "
            f"{err.strerror}; {fix}"
        ) from err


def summarise(modality: Modality, result: Evaluation) -> dict[str, Any]:
    """Return the figures of an evaluation as a JSON-ready mapping."""
    threshold = modality.threshold()
    shipped = error_rates(result.genuine, result.impostor, threshold)
    at_1e2 = fnmr_at_fmr(result.genuine, result.impostor, 1e-2)
    at_1e3 = fnmr_at_fmr(result.genuine, result.impostor, 1e-3)
    at_1e4 = fnmr_at_fmr(result.genuine, result.impostor, 1e-4)
    at_zero = fnmr_at_zero_fmr(result.genuine, result.impostor)
    return {
        "modality": modality.name,
        "samples": result.samples,
        "genuine_pairs": len(result.genuine),
        "impostor_pairs": len(result.impostor),
        "failure_to_enrol_rate": result.failures_to_enrol / result.samples,
        "eer": equal_error_rate(result.genuine, result.impostor),
        "fnmr_at_fmr_1e-2": at_1e2.fnmr,
        "fnmr_at_fmr_1e-3": at_1e3.fnmr,
        "fnmr_at_fmr_1e-4": at_1e4.fnmr,
        "fnmr_at_zero_fmr": at_zero.fnmr,
        "shipped_threshold": threshold,
        "fmr_at_shipped_threshold": shipped.fmr,
        "fnmr_at_shipped_threshold": shipped.fnmr,
        # With no error observed in n pairs, the rate is below 3/n (95%).
        "zero_error_bound_genuine": rule_of_three(len(result.genuine)),
        "zero_error_bound_impostor": rule_of_three(len(result.impostor)),
    }


def _check_det_path(path: Path) -> None:
    """Fail before hours of scoring when the DET file cannot be written.

    Raises:
        EdgeGateError: the path is a folder, or its folder does not exist or
            does not let this process create a file.
    """
    if path.is_dir():
        raise EdgeGateError(
            f"--det {quote_path(path)} is a folder; give a .png file name"
        )
    if not path.parent.is_dir():
        raise EdgeGateError(
            f"--det {quote_path(path)}: folder {quote_path(path.parent)} does "
            "not exist; create it first"
        )
    # The PNG is written to a temporary file in that folder, then renamed.
    # Creating a probe file there detects a read-only file system or a
    # missing write permission before the scoring starts.
    try:
        descriptor, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as err:
        raise EdgeGateError(
            f"--det {quote_path(path)}: cannot create a file in folder "
            f"{quote_path(path.parent)}: "
            f"{err.strerror}; give a folder this user can write to"
        ) from err
    os.close(descriptor)
    os.unlink(probe)


def run_evaluate(args: argparse.Namespace) -> int:
    """Print EER, FNMR at fixed FMRs, FTE, and write the DET curve."""
    modality = load_modality(args.modality)
    directory = Path(args.directory)
    if not directory.is_dir():
        raise EdgeGateError(
            f"{quote_path(directory)} is not a folder; give the data set folder"
        )
    det_path = Path(args.det or f"det-{modality.name}.png")
    _check_det_path(det_path)
    result = score_all_pairs(modality, directory)
    figures = summarise(modality, result)
    try:
        figures["det_png"] = str(
            write_det_png(result.genuine, result.impostor, det_path)
        )
    except OSError as err:
        # The figures are worth printing even when the plot cannot be saved.
        print(
            "edge-gate biometrics: cannot write the DET curve to "
            f"{quote_path(det_path)} "
            f"(--det): {err}",
            file=sys.stderr,
        )
        figures["det_png"] = None
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for key, value in figures.items():
        if isinstance(value, float) and key != "shipped_threshold":
            print(f"{key:28} {value * 100:8.3f} %")
        else:
            print(f"{key:28} {value}")
    return 0
