"""``python -m mlflow_prov.prov4ml.dot2svg --dot prov_graph.dot --output prov_graph.svg``.

The seeds' command: renders a DOT file with Graphviz ``dot`` (which must be installed, e.g.
``apt-get install graphviz``). Bad input ends with one line naming the file and the fix.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from mlflow_prov.prov4ml.script import run_script


def dot_to_svg_file(dot: Path, output: Path) -> Path:
    """Render ``dot`` to ``output`` (SVG); raises ValueError naming what is wrong."""
    program = shutil.which("dot")
    if program is None:
        raise ValueError("Graphviz 'dot' is not on PATH: install graphviz "
                         "(apt-get install graphviz, brew install graphviz)")
    if not dot.is_file():
        raise ValueError(f"{dot}: no such DOT file")
    output.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([program, "-Tsvg", str(dot), "-o", str(output)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["dot failed"])[0]
        raise ValueError(f"{dot}: Graphviz could not render it ({reason})")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlflow_prov.prov4ml.dot2svg",
                                     description="Render a DOT graph as SVG with Graphviz.")
    parser.add_argument("--dot", required=True, type=Path, help="DOT file")
    parser.add_argument("--output", required=True, type=Path, help="SVG file to write")
    return run_script(parser, lambda a: dot_to_svg_file(a.dot, a.output), argv)


if __name__ == "__main__":
    sys.exit(main())
