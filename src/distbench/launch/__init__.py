"""How worker processes start: the local launcher here; script writers for clusters elsewhere."""
