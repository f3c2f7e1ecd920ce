"""The event loop the predictor serves on: what KServe's ``--event-loop`` asks for.

KServe 0.21 hands ``--event-loop`` to uvicorn's config, then runs uvicorn inside its own
``asyncio.run()``, where uvicorn never sets a loop up: the flag changed nothing, and every predictor
served on the standard library's loop. Measured side by side against the same bare endpoint on each
loop (bench/serving.py's method, 2026-12-03), the standard loop costs ~6 % more CPU per one-row
request and ~3 % more at 100 rows than uvloop. ``asyncio.run()`` takes its loop from the policy, so
the policy is set here, before the server starts.
"""

from __future__ import annotations

import asyncio


class EventLoopUnavailable(Exception):
    pass


def install_event_loop(choice: str) -> str:
    """Set the loop ``choice`` names (``auto``: uvloop when installed, else asyncio); returns the
    loop's name. :class:`EventLoopUnavailable` for ``uvloop`` when it is not installed."""
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise EventLoopUnavailable("--event-loop uvloop: uvloop is not installed in this image") from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # KServe's set-up asks for the current loop before asyncio.run() makes its own: the standard
    # policy makes one on that call, uvloop's refuses ("no current event loop"); give it one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    return "uvloop"
