"""What ``Prefer: wait`` saves a client (P5), on a served bake of either backend.

Three figures, each beside its reference measured in the same run:

- an instant task submitted with ``Prefer: wait=5``: seconds from the submit
  to the view's answer, beside the same task polled every 10 ms;
- a task of ``HALF_SECONDS``: requests per task and how late the answer comes
  after the task's own time, held (``Prefer: wait=5``) beside polled every
  ``Retry-After``;
- the plain route's throughput while ``TASK_MAX_WAITING`` polls per web
  process are held, beside the same route with none held.

The bench apps serve ``/half`` (a task of ``HALF_SECONDS``) and ``/hold`` (a
task that runs until it is cancelled, at most 60 s): ``project.WAIT_ROUTES``.
"""

import statistics
import threading
import time
import urllib.error
import urllib.request

from project import BenchError

POLL_INTERVAL = 0.01
HALF_SECONDS = 0.5
WAIT = {"Prefer": "wait=5"}


def call(url, method="GET", headers=None, timeout=30):
    """``(status, headers)`` of one request; the body is read and dropped."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            return answer.status, answer.headers
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, error.headers


def percentiles(values):
    ordered = sorted(values)
    at = lambda percent: ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]  # noqa: E731
    return {"p50": at(50), "p99": at(99), "count": len(ordered)}


def until_answered(url, path, held, interval, timeout=30):
    """Submit ``path``; poll until the view's answer. Returns (seconds, requests)."""
    started = time.perf_counter()
    status, headers = call(f"{url}{path}", headers=WAIT if held else None)
    requests = 1
    deadline = time.monotonic() + timeout
    location = headers.get("Location")
    while status == 202:
        if time.monotonic() > deadline:
            raise BenchError(f"a task of {path} was not done after {timeout} s")
        if not held:
            time.sleep(interval)
        status, _ = call(f"{url}{location}", headers=WAIT if held else None)
        requests += 1
    if status != 200:
        raise BenchError(f"{path} ended with {status}")
    return time.perf_counter() - started, requests


def instant(url, count):
    """An instant task: held on its submit beside polled every 10 ms, alternating."""
    measured = {"held": [], "polled": []}
    for _ in range(count):
        measured["held"].append(until_answered(url, "/instant", True, POLL_INTERVAL)[0])
        measured["polled"].append(until_answered(url, "/instant", False, POLL_INTERVAL)[0])
    return {way: percentiles(values) for way, values in measured.items()}


def half_second(url, count, retry_after):
    """A task of HALF_SECONDS: requests per task and lateness, held beside polled."""
    figures = {}
    for way, held in (("held", True), ("polled", False)):
        late, requests = [], []
        for _ in range(count):
            took, asked = until_answered(url, "/half", held, retry_after)
            late.append(took - HALF_SECONDS)
            requests.append(asked)
        figures[way] = {**percentiles(late), "requests": statistics.mean(requests)}
    return figures


def plain_beside_held(generator, url, holders, rounds, seconds, connections):
    """The plain route's rate with ``holders`` polls held, beside none held.

    Each holder submits a ``/hold`` task and polls it with ``Prefer: wait=20``
    over and over, so that the web processes hold as many requests as they
    may; the tasks are cancelled at the end.
    """
    unheld = [generator.measure(f"{url}/plain", seconds, connections) for _ in range(rounds)]
    locations = []
    for _ in range(holders):
        status, headers = call(f"{url}/hold")
        if status != 202:
            raise BenchError(f"/hold answered {status}")
        locations.append(headers["Location"])
    stop = threading.Event()

    def keep_held(location):
        while not stop.is_set():
            call(f"{url}{location}", headers={"Prefer": "wait=20"})

    threads = [threading.Thread(target=keep_held, args=(at,), daemon=True) for at in locations]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)  # the holders' first polls reach the server
        held = [generator.measure(f"{url}/plain", seconds, connections) for _ in range(rounds)]
    finally:
        stop.set()
        for location in locations:
            call(f"{url}{location}", method="DELETE")
        for thread in threads:
            thread.join(30)
    unheld_rate = statistics.median(load.rate for load in unheld)
    held_rate = statistics.median(load.rate for load in held)
    return {
        "holders": holders,
        "unheld": unheld_rate,
        "held": held_rate,
        "ratio": held_rate / unheld_rate if unheld_rate else 0.0,
    }


def measure(generator, url, sizes, holders, connections, progress):
    """Every P5 figure on the served bake at ``url``."""
    progress(f"wait: an instant task held and polled, {sizes.latency_tasks} each")
    results = {"instant": instant(url, sizes.latency_tasks)}
    progress(f"wait: a task of {HALF_SECONDS} s held and polled, {sizes.half_tasks} each")
    results["half"] = half_second(url, sizes.half_tasks, retry_after=1)
    progress(f"wait: the plain route with {holders} polls held")
    results["plain_held"] = plain_beside_held(
        generator, url, holders, sizes.load_rounds, sizes.load_seconds, connections
    )
    return results
