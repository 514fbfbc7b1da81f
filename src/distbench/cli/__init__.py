"""The `distbench` command line: one module per command group, each with `add_parser` and `run`.
It only parses and calls the library; it may import every other package (the top layer)."""
