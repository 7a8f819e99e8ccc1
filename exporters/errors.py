"""Export errors: one hierarchy the CLI maps to a one-line message and a non-zero exit."""

import signal


class ExportError(Exception):
    """Anything that stops an export; the message is shown to the user as-is."""


class ReaderError(ExportError):
    """Reading from MLflow (tracking server, store, artifacts, journal) failed."""


class WriterError(ExportError):
    """Writing an output format failed, or the format's library/tool is missing."""


class ExportInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT arrived during an export. A ``KeyboardInterrupt`` (so a
    ``BaseException``): no ``except Exception`` on the way turns it into a read or write
    error, and code calling :func:`exporters.export` that handles Ctrl-C still does. The
    staging folder is removed on the way out; the CLI exits with 128 + the signal number
    (143, 130), as shells expect."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
