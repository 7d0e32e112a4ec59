"""Where tasks run. Each backend is one module with the same small interface.

- ``reserve()``: claim a place for one more task; False when full.
- ``release()``: give back a place that ``reserve`` claimed but was not used.
- ``run(task)``: start a task in a place claimed by ``reserve``.
- ``cancel(task)``: drop a task that has not started yet, freeing its place.
- ``close()``: take no more tasks; return the queued ones, which never start.
- ``wait(timeout)``: wait up to ``timeout`` seconds for running tasks to end;
  False if some still run.
"""
