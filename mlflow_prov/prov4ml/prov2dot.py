"""``python -m mlflow_prov.prov4ml.prov2dot --prov_json prov.json --output prov_graph.dot``.

The seeds' command, with their argument names: a PROV-JSON file (ours or yProv4ML's, any
generation) drawn as a Graphviz DOT graph by the prov library. Bad input ends with one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlflow_prov.prov4ml.script import run_script


def prov_to_dot_file(prov_json: Path, output: Path) -> Path:
    """Write ``output`` (DOT) from ``prov_json``; raises ValueError naming what is wrong."""
    from prov.dot import prov_to_dot
    from prov.model import ProvDocument

    try:
        document = ProvDocument.deserialize(content=prov_json.read_text(encoding="utf-8"),
                                            format="json")
    except OSError as exc:
        raise ValueError(f"{prov_json}: cannot read it ({exc.strerror or exc})") from exc
    except Exception as exc:  # prov raises bare exceptions of many kinds on bad JSON
        raise ValueError(f"{prov_json}: not a PROV-JSON document ({exc})") from exc
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(prov_to_dot(document).to_string(), encoding="utf-8")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlflow_prov.prov4ml.prov2dot",
                                     description="Draw a PROV-JSON file as a DOT graph.")
    parser.add_argument("--prov_json", required=True, type=Path, help="PROV-JSON file")
    parser.add_argument("--output", required=True, type=Path, help="DOT file to write")
    return run_script(parser, lambda a: prov_to_dot_file(a.prov_json, a.output), argv)


if __name__ == "__main__":
    sys.exit(main())
