"""The run record (the results schema): building records, appending them safely, loading them.
Imports strategies (facts only), system and core; no framework."""
