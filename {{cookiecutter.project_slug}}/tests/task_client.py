"""Drive a task over HTTP as a client would: submit it, read its monitor, wait until done.

For your own views' tests, with Flask's test client::

    from task_client import monitor, submit, wait_until_done

    location = submit(client, "/reports/q3", method="POST", json={"rows": [1, 2]})
    assert monitor(client, location)["status"] in {"queued", "running"}
    done = wait_until_done(client, location)
    assert done.status_code == 201

``wait_until_done(client, location, wait=5)`` has the service hold each poll
until the task ends (``Prefer: wait=5``), rather than polling every 2 ms.

The waiting never calls ``time.sleep``, so a test may patch ``time.sleep`` in
the code under test without slowing or breaking it.
"""

import threading
import time

# Waits between polls; an Event's wait, not time.sleep (see above).
_pause = threading.Event().wait


def submit(client, path, method="GET", **kwargs):
    """Call an ``@async_api`` view; check the ``202`` and return the task's status URL."""
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == 202, f"{method} {path} answered {response.status_code}"
    return response.headers["Location"]


def monitor(client, location, **kwargs):
    """The status monitor of a task that is queued, running or cancelled (a dict)."""
    response = client.get(location, **kwargs)
    assert "Task-Status" in response.headers, f"{location} is no task ({response.status_code})"
    return response.get_json()


def wait_until_done(client, location, timeout=10.0, interval=0.002, wait=None, **kwargs):
    """Poll ``location`` until it stops answering ``202``; return that answer.

    With ``wait`` (whole seconds), each poll asks the service to hold it until
    the task ends (``Prefer: wait=<wait>``): a task is then polled once or
    twice, not every ``interval``. Fails the test if the task is not done
    within ``timeout`` seconds.
    """
    if wait is not None:
        kwargs["headers"] = {**kwargs.get("headers", {}), "Prefer": f"wait={wait}"}
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(location, **kwargs)
        if response.status_code != 202:
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"the task at {location} was not done within {timeout} s")
        _pause(interval)
