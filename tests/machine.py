"""Timeouts for subprocess-heavy tests, scaled to how busy the machine is.

A fixed timeout that is generous on an idle machine fails on a loaded one (the four-process
concurrency test once ran out of 300 s with other suites beside it). The load average per
core says how much slower everything is right now; the timeout grows with it, never shrinks.
"""

from __future__ import annotations

import os
import time


def load_factor() -> float:
    """The 1-minute load average per core, at least 1 (an idle machine)."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def scaled_timeout(seconds: float) -> float:
    """``seconds`` on an idle machine, multiplied by :func:`load_factor` when busier."""
    return seconds * load_factor()


def busy(seconds: float) -> None:
    """Keep one core busy for ``seconds``, so a monitor samples real CPU use."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(10_000))
