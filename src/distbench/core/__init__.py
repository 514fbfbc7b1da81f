"""The vocabulary every layer shares: the typed run configuration and the user-facing errors.

Owns `RunConfig` and `DistbenchError`; imports nothing else of distbench (the bottom layer)."""
