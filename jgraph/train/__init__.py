"""The training loop (`python -m jgraph.train`): buckets of an epoch through swapped partitions,
checkpoints, warm starts, calibration, distributed rounds and the run's metrics."""
