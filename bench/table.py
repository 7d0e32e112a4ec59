"""The benchmark's report: a Markdown table per bake and notes on how it was measured.

Each row holds the figure, its reference measured in the same run, how the
two compare, the original design's figure and the template's own target, and
whether the target was met.
"""

import math
import os

HEADER = (
    "figure",
    "measured",
    "reference, same run",
    "vs reference",
    "original design",
    "target",
    "verdict",
)

# The targets the template sets itself, for each bake.
SUBMIT_RATIO = 0.70
POLL_RATIO = 0.95
BYTES_PER_TASK = 1_000
LOCK_HOLD_SECONDS = 0.005
SHUTDOWN_MARGIN_SECONDS = 0.2
CELERY_SUBMIT_RATIO = 0.90
CELERY_POLL_RATIO = 0.90
LATENCY_RATIO = 1.0
# Prefer: wait (issue 17): a held instant task's answer at most half the
# reference's p50; a held task of 0.5 s answered within 50 ms of its end in at
# most 2 requests; the plain route at 0.9 of its rate beside held requests.
HELD_LATENCY_RATIO = 0.5
HELD_REQUESTS = 2
HELD_LATE_SECONDS = 0.050
HELD_PLAIN_RATIO = 0.90


def rate(load):
    """``1,234 req/s, p50 1.2 ms, p99 3.4 ms``."""
    return f"{load.rate:,.0f} req/s, p50 {load.p50 * 1000:.1f} ms, p99 {load.p99 * 1000:.1f} ms"


def seconds(value):
    return f"{value:.2f} s" if math.isfinite(value) else "> 15 s (did not exit)"


def verdict(met):
    return "met" if met else "**missed**"


def throughput_row(figure, load, plain, ratio, original, target):
    # Rounded down, so that a ratio shown as the target has met it.
    shown = math.floor(ratio * 100) / 100
    return (
        figure,
        rate(load),
        f"plain route: {rate(plain)}",
        f"{shown:.2f} x",
        original,
        f">= {target:.2f} x",
        verdict(ratio >= target),
    )


def memory_row(results):
    memory, plain = results["memory"], results["plain_memory"]
    per_task = memory["growth"] / memory["tasks"] if memory["tasks"] else float("nan")
    per_request = results["plain_rss_growth"] / plain.requests if plain.requests else 0.0
    return (
        "memory per retained finished task",
        f"{per_task:,.0f} bytes ({memory['tasks']:,} tasks, "
        f"RSS +{memory['growth'] / 2**20:.1f} MiB)",
        f"plain route: {per_request:,.0f} bytes per request ({plain.requests:,} requests)",
        "-",
        "about 2,800 bytes",
        f"<= {BYTES_PER_TASK:,} bytes",
        verdict(per_task <= BYTES_PER_TASK),
    )


def threads_row(results, slow_tasks):
    plain, workers = results["plain_threads"], results["max_workers"]
    # gthread's own: its main thread and its pool, which a light load may not
    # fill; the measured plain app counts too, in case gunicorn adds threads.
    own = max(plain, 1 + results["gunicorn_threads"])
    # The app's own: the cleaner and the thread that writes a quiet process's last log lines.
    limit = own + workers + 2
    return (
        f"peak OS threads, {slow_tasks} slow tasks submitted at once",
        f"{results['slow_peak']} (idle: {results['idle_threads']})",
        f"plain Flask app, same load: {plain}; TASK_MAX_WORKERS: {workers}",
        f"+{results['slow_peak'] - plain}",
        "510",
        f"<= {limit} (server's own {own} + {workers} workers + cleaner + log tail)",
        verdict(results["slow_peak"] <= limit),
    )


def cleaner_row(cleaner):
    longest = cleaner["longest_hold_seconds"]
    return (
        f"one cleaner pass, {cleaner['tasks']:,} retained, 1% expired",
        f"lock held {longest * 1000:.2f} ms at most ({cleaner['holds']} holds); "
        f"pass {cleaner['pass_seconds'] * 1000:.1f} ms",
        f"one hold over every task (the original way): "
        f"{cleaner['original_pass_seconds'] * 1000:.1f} ms",
        "-",
        "crashed under load",
        f"lock held < {LOCK_HOLD_SECONDS * 1000:.0f} ms at a time",
        verdict(longest < LOCK_HOLD_SECONDS),
    )


def shutdown_row(
    shutdown, figure="SIGTERM to exit, idle", original="5 s (the whole graceful timeout)"
):
    service, plain = shutdown["service"], shutdown["plain"]
    difference = round(service - plain, 2) + 0.0  # no "-0.00"
    return (
        figure,
        seconds(service),
        f"plain Flask app: {seconds(plain)}",
        f"{difference:+.2f} s" if math.isfinite(difference) else "-",
        original,
        f"<= plain + {SHUTDOWN_MARGIN_SECONDS} s",
        verdict(difference <= SHUTDOWN_MARGIN_SECONDS),
    )


