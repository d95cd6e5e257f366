"""Logging set-up shared by the rule adapters."""

import logging
import sys
import warnings


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
