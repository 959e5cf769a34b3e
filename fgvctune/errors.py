"""The one error family fgvctune raises for problems a user can fix.

The CLI prints these as a single line (plus a hint) and exits non-zero; anything
else that escapes is a bug and keeps its traceback.
"""


class FgvctuneError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(FgvctuneError):
    """A bad option, option value or configuration key."""

    exit_code = 2


class DataError(FgvctuneError):
    """The dataset on disk does not match what its adapter expects."""


class ModelError(FgvctuneError):
    """A model name, checkpoint or weight download that cannot be used."""
