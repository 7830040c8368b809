"""The exception family of flashast.

Every failure a user can cause is a `FlashastError`; the CLI turns each into one line on stderr and an
exit code taken from the class, so no user mistake ever ends in a traceback. Anything else escaping
the CLI is a bug in flashast and is reported as such (exit 123).
"""

from __future__ import annotations

import dis
import os
from pathlib import Path


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
    """The generated C++ did not verify; `report` is the multi-line diagnostic text (warnings inside
    third-party headers counted in one line), `detailed` the same with each of those warnings."""

    exit_code = 3

    def __init__(self, summary: str, report: str, detailed: str | None = None) -> None:
        self.report = report
        self.detailed = report if detailed is None else detailed
        super().__init__(summary)


class LibclangUnavailable(UsageError):
    """libclang could not be imported or loaded; verification cannot run (`--no-verify` still can)."""


_FLASHAST_DIRECTORY = Path(__file__).resolve().parent
_STANDARD_LIBRARY = Path(os.__file__).resolve().parent


# What plugin code may raise that flashast turns into a `PluginError` naming the plugin: its bugs, a
# `sys.exit()`, and a `KeyboardInterrupt` it raises itself (not one the user's Ctrl-C delivers).
PLUGIN_ESCAPES = (Exception, SystemExit, KeyboardInterrupt)
_RAISE = dis.opmap["RAISE_VARARGS"]


def user_interrupt(error: BaseException) -> bool:
    """Whether `error` is an interrupt the user caused: a `KeyboardInterrupt` that no `raise`
    statement raised (a signal arrives between any two instructions, a `raise` is one of them)."""
    if not isinstance(error, KeyboardInterrupt):
        return False
    traceback = error.__traceback__
    if traceback is None:
        return True
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    code = traceback.tb_frame.f_code.co_code
    return not 0 <= traceback.tb_lasti < len(code) or code[traceback.tb_lasti] != _RAISE


def one_line(text: str) -> str:
    """Messages from plugin code may span lines; the CLI's errors never do."""
    return " ".join(text.split())


def plugin_frame(error: BaseException) -> str:
    """` (at file.py:LINE)`: the innermost frame of a real file outside flashast and the standard
    library, that is the plugin's own line; empty when there is none (then the bug is flashast's).

    Frames without a file (`<string>` from dataclasses, `<frozen importlib...>`) say nothing useful.
    """
    location = ""
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if not filename.startswith("<") and not _is_library(Path(filename).resolve()):
            location = f" (at {Path(filename).name}:{traceback.tb_lineno})"
        traceback = traceback.tb_next
    return location


def _is_library(path: Path) -> bool:
    """Whether `path` is flashast's or the standard library's (installed plugins are neither)."""
    if _FLASHAST_DIRECTORY in path.parents:
        return True
    return _STANDARD_LIBRARY in path.parents and not {"site-packages", "dist-packages"} & set(path.parts)
