"""``python3 -m lab.nexus_sim``: see :mod:`lab.nexus_sim.cli`."""

from lab.nexus_sim.cli import main

main()
