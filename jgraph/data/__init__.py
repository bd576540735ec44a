"""Data in: edge files (TSV/CSV/Parquet), the streaming importer and prepared datasets, name
dictionaries, generated graphs and downloads."""
