"""Moving from PyTorch-BigGraph: its config and checkpoint imported as a jgraph run
(`jgraph import-pbg`, jgraph/cli/import_pbg.py; docs/pbg-migration.md)."""
