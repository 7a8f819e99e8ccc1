"""``mlflow-prov --help`` answers without loading MLflow, numpy, pandas or SQLAlchemy.

Checked on the modules a fresh interpreter has loaded after printing the help, not on a
wall-clock time (the machine's load would decide that): importing MLflow alone takes seconds.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("mlflow", "numpy", "pandas", "sqlalchemy", "netCDF4", "zarr")
PROBE = """
import sys
from click.testing import CliRunner
from exporters.cli import main
import exporters
result = CliRunner().invoke(main, ["--help"])
assert result.exit_code == 0, result.output
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))
print(",".join(loaded))
"""


def test_help_loads_no_heavy_library():
    done = subprocess.run([sys.executable, "-c", PROBE, *HEAVY], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "", f"--help imported {done.stdout.strip()}"


def test_the_package_still_offers_its_entry_points():
    import exporters

    assert callable(exporters.export)
    assert issubclass(exporters.ReaderError, exporters.ExportError)
