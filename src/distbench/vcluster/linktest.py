"""Measure a link of the virtual cluster: one TCP stream from one node to another, a few seconds.

Command: python -m distbench.vcluster.linktest serve 10.213.0.2        (prints its port, then JSON)
         python -m distbench.vcluster.linktest send 10.213.0.2 PORT 2  (sends for 2 s)

`distbench cluster status` runs the server inside one node's namespace and the sender inside
another's (`ip netns exec`), like iperf. The receiver does the timing, from its first byte to the
sender's close, so data still sitting in socket buffers when the sender stops is not counted as
sent; the rate is goodput (TCP payload), a few percent under the shaped line rate, which counts
headers too.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time

from distbench.core.errors import DistbenchError
from distbench.vcluster.spec import Node

CHUNK = 1 << 20
ACCEPT_TIMEOUT_S = 20.0
START_TIMEOUT_S = 20.0


def serve(address: str) -> None:
    """Accept one connection, count its bytes until it closes, print JSON {bytes, seconds}."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind((address, 0))
        srv.listen(1)
        srv.settimeout(ACCEPT_TIMEOUT_S)
        print(f"port {srv.getsockname()[1]}", flush=True)
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(ACCEPT_TIMEOUT_S)
            received, start = 0, None
            while chunk := conn.recv(CHUNK):
                if start is None:
                    start = time.monotonic()
                received += len(chunk)
            seconds = time.monotonic() - start if start is not None else 0.0
    print(json.dumps({"bytes": received, "seconds": seconds}), flush=True)


def send(address: str, port: int, seconds: float) -> None:
    payload = b"\0" * CHUNK
    with socket.create_connection((address, port), timeout=ACCEPT_TIMEOUT_S) as conn:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            conn.sendall(payload)


def _in_namespace(node: Node, *args: str) -> list[str]:
    return ["ip", "netns", "exec", node.name, sys.executable, "-m", __name__, *args]


def measure(src: Node, dst: Node, seconds: float) -> float:
    """Bits/s from `src` to `dst` over `seconds` of one TCP stream; raises if it cannot run."""
    server = subprocess.Popen(_in_namespace(dst, "serve", dst.address), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        port = _read_port(server)
        subprocess.run(_in_namespace(src, "send", dst.address, port, str(seconds)),
                       capture_output=True, text=True, timeout=seconds + START_TIMEOUT_S,
                       check=True)
        out, _ = server.communicate(timeout=START_TIMEOUT_S)
        result = json.loads(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        err = getattr(exc, "stderr", None)
        err = err if isinstance(err, str) else ""
        raise DistbenchError(f"link test {src.name} -> {dst.name} failed: "
                             f"{(err.strip().splitlines() or [str(exc)])[-1]}") from None
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
    if result["seconds"] <= 0:
        raise DistbenchError(f"link test {src.name} -> {dst.name} received nothing")
    return result["bytes"] * 8 / result["seconds"]


def _read_port(server: subprocess.Popen[str]) -> str:
    """The server's first line, `port N`, waited for with a deadline."""
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], START_TIMEOUT_S)
    line = server.stdout.readline() if ready else ""
    if not line.startswith("port "):
        stderr = server.stderr.read() if server.poll() is not None and server.stderr else ""
        raise subprocess.SubprocessError(stderr or "the receiver did not start")
    return line.split()[1]


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "serve":
        serve(argv[1])
        return 0
    if len(argv) == 4 and argv[0] == "send":
        send(argv[1], int(argv[2]), float(argv[3]))
        return 0
    print("usage: python -m distbench.vcluster.linktest serve ADDR | send ADDR PORT SECONDS",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
