"""`distbench compare`: the plan of cells and repeats, running each as a fresh `distbench run`,
keeping the best model. Imports report, results, strategies (facts only), system and core."""
