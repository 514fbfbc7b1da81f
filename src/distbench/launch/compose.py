"""Write a Dockerfile and docker-compose.yml with one container per worker.

Command: distbench launch compose --workers 3 --strategy tf-multiworker -- --dataset mnist-5k

Containers find each other by service name: torch strategies through MASTER_ADDR=worker0 and a
RANK per container, tf-multiworker through a TF_CONFIG per container naming every worker. Rank 0
writes the results into ./results, mounted from the host. Every value is written as a JSON string,
which YAML reads verbatim, with `$` doubled against Compose's interpolation, so user input cannot
change the file's structure or pull in host variables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from distbench.core.errors import UsageError
from distbench.launch.scripts import launched_by, quote, user_paths, worker_args
from distbench.results.records import check_out_dir
from distbench.strategies import Launcher, strategy_info

TF_PORT = 2222
TORCH_PORT = 29500


@dataclass
class ComposeJob:
    strategy: str
    workers: int
    run_args: list[str]
    image: str = "distbench:latest"

    def validate(self) -> None:
        if self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        allowed = launched_by(Launcher.SPAWN, Launcher.TF_CONFIG)
        if strategy_info(self.strategy).launcher not in (Launcher.SPAWN, Launcher.TF_CONFIG):
            raise UsageError(f"compose runs {', '.join(allowed)}, not {self.strategy} (an "
                             "mpiexec strategy needs an MPI launcher across containers, and a "
                             "one-process one needs no compose: use `distbench launch slurm`, "
                             "`mpiexec` or `distbench run`)")

    def environment(self, rank: int) -> dict[str, str]:
        if strategy_info(self.strategy).launcher is Launcher.TF_CONFIG:
            hosts = [f"worker{i}:{TF_PORT}" for i in range(self.workers)]
            return {"TF_CONFIG": json.dumps({"cluster": {"worker": hosts},
                                             "task": {"type": "worker", "index": rank}})}
        return {"MASTER_ADDR": "worker0", "MASTER_PORT": str(TORCH_PORT), "RANK": str(rank),
                "WORLD_SIZE": str(self.workers), "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}

    def command(self) -> list[str]:
        return ["python", *worker_args(self.strategy, self.run_args), "--out", "/results"]


def project_root() -> Path | None:
    """The source tree this distbench runs from, to build the image from; None if installed."""
    root = Path(__file__).resolve().parents[3]  # src/distbench/launch/compose.py
    return root if (root / "pyproject.toml").is_file() else None


def check_reachable(run_args: list[str], root: Path) -> None:
    """The containers run in /app, a copy of the source tree: a user model file or dataset is
    there only if it lies inside that tree and is named relative to it (and to here)."""
    for given in user_paths(run_args):
        path = Path(given).expanduser()
        inside = (Path.cwd() / path).resolve()
        if path.is_absolute() or (root / path).resolve() != inside or root not in inside.parents:
            raise UsageError(f"{given}: compose containers run in /app, a copy of {root}; put it "
                             f"inside that folder and name it relative to it, from there")


def compose_yaml(job: ComposeJob, build_context: str, dockerfile: str) -> str:
    def q(value: str) -> str:
        # JSON strings are YAML scalars read verbatim; Compose then interpolates `$`, so `$$`.
        return json.dumps(value.replace("$", "$$"))

    lines = ["services:"]
    for rank in range(job.workers):
        lines += [
            f"  worker{rank}:",
            f"    image: {q(job.image)}",
            "    build:",
            f"      context: {q(build_context)}",
            f"      dockerfile: {q(dockerfile)}",
            f"    hostname: {q(f'worker{rank}')}",
            "    environment:",
            *(f"      {k}: {q(v)}" for k, v in job.environment(rank).items()),
            f"    command: [{', '.join(q(a) for a in job.command())}]",
            "    volumes:",
            f"      - {q('./results:/results')}",
        ]
    return "\n".join(lines) + "\n"


DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir -c constraints.txt -e ".[{extras}]"
"""

README = """\
# distbench on Docker Compose: {workers} x {strategy}

One container per worker, built from the distbench source tree at `{context}`.

```bash
docker compose up --build --abort-on-container-exit   # or: docker-compose up ...
cat results/runs.jsonl                                 # rank 0's record
```

Worker command (each container): `{command}`, run in `/app`, the image's copy of the source
tree: a `--model FILE.py:fn` or `--dataset folder:DIR` given to it lies inside that tree.
`--abort-on-container-exit` stops every worker when one fails, as the local launcher does.
"""


def write_compose(job: ComposeJob, out_dir: Path) -> list[Path]:
    """Write Dockerfile, docker-compose.yml and README.md into `out_dir`; the image is built from
    the project root (the build context), with the Dockerfile named by its absolute path."""
    job.validate()
    root = project_root()
    if root is None:
        raise UsageError("compose builds the image from a distbench source checkout; run it from "
                         "one (pip install -e .)")
    check_reachable(job.run_args, root)
    check_out_dir(out_dir, "--dir").mkdir(parents=True, exist_ok=True)
    # PyTorch rows get the MPI extra, so that "MPI + DDP" workers run in the same image.
    extras = strategy_info(job.strategy).extra or "mpi"
    dockerfile = out_dir.resolve() / "Dockerfile"
    dockerfile.write_text(DOCKERFILE.format(extras=extras))
    context = str(root)
    compose = out_dir / "docker-compose.yml"
    compose.write_text(compose_yaml(job, context, str(dockerfile)))
    readme = out_dir / "README.md"
    readme.write_text(README.format(workers=job.workers, strategy=job.strategy, context=context,
                                    command=quote(job.command())))
    return [compose, dockerfile, readme]
