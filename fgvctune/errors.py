"""The one error family fgvctune raises for problems a user can fix.

The CLI prints these as a single line (plus a hint) and exits non-zero; anything
else that escapes is a bug and keeps its traceback. A message quotes values from
the user's files, which can be any size and hold any character: it is made one line and
cut short here, once for all.
"""

import unicodedata

LONGEST = 300  # characters of a message or hint shown
BREAKING = ("Cc", "Zl", "Zp")  # control characters, line and paragraph separators: shown escaped


def shortened(text: str, longest: int = LONGEST) -> str:
    """`text` as one line cut in the middle to `longest` characters, keeping its start (the file, the key) and its
    end; control characters (a newline in a file name or a column's name) are shown escaped."""
    if not text.isprintable():  # a fast test first: most messages hold no such character
        text = "".join(repr(c)[1:-1] if unicodedata.category(c) in BREAKING else c for c in text)
    if len(text) <= longest:
        return text
    head = longest * 2 // 3
    return text[:head] + "…" + text[-(longest - head - 1) :]


class FgvctuneError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str = ""):
        message, hint = shortened(message), shortened(hint)
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
