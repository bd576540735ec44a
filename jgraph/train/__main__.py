import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jgraph.cli.train import main  # noqa: E402

main()
