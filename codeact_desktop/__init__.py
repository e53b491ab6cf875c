"""CodeAct Desktop: a local language model that answers by running Python."""

__version__ = "0.1.0"

import logging as _logging

# A library's log is silent until the app (app_log.setup) or an embedder asks for it.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
