"""`python -m jgraph.data.import`: the streaming importer's command line (see jgraph/data/importer.py).

`import` is a Python keyword, so this module can only be run with -m; code imports
`jgraph.data.importer` (`run_import`, `ImportSpec`).
"""

import sys

from jgraph.data.importer import main

if __name__ == "__main__":
    sys.exit(main())
