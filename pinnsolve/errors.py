"""User-facing errors.

Everything a user can get wrong (a TOML key, a parameter, an expression, a problem file) raises a
subclass of :class:`PinnsolveError`. The CLI prints ``str(error)`` as one line on stderr and exits
with code 2; it never shows a traceback unless ``--debug`` is given. So the message must carry all
the context a user needs: which file, which key, and what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PinnsolveError(Exception):
    """An error caused by the user's input; its message is the whole story, on one line."""


class ConfigError(PinnsolveError):
    """A problem file (TOML) or a value in it is wrong.

    ``str(err)`` reads ``"<file>: [section] key: <message>"`` with the parts that are known.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.message = message
        self.file = file
        self.key = key
        super().__init__(self._format())

    def _format(self) -> str:
        where = [part for part in (self.file, self.key) if part]
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message

    def located(self, *, file: str | None = None, key: str | None = None) -> ConfigError:
        """The same error with a file and/or key filled in where they were still unknown."""
        return ConfigError(self.message, file=self.file or file, key=self.key or key)


class ConfigErrors(ConfigError):
    """Several mistakes found in one file, reported together: ``str(err)`` is one line per
    mistake (each as a :class:`ConfigError` reads), so a user fixes them all in one go."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.message, file=first.file, key=first.key)

    def _format(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def located(self, *, file: str | None = None, key: str | None = None) -> ConfigErrors:
        return ConfigErrors([e.located(file=file, key=key) for e in self.errors])


def gathered(errors: list[ConfigError]) -> ConfigError:
    """One error for the mistakes in ``errors`` (nested :class:`ConfigErrors` flattened)."""
    flat = [one for e in errors for one in (e.errors if isinstance(e, ConfigErrors) else [e])]
    return flat[0] if len(flat) == 1 else ConfigErrors(flat)


def did_you_mean(word: str, options: Iterable[str], fmt: str = "{!r}") -> str:
    """``" (did you mean 'x'?)"`` for the closest option, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {fmt.format(close[0])}?)" if close else ""
