"""Rank detection from each launcher's environment, and the documented priority order."""

from __future__ import annotations

import json

import pytest

from distbench.core.errors import UsageError
from distbench.system.cluster import (
    MAX_SLURM_HOSTS,
    detect,
    expand_slurm_nodelist,
    first_slurm_host,
)


@pytest.mark.parametrize("env,expected", [
    ({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node7",
      "MASTER_PORT": "1234"}, (1, 4, 1, "node7", 1234, "torchrun")),
    ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3",
      "OMPI_COMM_WORLD_LOCAL_RANK": "0"}, (2, 3, 0, "127.0.0.1", 29500, "openmpi")),
    ({"PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1"},
     (1, 2, 1, "127.0.0.1", 29500, "mpich")),
    ({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
      "SLURM_JOB_NODELIST": "gpu[03-05,9]"}, (5, 8, 1, "gpu03", 29500, "slurm")),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:2", "c:3"]},
                               "task": {"type": "worker", "index": 2}})},
     (2, 3, 2, "127.0.0.1", 29500, "tf_config")),
    ({"TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2"]},
                               "task": {"type": "worker", "index": 0}})},
     (1, 2, 1, "127.0.0.1", 29500, "tf_config")),
    ({}, (0, 1, 0, "127.0.0.1", 29500, "none")),
])
def test_each_source(env, expected):
    e = detect(env)
    assert (e.rank, e.world_size, e.local_rank, e.master_addr, e.master_port, e.source) == expected


def test_mpi_wins_over_slurm_inside_an_allocation():
    env = {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "PMI_RANK": "3", "PMI_SIZE": "4"}
    assert detect(env).source == "mpich" and detect(env).rank == 3


def test_torchrun_wins_over_mpi():
    env = {"RANK": "1", "WORLD_SIZE": "2", "PMI_RANK": "0", "PMI_SIZE": "2"}
    assert detect(env).source == "torchrun"


def test_flags_win_over_everything():
    env = {"RANK": "1", "WORLD_SIZE": "2"}
    e = detect(env, rank=0, world_size=3, master_addr="h", master_port=9)
    assert (e.rank, e.world_size, e.master_addr, e.master_port, e.source) == (0, 3, "h", 9, "flags")


def test_rank_outside_world_is_an_error():
    with pytest.raises(UsageError, match="outside world size"):
        detect({"RANK": "2", "WORLD_SIZE": "2"})


@pytest.mark.parametrize("nodelist,first", [
    ("node1", "node1"), ("node[1-3]", "node1"), ("gpu[07,09]", "gpu07"), ("a1,b2", "a1"),
])
def test_slurm_nodelist(nodelist, first):
    assert first_slurm_host(nodelist) == first


@pytest.mark.parametrize("env,local", [
    ({"RANK": "0", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}, 4),
    ({"PMI_RANK": "0", "PMI_SIZE": "4", "MPI_LOCALNRANKS": "2"}, 2),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "6", "SLURM_NTASKS_PER_NODE": "3(x2)"}, 3),
    ({"RANK": "0", "WORLD_SIZE": "2"}, 2),
])
def test_workers_per_node_share_its_cores(env, local):
    assert detect(env).local_world_size == local


@pytest.mark.parametrize("env,message", [
    ({"RANK": "abc", "WORLD_SIZE": "2"}, "RANK='abc' is not a whole number"),
    ({"RANK": "0", "WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number"),
    ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE='0' is not a whole number in [1,"),
    ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "-1"}, "LOCAL_RANK='-1'"),
    ({"RANK": "0", "WORLD_SIZE": "9" * 5000}, "WORLD_SIZE='99999"),
    ({"RANK": "\u0661", "WORLD_SIZE": "2"}, "RANK="),  # an Arabic-Indic one, which int() takes
    ({"MASTER_PORT": "abc"}, "MASTER_PORT='abc' is not a whole number in [1, 65535]"),
    ({"MASTER_PORT": "999999"}, "MASTER_PORT='999999' is not a whole number in [1, 65535]"),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NODELIST": "n[a-b]"},
     "SLURM_JOB_NODELIST='n[a-b]': 'a-b' is not a number"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]},
                               "task": {"type": "worker", "index": -1}})},
     "TF_CONFIG's task 'worker' -1 is not one of the 1 tasks"),
    ({"LOCAL_WORLD_SIZE": "9" * 5000}, None),  # read leniently, and never as a huge number
])
def test_malformed_launcher_variables_are_one_line_errors(env, message):
    if message is None:
        assert detect(env).local_world_size == 1
        return
    with pytest.raises(UsageError) as exc:
        detect(env)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_port_flag_out_of_range_is_an_error():
    with pytest.raises(UsageError, match=r"--master-port must be in \[1, 65535\], got 70000"):
        detect({}, rank=0, world_size=1, master_port=70000)


def test_the_first_slurm_host_of_a_huge_range_is_found_without_expanding_it():
    env = {"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NODELIST": "n[0-99999999999]"}
    assert detect(env).master_addr == "n0"
    with pytest.raises(UsageError, match=f"names more than {MAX_SLURM_HOSTS:,} hosts"):
        expand_slurm_nodelist("n[0-99999999999]")