def rows(results, sizes):
    return [
        throughput_row(
            "submit an instant task",
            results["submit"],
            results["plain_submit"],
            results["submit_ratio"],
            "0.42 x",
            SUBMIT_RATIO,
        ),
        throughput_row(
            "poll a finished task",
            results["poll"],
            results["plain_poll"],
            results["poll_ratio"],
            "0.90 x",
            POLL_RATIO,
        ),
        memory_row(results),
        threads_row(results, sizes.slow_tasks),
        cleaner_row(results["cleaner"]),
        shutdown_row(results["shutdown"]),
        *wait_rows(results),
    ]


def wait_rows(results, pattern=None):
    """The Prefer: wait rows; ``pattern``: Flask's Celery pattern's latency, the reference."""
    wait = results["wait"]
    held, polled = wait["instant"]["held"], wait["instant"]["polled"]
    reference = pattern or polled
    ratio = held["p50"] / reference["p50"] if reference["p50"] else float("inf")
    against = (
        f"Flask's pattern polled every 10 ms: {latency(pattern)}; " if pattern else ""
    ) + f"polled every 10 ms: {latency(polled)}"
    half = wait["half"]
    late_held, late_polled = half["held"], half["polled"]
    plain = wait["plain_held"]
    return [
        (
            f"instant task, submit with Prefer: wait=5 until its answer ({held['count']} tasks)",
            latency(held),
            against,
            f"p50 {ratio:.2f} x",
            "-",
            f"p50 <= {HELD_LATENCY_RATIO:.1f} x",
            verdict(ratio <= HELD_LATENCY_RATIO),
        ),
        (
            f"task of 0.5 s, held (Prefer: wait=5), {late_held['count']} tasks",
            f"{late_held['requests']:.2f} requests per task; answer {latency(late_held)}"
            " after the task's 0.5 s",
            f"polled every Retry-After (1 s): {late_polled['requests']:.2f} requests per task;"
            f" answer {latency(late_polled)} after",
            f"{late_held['requests'] / late_polled['requests']:.2f} x the requests",
            "-",
            f"<= {HELD_REQUESTS} requests, p99 <= {HELD_LATE_SECONDS * 1000:.0f} ms after",
            verdict(
                late_held["requests"] <= HELD_REQUESTS and late_held["p99"] <= HELD_LATE_SECONDS
            ),
        ),
        (
            f"plain route while {plain['holders']} polls are held",
            f"{plain['held']:,.0f} req/s",
            f"none held: {plain['unheld']:,.0f} req/s",
            f"{math.floor(plain['ratio'] * 100) / 100:.2f} x",
            "-",
            f">= {HELD_PLAIN_RATIO:.2f} x",
            verdict(plain["ratio"] >= HELD_PLAIN_RATIO),
        ),
    ]


def markdown(table):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join(lines)


def notes(results, sizes, quick):
    failed = {
        "plain (beside submit)": results["plain_submit"].failed,
        "submit": results["submit"].failed,
        "plain (beside poll)": results["plain_poll"].failed,
        "poll": results["poll"].failed,
        "memory fill": results["memory"]["load"].failed,
        "slow submits": results["slow"].failed,
    }
    lines = [
        f"- Load generator: {results['generator']}; 8 connections, "
        f"each throughput figure alternates with the plain route in {sizes.load_rounds} "
        f"round(s) of {sizes.load_seconds} s each, and its ratio is the median of the rounds'; "
        "gunicorn gthread, 1 worker x 8 threads.",
        "- Non-2xx answers (and socket errors): "
        + ", ".join(f"{name} {count}" for name, count in failed.items())
        + ".",
        f"- Memory: VmRSS of the gunicorn worker (/proc/<pid>/status) before and after "
        f"{sizes.retained_tasks:,} instant tasks submitted over HTTP and all finished.",
        "- Threads: /proc/<pid>/status of the gunicorn worker, sampled every 2 ms.",
        "- Cleaner: in a subprocess importing the baked package; "
        "store.remove_expired() with the store's lock wrapped to time each hold.",
        f"- SIGTERM: median of {sizes.shutdown_rounds} round(s), graceful timeout 5 s.",
        f"- The machine's load average (1 min) was "
        f"{results['load_average'][0]:.1f} as the measuring began and "
        f"{results['load_average'][1]:.1f} at its end, on {os.cpu_count()} CPUs.",
    ]
    if quick:
        lines.append("- Quick run: the counts are too small for these figures to mean anything.")
    return "\n".join(lines)


