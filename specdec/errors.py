"""Errors a user can act on. Every message says what was wrong and what to do instead."""


class SpecDecError(Exception):
    """Base class: caught by the CLI and printed as one line, never as a traceback."""


class UnknownNameError(SpecDecError, KeyError):
    """An unknown drafter / policy / task / model name. The message lists the known ones."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(SpecDecError):
    """A model could not be resolved or loaded (missing package, corrupt file, no network...)."""


class TokenizerMismatchError(SpecDecError):
    """Target and draft do not share a vocabulary."""


class InputError(SpecDecError, ValueError):
    """Bad user input: empty prompt, context overflow, invalid sampling settings..."""


class DataError(SpecDecError):
    """A data file is missing or malformed."""


class RunnerError(SpecDecError):
    """A model runner failed to run a pass (an engine's own error, e.g. llama.cpp's decode)."""


class UnknownOptionError(InputError, TypeError):
    """A keyword option no config declares (`generate(bogus=1)`): an InputError for the CLI, and the TypeError
    Python callers expect from an unknown keyword."""
