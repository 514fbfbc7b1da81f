"""How worker processes start: the local launcher, and the Slurm, compose and multi-node writers.
Imports strategies (facts only), results, vcluster, system and core; never a framework."""
