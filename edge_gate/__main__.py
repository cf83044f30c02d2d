"""Allow ``python -m edge_gate``."""

import sys

from edge_gate.cli import main

sys.exit(main())
