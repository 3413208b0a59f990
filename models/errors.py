"""One root exception and its named subclasses.

Every error vigiamar raises on purpose derives from :class:`VigiamarError`, so a
shell (CLI, faust agent) can tell expected failures from bugs.
"""

from __future__ import annotations


class VigiamarError(Exception):
    """Root of every error vigiamar raises on purpose."""


class ConfigError(VigiamarError):
    """A configuration file or value is unusable. The message names the key."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {problem}")


class InputError(VigiamarError):
    """An input (file, stream) cannot be used at all."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        self.source = source
        self.problem = problem
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


class UnknownFormatError(InputError):
    """The format of an input could not be detected or is not supported."""


class MissingTimeError(InputError):
    """An input carries no event time at all; vigiamar never substitutes 'now'."""


class DecodeError(VigiamarError):
    """One record could not be decoded. ``reason`` is a short stable label for counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)
