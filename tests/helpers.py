"""Test helpers: waiting on a condition (never a bare sleep)."""
import time


def wait_for(condition, timeout=10.0, interval=0.01, what="condition"):
    """Poll condition() until it returns a true value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (OSError, ValueError, IndexError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)
