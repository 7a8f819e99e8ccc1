"""Export errors: one hierarchy the CLI maps to a one-line message and a non-zero exit."""


class ExportError(Exception):
    """Anything that stops an export; the message is shown to the user as-is."""


class ReaderError(ExportError):
    """Reading from MLflow (tracking server, store, artifacts, journal) failed."""


class WriterError(ExportError):
    """Writing an output format failed, or the format's library/tool is missing."""
