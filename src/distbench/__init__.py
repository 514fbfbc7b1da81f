"""distbench: train one model under several data-parallel strategies and compare them fairly."""

__version__ = "0.1.0"
