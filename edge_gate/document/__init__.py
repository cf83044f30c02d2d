"""Travel documents: the ICAO 9303 MRZ parser and the document-reader drivers.

``parse_mrz`` turns MRZ lines into an :class:`MrzResult` and
``mrz_is_valid`` gives its verdict alone; ``build_mrz``
makes lines with correct check digits (tests and the rig's travellers);
``document_problems`` is the lane's document policy. ``MrzReader`` is the
reader interface and ``SerialMrzReader`` its pyserial implementation.
"""

from ._build import build_mrz
from ._parse import (
    FILLER_CHECK_DIGIT,
    LONG_NUMBER_INCLUDES_FILLER,
    TOLERANCES,
    mrz_is_valid,
    parse_mrz,
)
from ._reader import MrzReader, SerialMrzReader
from ._result import MrzFields, MrzFormat, MrzResult, document_problems, is_expired

__all__ = [
    "FILLER_CHECK_DIGIT",
    "LONG_NUMBER_INCLUDES_FILLER",
    "TOLERANCES",
    "MrzFields",
    "MrzFormat",
    "MrzReader",
    "MrzResult",
    "SerialMrzReader",
    "build_mrz",
    "document_problems",
    "is_expired",
    "mrz_is_valid",
    "parse_mrz",
]
