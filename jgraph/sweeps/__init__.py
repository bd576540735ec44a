"""Hyperparameter sweeps: `python -m jgraph.sweeps.summary SWEEP_DIR` collects a sweep's runs.

Sweeps themselves run through Hydra: `python -m jgraph.train -m key=a,b ...` (basic sweeper, grid)
or `hydra/sweeper=optuna_mrr` (the hydra-optuna-sweeper plugin, an optional extra).
"""
