"""Command-line tools, one module per command; each parses its arguments, calls the layers
below and turns a user's mistake into one line on stderr."""
