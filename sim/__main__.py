"""`python -m sim` is `crlm-sim`."""

import sys

from sim.cli import main

sys.exit(main())
