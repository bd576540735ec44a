"""Storage: the only package that touches TensorStore (partition tables, edge buckets, checkpoints)."""
