"""What the seeds' three command-line tools share: parse, run one action, report one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def run_script(parser: argparse.ArgumentParser, action: Callable[[argparse.Namespace], Path],
               argv: Sequence[str] | None) -> int:
    """Print the file ``action`` wrote and return 0, or print ``error: <reason>`` on stderr and
    return 1 when it refused its input (a ``ValueError`` names the file and the reason)."""
    args = parser.parse_args(argv)
    try:
        print(action(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
