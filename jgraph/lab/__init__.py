"""Experiment tooling: run directories read back, reports, plots and sweep summaries."""
