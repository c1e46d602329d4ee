"""The local five-city platform: start, watch and stop every service process of every city.

Each (city, service) is one `nameko run` process with that city's environment; logs go to
`.run/logs/<city>-<service>.log` and pids to `.run/<city>-<service>.pid` (for `make down`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from contracts.reference import CITY_CODES
from liandong.settings import SERVICE_CLASSES, SERVICES, Site

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = Path(os.environ.get("LIANDONG_RUN_DIR", REPO / ".run"))


@dataclass
class ServiceProcess:
    city: str
    service: str
    port: int
    proc: subprocess.Popen | None = None
    replica: int = 0

    @property
    def name(self) -> str:
        suffix = f"-{self.replica + 1}" if self.replica else ""
        return f"{self.city}-{self.service}{suffix}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(site: Site, cities=CITY_CODES, services=SERVICES, extra_env: dict | None = None,
          run_dir: Path = RUN_DIR, replicas: dict[str, int] | None = None,
          first_replica: int = 0) -> list[ServiceProcess]:
    """Start each service of each city; `replicas` runs more than one process of a service
    (competing consumers on the same queues, as in production; not for the gateway, which
    owns its city's HTTP port). `first_replica` > 0 adds replicas beside running ones."""
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    procs = []
    for city, service in ((c, s) for c in cities for s in services):
        for replica in range(first_replica, (replicas or {}).get(service, 1)):
            sp = ServiceProcess(city, service, site.service_port(service, city, replica),
                                replica=replica)
            env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning",
                   **site.service_env(city, service, replica), **(extra_env or {})}
            log = open(run_dir / "logs" / f"{sp.name}.log", "ab")
            sp.proc = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config",
                 str(REPO / "deploy" / "nameko.yml"), SERVICE_CLASSES[service]],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            (run_dir / f"{sp.name}.pid").write_text(str(sp.proc.pid))
            procs.append(sp)
    return procs


def wait_ready(procs: list[ServiceProcess], seconds: float | None = None) -> None:
    """Until every process answers /readyz; by default allow 60 s plus 6 s per process (on
    2 cores, 25 processes importing at once take a while)."""
    seconds = seconds or 60 + 6 * len(procs)
    deadline = time.monotonic() + seconds
    pending = list(procs)
    while pending:
        for sp in list(pending):
            if sp.proc is not None and sp.proc.poll() is not None:
                raise RuntimeError(f"{sp.name} exited with {sp.proc.returncode}; see "
                                   f".run/logs/{sp.name}.log")
            try:
                if requests.get(f"{sp.url}/readyz", timeout=2).status_code == 200:
                    pending.remove(sp)
            except requests.RequestException:
                pass
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {seconds:.0f} s: "
                               f"{', '.join(sp.name for sp in pending)}")
        time.sleep(0.2)


def stop(procs: list[ServiceProcess], timeout: float = 15) -> None:
    for sp in procs:
        if sp.proc and sp.proc.poll() is None:
            sp.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for sp in procs:
        if not sp.proc:
            continue
        try:
            sp.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            sp.proc.kill()
            sp.proc.wait()


def stop_from_pidfiles(run_dir: Path = RUN_DIR, timeout: float = 15) -> int:
    """Stop processes started by an earlier `up` (used by `make down`)."""
    pids = []
    for pidfile in sorted(run_dir.glob("*.pid")):
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
        except (ValueError, ProcessLookupError):
            pass
        pidfile.unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # reap if it is our child
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return True
