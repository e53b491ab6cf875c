"""CodeAct Desktop: a local language model that answers by running Python."""

__version__ = "0.1.0"
