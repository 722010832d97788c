"""`python -m vnet.bench`: see vnet.bench.cli."""

import sys

from .cli import main

sys.exit(main())
