"""Load generators: ``wrk`` where it can be had, else a bounded Python one.

Both answer a ``Load``: requests per second, p50 and p99 latency, and how many
answers were not 2xx. The Python generator is bounded in requests and in time,
and is slower than wrk: its figures compare with each other, not with wrk's.
"""

import http.client
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass


@dataclass
class Load:
    """What one load run measured."""

    requests: int
    seconds: float
    p50: float  # seconds
    p99: float  # seconds
    failed: int  # answers that were not 2xx, and socket errors

    @property
    def rate(self):
        return self.requests / self.seconds if self.seconds else 0.0


def find_wrk(install):
    """The path of ``wrk``; installed from apt first when missing, if ``install`` and root."""
    path = shutil.which("wrk")
    if path or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_wrk = ["apt-get", "install", "-y", "-q", "wrk"]
    # The package lists may be missing or stale: update once, then try again.
    for command in (install_wrk, ["apt-get", "update", "-q"], install_wrk):
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        path = shutil.which("wrk")
        if path:
            return path
    return None


def combined(loads):
    """One ``Load`` for several runs: counts summed, latencies their medians."""
    return Load(
        requests=sum(load.requests for load in loads),
        seconds=sum(load.seconds for load in loads),
        p50=statistics.median(load.p50 for load in loads),
        p99=statistics.median(load.p99 for load in loads),
        failed=sum(load.failed for load in loads),
    )


# -- wrk --------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def run_wrk(wrk, url, seconds, connections=8):
    """``wrk -t1 -c<connections> -d<seconds>s --latency url``, as the original design ran it."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 30, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise RuntimeError(f"{' '.join(command)} failed: {error}") from error
    return parse_wrk(result.stdout)


def parse_wrk(output):
    """A ``Load`` from wrk's report."""
    percentiles = {
        int(match[1]): float(match[2]) * _UNITS[match[3]] for match in _PERCENTILE.finditer(output)
    }
    total = _TOTAL.search(output)
    if total is None or set(percentiles) != {50, 99}:
        raise RuntimeError(f"cannot read wrk's report:\n{output}")
    failed = sum(int(n) for n in _NON_2XX.findall(output))
    for match in _SOCKET_ERRORS.finditer(output):
        failed += sum(int(n) for n in match.groups())
    return Load(
        requests=int(total[1]),
        seconds=float(total[2]) * _UNITS[total[3]],
        p50=percentiles[50],
        p99=percentiles[99],
        failed=failed,
    )


# -- Python -----------------------------------------------------------------


class _Budget:
    """A count of requests shared by the client threads, and a deadline."""

    def __init__(self, requests, seconds):
        self._left = requests
        self._lock = threading.Lock()
        self.deadline = time.monotonic() + seconds

    def take(self):
        """Claim one request; False once the count or the time is spent."""
        with self._lock:
            if self._left <= 0 or time.monotonic() >= self.deadline:
                return False
            self._left -= 1
            return True


def python_load(url, seconds, connections=8, requests=10_000_000):
    """GET ``url`` over ``connections`` keep-alive connections, for at most
    ``requests`` requests and ``seconds`` seconds."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    budget = _Budget(requests, seconds)
    latencies, failures = [], []

    def client():
        done, failed = [], 0
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            while budget.take():
                started = time.perf_counter()
                try:
                    connection.request("GET", target)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    failed += 1
                    connection.close()  # reconnects on the next request
                    continue
                done.append(time.perf_counter() - started)
                failed += not 200 <= response.status < 300
        finally:
            connection.close()
        latencies.extend(done)  # list.extend is atomic under the GIL
        failures.append(failed)

    started = time.monotonic()
    clients = [threading.Thread(target=client, daemon=True) for _ in range(connections)]
    for thread in clients:
        thread.start()
    for thread in clients:
        # Each request has a 10 s socket timeout; past that a client is stuck.
        thread.join(max(0.0, budget.deadline - time.monotonic()) + 15)
    elapsed = time.monotonic() - started
    latencies.sort()
    return Load(
        requests=len(latencies),
        seconds=elapsed,
        p50=_percentile(latencies, 50),
        p99=_percentile(latencies, 99),
        failed=sum(failures),
    )


def _percentile(ordered, percent):
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


class Generator:
    """The load generator of one benchmark run: wrk if it can be had, else Python."""

    def __init__(self, choice):
        self.wrk = None
        if choice in ("auto", "wrk"):
            self.wrk = find_wrk(install=True)
            if choice == "wrk" and self.wrk is None:
                raise RuntimeError("wrk was asked for and could not be installed")
        self.name = f"wrk ({self.wrk})" if self.wrk else "Python (threads + http.client)"

    def measure(self, url, seconds, connections=8):
        """Requests per second and latency of GET ``url`` for ``seconds``."""
        if self.wrk:
            return run_wrk(self.wrk, url, seconds, connections)
        return python_load(url, seconds, connections)
