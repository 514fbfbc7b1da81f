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
# The array cache of a user dataset (`data.user_data`) that the launcher prepared: its workers
# on this machine map that one without walking the source folder again (an entry made from
# other data than the worker's is ignored).
DATA_KEY_VAR = "DISTBENCH_DATA_KEY"
# Set by `distbench compare` for the launchers it starts: the folder of its fork servers' sockets
# (`launch.warmstart`), one per framework; without it a launcher execs each worker.
WARM_DIR_VAR = "DISTBENCH_WARM_DIR"
# Set by a fork server in each worker it forks ("fork"); an exec'd worker has none ("exec").
WORKER_START_VAR = "DISTBENCH_WORKER_START"
# The PID the launcher knows a forked worker by, when mpiexec started a stand-in for it: its PID
# file names that one, which is the one mpiexec reports.
HOST_PID_VAR = "DISTBENCH_HOST_PID"
