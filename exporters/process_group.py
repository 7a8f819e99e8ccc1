"""A child server started in a process group of its own, and stopped as a whole.

``mlflow server`` starts uvicorn, which may fork worker processes (and MLflow's job runner):
signalling only the process we started leaves those holding the port. So the server gets its
own session and process group; a stop signal received here goes to the whole group, and the
group is waited for, with SIGKILL after a grace period for whatever does not stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
POLL_SECONDS = 0.2


@dataclass
class StopRequests:
    """The stop signals this process received, forwarded to the server's group once there is
    one (a signal that arrives while the server starts is sent as soon as it exists); the
    first one's time is kept so that the grace period counts from it."""

    signals: list[int] = field(default_factory=list)
    first_at: float | None = None
    group_id: int | None = None

    def receive(self, signum: int) -> None:
        self.signals.append(signum)
        if self.first_at is None:
            self.first_at = time.monotonic()
        if self.group_id is not None:
            signal_group(self.group_id, signum)

    def attach(self, group_id: int) -> None:
        self.group_id = group_id
        for signum in self.signals:
            signal_group(group_id, signum)

    def grace_spent(self, grace_seconds: float) -> bool:
        return self.first_at is not None and time.monotonic() - self.first_at > grace_seconds


def start_in_own_group(command: list[str]) -> subprocess.Popen[bytes]:
    """Start ``command`` as the leader of a new session and process group (its pid is the
    group id), so that a terminal's Ctrl-C reaches it only through us, exactly once."""
    return subprocess.Popen(command, start_new_session=True)


def signal_group(group_id: int, signum: int) -> None:
    """Send ``signum`` to every process of the group; an empty group is already stopped."""
    try:
        os.killpg(group_id, signum)
    except ProcessLookupError:
        pass


def live_members(group_id: int) -> list[psutil.Process]:
    """The group's processes that still run (zombies waiting for their reaper hold nothing)."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group_id and \
                    process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


@contextmanager
def stop_signals_forwarded() -> Iterator[StopRequests]:
    """While inside, SIGTERM/SIGINT/SIGHUP sent to this process go to the server's group
    (``attach`` names it) instead of ending this process, which would orphan the server;
    the previous handlers come back on exit."""
    requests = StopRequests()
    previous = {signum: signal.signal(signum, lambda received, _frame: requests.receive(received))
                for signum in STOP_SIGNALS}
    try:
        yield requests
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def wait_for_leader(process: subprocess.Popen[bytes], requests: StopRequests,
                    grace_seconds: float) -> int:
    """The leader's exit status; once a stop was requested and the grace period is spent,
    the group is killed rather than waited for forever (a hung shutdown)."""
    while True:
        try:
            return process.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            if requests.grace_spent(grace_seconds):
                signal_group(process.pid, signal.SIGKILL)


def gone_within(group_id: int, seconds: float) -> bool:
    """Whether nothing of the group runs any more, waiting up to ``seconds`` for it."""
    deadline = time.monotonic() + seconds
    while live_members(group_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def end_group(group_id: int, grace_seconds: float) -> None:
    """Stop what is left of the group after its leader exited (workers, job runners): SIGTERM,
    then SIGKILL for what is still running after the grace period."""
    if not live_members(group_id):
        return
    signal_group(group_id, signal.SIGTERM)
    if not gone_within(group_id, grace_seconds):
        signal_group(group_id, signal.SIGKILL)
        gone_within(group_id, grace_seconds)
