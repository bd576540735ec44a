"""`python -m jgraph <command> ...`: the same as the `jgraph` console command (jgraph.cli.main)."""

import sys

from jgraph.cli.main import main

sys.exit(main())
