#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (slurmctld + slurmd on localhost) for the real
# Slurm test. Needs root and Debian's slurm-wlm and munge (.ci/system-packages installs them).
# Idempotent: does nothing when `sinfo` already answers.
#   bash scripts/slurm-local.sh && sinfo
set -euo pipefail
if sinfo -h >/dev/null 2>&1; then exit 0; fi
command -v slurmctld >/dev/null || { echo "slurm-local: slurm-wlm is not installed"; exit 1; }

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
conf_dir=/etc/slurm
mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /etc/munge

# munge: one key, the daemon running as root (this is a throwaway single-node cluster).
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || munged --force

cat > "$conf_dir/slurm.conf" <<CONF
ClusterName=distbench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
rm -f "$conf_dir/cgroup.conf"  # proctrack/linuxproc and task/none need no cgroup plugin

pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "slurm-local: node $host up with $cpus CPUs"; exit 0
  fi
  sleep 1
done
echo "slurm-local: the node did not come up; see /var/log/slurm/"; tail -5 /var/log/slurm/*.log; exit 1
