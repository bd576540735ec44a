"""Planning a pass: entity partitions, edge buckets and their order, which partitions are
resident when (swap plans), and batches of chunks built from a bucket's edges. Pure numpy/numba."""
