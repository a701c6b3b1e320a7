"""Run a multi-worker job as local processes on 127.0.0.1: free ports, one TF_CONFIG per worker.

For trying MultiWorkerMirroredStrategy on one machine (and testing it); a
real cluster sets TF_CONFIG itself and needs none of this.  Only loopback
addresses are used.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass(frozen=True)
class WorkerResult:
    index: int
    returncode: int
    stdout: str
    stderr: str


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (held open together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG for worker ``index`` of a cluster of workers on ``ports`` (worker 0 is the chief)."""
    return json.dumps({"cluster": {"worker": [f"{HOST}:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


def run_local(command: list[str], workers: int = 2, *, timeout: float = 120, env: dict | None = None,
              cwd=None, attempts: int = 2) -> list[WorkerResult]:
    """Start ``command`` once per worker with its TF_CONFIG, wait for all; retry if a port was taken meanwhile."""
    results = _run_once(command, workers, timeout, env, cwd)
    for _ in range(attempts - 1):
        if not any("Address already in use" in r.stderr for r in results):
            break
        results = _run_once(command, workers, timeout, env, cwd)
    return results


def _run_once(command, workers, timeout, env, cwd) -> list[WorkerResult]:
    ports = free_ports(workers)
    base = {**os.environ, **(env or {})}
    processes = [subprocess.Popen(command, cwd=cwd, env={**base, "TF_CONFIG": tf_config(ports, i)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(workers)]
    results = []
    try:
        for index, process in enumerate(processes):
            stdout, stderr = process.communicate(timeout=timeout)
            results.append(WorkerResult(index, process.returncode, stdout, stderr))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        for process in processes[len(results):]:
            stdout, stderr = process.communicate()
            results.append(WorkerResult(len(results), -9, stdout, stderr + f"\ntimed out after {timeout} s"))
    return results
