"""The variables through which distbench's launchers talk to the workers they start.

Both sides import them from here, so a launcher never imports the training code (and with it
torch) just to name a variable.
"""

# Wall-clock time at which the launcher started, so start-up cost is measured from the user's view.
LAUNCH_T0_VAR = "DISTBENCH_LAUNCH_T0"
# Set for workers that distbench's launcher started: each leaves its PID there (so a rank killed
# under mpiexec can be named), and the launcher, not rank 0, prints the summary.
RUN_DIR_VAR = "DISTBENCH_RUN_DIR"
# The run id the launcher chose: rank 0's record carries it, so the launcher finds its own record
# among those of runs written into the same --out at the same time.
RUN_ID_VAR = "DISTBENCH_RUN_ID"
