"""Logging set-up shared by the rule adapters."""

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from cartrack.design import InputError


def setup_logging(path: str) -> None:
    """Send log records, warnings and uncaught exceptions of a rule to its log file."""
    logging.basicConfig(
        filename=path,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    log = logging.getLogger("cartrack")

    def excepthook(kind, value, tb):
        log.error("uncaught exception", exc_info=(kind, value, tb))
        sys.__excepthook__(kind, value, tb)

    sys.excepthook = excepthook


@contextmanager
def exit_on_input_error(path: str) -> Iterator[None]:
    """Bad input ends the job with its message and the log path, without a traceback.

    Snakemake then shows the message once (with ``show-failed-logs``, the log as well);
    every other exception keeps its traceback, since it is a bug to report.
    """
    try:
        yield
    except InputError as error:
        logging.getLogger("cartrack").error("%s", error)
        sys.stderr.write(f"\nInputError: {error}\n(log: {path})\n")
        sys.exit(1)
