"""One module per ``mlflow-prov`` command; :mod:`exporters.cli` loads them by name."""
