"""SVG pictures rendered by Graphviz ``dot``: ``graph.svg`` and ``experiment.svg``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from prov.model import ProvDocument

from exporters.errors import WriterError
from exporters.graph import experiment_graph, run_graph
from exporters.layout import SVG
from exporters.options import WriterContext
from exporters.records import ExperimentRecord, RunRecord

RENDER_TIMEOUT_S = 120


class SvgWriter:
    """Pipes the DOT source (ML view or full PROV graph, see :mod:`exporters.graph`) through
    ``dot -Tsvg``."""

    def __init__(self) -> None:
        self.dot_program = find_dot()

    def write_run(self, ctx: WriterContext, run: RunRecord, doc: ProvDocument,
                  run_dir: Path) -> list[Path]:
        source = run_graph(ctx.options, run, doc, ctx.lineage).to_string()
        return [self.render(source, run_dir / SVG[0])]

    def write_experiment(self, ctx: WriterContext, experiment: ExperimentRecord,
                         runs: Sequence[RunRecord], doc: ProvDocument,
                         exp_dir: Path) -> list[Path]:
        source = experiment_graph(ctx.options, experiment, runs, doc).to_string()
        return [self.render(source, exp_dir / SVG[1])]

    def render(self, source: str, path: Path) -> Path:
        """``dot -Tsvg`` of the DOT ``source``, written to ``path``."""
        try:
            result = subprocess.run([self.dot_program, "-Tsvg"], input=source.encode("utf-8"),
                                    capture_output=True, timeout=RENDER_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise WriterError(f"Graphviz dot took over {RENDER_TIMEOUT_S} s for {path.name}; "
                              "lower --max-nodes") from exc
        if result.returncode != 0:
            reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise WriterError(f"Graphviz dot failed for {path.name}: "
                              f"{reason[-1] if reason else result.returncode}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(result.stdout)
        return path


def find_dot() -> str:
    """The ``dot`` executable, or a WriterError saying how to install it."""
    program = shutil.which("dot")
    if program is None:
        raise WriterError("SVG output needs Graphviz's 'dot' program, which is not on PATH: "
                          "install it with 'apt-get install graphviz' (Debian/Ubuntu), "
                          "'brew install graphviz' (macOS) or 'conda install graphviz'")
    return program
