"""The package version, in the bottom layer: the report footer and `distbench --version` read it,
and `import distbench` re-exports it, without any layer importing the package root (which itself
reaches up to `distbench.api`)."""

__version__ = "0.1.0"
