"""Helpers for app tests (imported by basename: test folders have no __init__.py)."""

import time


async def wait_for(pilot, predicate, timeout=60.0, step=0.05):
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(step)
