"""The server's process group is stopped as a whole: a worker its leader left behind, a
member that ignores SIGTERM, and a stop signal that arrives before the server exists.

Real child processes (plain Python, started in a session of their own), no servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from exporters.process_group import (
    end_group,
    live_members,
    stop_signals_forwarded,
    wait_for_leader,
)

GRACE_SECONDS = 0.3
SLEEPER = "import time; time.sleep(600)"
UP_THEN_SLEEPS = "import time; print('up', flush=True); time.sleep(600)"
LEAVES_A_WORKER = ("import subprocess, sys; "
                   f"subprocess.Popen([sys.executable, '-c', {SLEEPER!r}]); "
                   "print('up', flush=True)")
IGNORES_TERM = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('up', flush=True); time.sleep(600)")


def _started(script: str) -> subprocess.Popen[str]:
    """A Python child leading its own group, returned once it printed that it is up."""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    assert child.stdout is not None and child.stdout.readline() == "up\n"
    return child


def test_a_worker_the_leader_left_behind_is_stopped():
    leader = _started(LEAVES_A_WORKER)
    assert leader.wait(timeout=60) == 0
    assert len(live_members(leader.pid)) == 1
    end_group(leader.pid, GRACE_SECONDS)
    assert live_members(leader.pid) == []


def test_a_member_that_ignores_sigterm_is_killed_after_the_grace_period():
    stubborn = _started(IGNORES_TERM)
    end_group(stubborn.pid, GRACE_SECONDS)
    assert live_members(stubborn.pid) == []
    assert stubborn.wait(timeout=60) == -signal.SIGKILL


def test_a_stop_that_came_while_the_server_started_reaches_it():
    handler_before = signal.getsignal(signal.SIGTERM)
    with stop_signals_forwarded() as stops:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stops.signals == [signal.SIGTERM]
        server = _started(UP_THEN_SLEEPS)
        stops.attach(server.pid)
        assert wait_for_leader(server, stops, grace_seconds=60) == -signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == handler_before


def test_a_leader_that_ignores_the_forwarded_stop_is_killed_after_the_grace_period():
    with stop_signals_forwarded() as stops:
        stubborn = _started(IGNORES_TERM)
        stops.attach(stubborn.pid)
        os.kill(os.getpid(), signal.SIGTERM)
        assert wait_for_leader(stubborn, stops, GRACE_SECONDS) == -signal.SIGKILL
