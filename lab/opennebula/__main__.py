"""``python -m lab.opennebula``: see :mod:`lab.opennebula.cli`."""

import sys

from lab.opennebula.cli import run

sys.exit(run())
