"""Helpers for app tests (imported by basename: test folders have no __init__.py)."""

import time


async def wait_for(pilot, predicate, timeout=60.0, step=0.05):
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(step)


async def hijack_ready(pilot, app):
    """Wait for the model and the hijack panel's first answer; returns the panel."""
    await wait_for(pilot, lambda: app.model_info is not None or app.model_error is not None, timeout=120)
    assert app.model_error is None, app.model_error
    p = app.query_one("#hijack")
    await wait_for(pilot, lambda: p.last_request is not None and p.shown_seq == p.last_request.seq)
    return p
