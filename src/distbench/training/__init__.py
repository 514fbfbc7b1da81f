"""What one worker process does, for both frameworks: load data, build the model, run the shared
epoch driver with the framework's step, measure, write the record. Imports strategies, data,
models, results, system and core; never launch, study, report or cli."""
