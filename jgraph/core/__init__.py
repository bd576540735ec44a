"""Core maths: scorers and their registries, the model, negatives, counter-based random numbers,
row-wise Adagrad, ranking metrics and the jitted training step. Pure functions; no I/O."""