def print_report(results, sizes, quick):
    print(markdown(rows(results, sizes)))
    print()
    print(notes(results, sizes, quick))


# -- the celery bake ------------------------------------------------------------


def latency(figures):
    return f"p50 {figures['p50'] * 1000:.1f} ms, p99 {figures['p99'] * 1000:.1f} ms"


def celery_rows(results):
    submit = throughput_row(
        "submit an instant task",
        results["submit"],
        results["pattern_submit"],
        results["submit_ratio"],
        "-",
        CELERY_SUBMIT_RATIO,
    )
    submit = (
        submit[0],
        submit[1],
        submit[2].replace("plain route", "Flask's pattern, delay()"),
        *submit[3:],
    )
    ours, pattern = results["latency"]["service"], results["latency"]["pattern"]
    latency_ratio = ours["p50"] / pattern["p50"] if pattern["p50"] else float("inf")
    spread = results["not_found"]
    share = spread["not_found"] / spread["polls"] if spread["polls"] else float("nan")
    memory = results["redis_memory"]
    per_task = memory["growth"] / memory["tasks"] if memory["tasks"] else float("nan")
    return [
        submit,
        throughput_row(
            "poll a finished task",
            results["poll"],
            results["plain_poll"],
            results["poll_ratio"],
            "-",
            CELERY_POLL_RATIO,
        ),
        (
            f"instant task, submit until its answer is readable ({ours['count']} tasks)",
            latency(ours),
            f"Flask's pattern, delay() then AsyncResult.ready(): {latency(pattern)}",
            f"p50 {latency_ratio:.2f} x",
            "-",
            f"p50 <= {LATENCY_RATIO:.1f} x",
            verdict(latency_ratio <= LATENCY_RATIO),
        ),
        (
            f"polls answered 404, {results['web_processes']} web processes",
            f"{spread['not_found']} of {spread['polls']:,} polls ({share:.1%})",
            "-",
            "-",
            "24 to 50 % with 2 processes",
            "0",
            verdict(spread["not_found"] == 0 and spread["polls"] > 0),
        ),
        (
            "Redis memory per retained finished task",
            f"{per_task:,.0f} bytes ({memory['tasks']:,} tasks, "
            f"+{memory['growth'] / 2**20:.1f} MiB)",
            f"MEMORY USAGE of one task's key: {memory['key_bytes']:,} bytes",
            "-",
            "-",
            f"<= {BYTES_PER_TASK:,} bytes",
            verdict(per_task <= BYTES_PER_TASK),
        ),
        shutdown_row(results["shutdown"], "SIGTERM to exit, idle web processes", "-"),
        *wait_rows(results, pattern),
    ]


def celery_notes(results, sizes, quick):
    trips = results["round_trips"]
    failed = {
        "pattern submit": results["pattern_submit"].failed,
        "submit": results["submit"].failed,
        "plain": results["plain_poll"].failed,
        "poll": results["poll"].failed,
        "memory fill": results["redis_memory"]["failed"],
    }
    lines = [
        f"- Load generator: {results['generator']}; 8 connections, each throughput figure "
        f"alternates with its reference in {sizes.load_rounds} round(s) of "
        f"{sizes.load_seconds} s each, the queue drained after each; ratio: the median of "
        f"the rounds'. gunicorn gthread, {results['web_processes']} worker processes x 8 "
        "threads; one Celery worker (prefork, concurrency TASK_MAX_WORKERS = 8) started with "
        "the README's command; a private redis-server; all on this machine.",
        f"- Redis round trips: submit {trips['submit']} (Flask's pattern: "
        f"{trips['pattern_submit']}), poll of a running task {trips['poll']}, poll of a "
        f"finished one {trips['poll_finished']}, one task run by a worker {trips['run']} "
        "(besides Celery's own fetch of the message).",
        "- Non-2xx answers (and socket errors): "
        + ", ".join(f"{name} {count}" for name, count in failed.items())
        + ".",
        f"- Latency: one client, each task polled every 10 ms until readable, the two ways "
        f"alternating; 404s: {sizes.spread_tasks:,} tasks, 8 clients, every poll on a new "
        "connection.",
        "- Redis memory: INFO memory used_memory before and after the tasks, all finished.",
        f"- SIGTERM: median of {sizes.shutdown_rounds} round(s), both apps under the same conf.",
        f"- The machine's load average (1 min): {results['load_average'][0]:.1f} as the "
        f"measuring began, {results['load_average'][1]:.1f} at its end.",
    ]
    if quick:
        lines.append("- Quick run: the counts are too small for these figures to mean anything.")
    return "\n".join(lines)


def print_celery_report(results, sizes, quick):
    print(markdown(celery_rows(results)))
    print()
    print(celery_notes(results, sizes, quick))
