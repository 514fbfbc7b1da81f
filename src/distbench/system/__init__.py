"""Facts about this process and machine: who am I in the cluster, the machine fingerprint,
clocks and statistics, signals, file modes. Imports only `core`; never torch or TensorFlow."""
