"""Communication: the allreduce micro-benchmark, the alpha-beta cost model and the projection
to more workers. Imports launch, strategies, results, models, system and core."""
