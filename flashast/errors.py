"""The exception family of flashast.

Every failure a user can cause is a `FlashastError`; the CLI turns each into one line on stderr and an
exit code taken from the class, so no user mistake ever ends in a traceback. Anything else escaping
the CLI is a bug in flashast and is reported as such (exit 123).
"""

from __future__ import annotations


class FlashastError(Exception):
    """A failure the user can act on; `exit_code` is what the CLI returns for it."""

    exit_code = 2


class ModelError(FlashastError, ValueError):
    """A node or name was built with a value that is not valid C++ (or not valid for its contract)."""

    def __init__(self, owner: str, field: str, value: object, problem: str) -> None:
        self.owner = owner
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{owner}.{field}={value!r}: {problem}")


class UsageError(FlashastError):
    """The command line, a filter, or the output directory is not usable as given."""


class PluginError(FlashastError):
    """A plugin failed to load or registered something that clashes with what exists."""


class VerificationError(FlashastError):
    """The generated C++ did not verify; `report` is the full multi-line diagnostic text."""

    exit_code = 3

    def __init__(self, summary: str, report: str) -> None:
        self.report = report
        super().__init__(summary)


class LibclangUnavailable(UsageError):
    """libclang could not be imported or loaded; verification cannot run (`--no-verify` still can)."""
