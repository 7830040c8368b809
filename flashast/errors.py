"""The exception family of flashast.

Every failure a user can cause is a `FlashastError`; the CLI turns each into one line on stderr and an
exit code taken from the class, so no user mistake ever ends in a traceback. Anything else escaping
the CLI is a bug in flashast and is reported as such (exit 123).

Signals are part of the family too: the command's handlers raise `Interrupted` (SIGINT) and
`Terminated` (SIGTERM), so a run ends through its `finally` blocks and the user's signal can be told
from an exception plugin code raises (`user_interrupt`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# The command's exit codes: a failure's is its class's `exit_code` (2 unless said otherwise).
EXIT_OK = 0
EXIT_DIFFERENCES = 1  # `--check`/`--diff`: DIR differs from what a run would write
EXIT_USAGE = 2
EXIT_VERIFICATION = 3
EXIT_INTERNAL = 123


class FlashastError(Exception):
    """A failure the user can act on; `exit_code` is what the CLI returns for it."""

    exit_code = EXIT_USAGE


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
    """A plugin failed to load or registered something that clashes with what exists; `kind` names
    the kind whose code failed, so the CLI can name the plugin that registered it."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        self.kind = kind
        super().__init__(message)


class Findings(Protocol):
    """What failed verification, as data (a verification or dispatch report): rendered once, when
    printed, so the CLI decides how (`--header-warnings`) instead of choosing between two texts."""

    def text(self, header_warnings: bool = True) -> str: ...


class VerificationError(FlashastError):
    """The generated C++ did not verify: `findings` says why, `hint` (a line or empty) what may help.
    `report` is its text as the CLI prints it by default (warnings inside third-party headers counted
    in one line), `detailed` the same with each of those warnings."""

    exit_code = EXIT_VERIFICATION

    def __init__(self, summary: str, findings: Findings | str, detailed: str | None = None, hint: str = "") -> None:
        if isinstance(findings, str):  # flashast 0.1's form: the texts, rendered by the raiser
            findings = _Text(findings, findings if detailed is None else detailed)
        self.findings: Findings = findings
        self.hint = hint
        super().__init__(summary)

    def text(self, header_warnings: bool = False) -> str:
        return self.findings.text(header_warnings=header_warnings) + (f"\n{self.hint}" if self.hint else "")

    @property
    def report(self) -> str:
        return self.text(header_warnings=False)

    @property
    def detailed(self) -> str:
        return self.text(header_warnings=True)


@dataclass(frozen=True)
class _Text:
    """Findings already rendered, in both forms."""

    counted: str
    listed: str

    def text(self, header_warnings: bool = True) -> str:
        return self.listed if header_warnings else self.counted


class OutputError(UsageError):
    """Standard output cannot be written (a full disk, a closed descriptor): the run's result did not
    reach its reader, so it is an error, one line, exit 2 (a reader that stopped early is not)."""


class LibclangUnavailable(UsageError):
    """libclang could not be imported or loaded; verification cannot run (`--no-verify` still can)."""


_FLASHAST_DIRECTORY = Path(__file__).resolve().parent
_STANDARD_LIBRARY = Path(os.__file__).resolve().parent


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), raised by the command's own handler: a `KeyboardInterrupt` that plugin code
    raises is its bug, this one is the user's wish (exit 130)."""


class Terminated(BaseException):
    """SIGTERM (a CI job cancelled, `kill`): the run ends as an interrupt does, cleaning up first (exit 143)."""


def _raise_interrupted(signal_number: int, frame: object) -> None:
    raise Interrupted


def _raise_terminated(signal_number: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """While the command runs: SIGINT raises `Interrupted` and SIGTERM `Terminated`, so that every
    `finally` on the way out runs (scratch folders removed, parses in flight waited for). Outside
    the main thread, where Python cannot install handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = _install({signal.SIGINT: _raise_interrupted, signal.SIGTERM: _raise_terminated})
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _install(handlers: dict[signal.Signals, Callable[[int, object], None]]) -> dict[signal.Signals, Any]:
    """Install `handlers`, except for a signal the process was told to ignore (`nohup`, a background
    job of a script): that one stays ignored. Returns the handlers replaced."""
    previous = {}
    for number, handler in handlers.items():
        if signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(number, handler)
    return previous


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for a moment (cleaning up): they are delivered when it ends."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def user_interrupt(error: BaseException) -> bool:
    """Whether `error` is a signal the user sent rather than something code raised: what the
    command's handlers raise (`signals_raise`); outside the command (flashast used as a library,
    Python's own SIGINT handler in place) any `KeyboardInterrupt`."""
    if isinstance(error, (Interrupted, Terminated)):
        return True
    return isinstance(error, KeyboardInterrupt) and signal.getsignal(signal.SIGINT) is not _raise_interrupted


def defined_by_flashast(function: object) -> bool:
    """Whether `function` is flashast's own code (a built-in kind's builder), by the module that
    defines it: a kind built with `build=int` or a plugin's lambda is the plugin's, even when no
    frame of the plugin's file is on the traceback."""
    module = getattr(function, "__module__", None)
    return isinstance(module, str) and (module == "flashast" or module.startswith("flashast."))


def _end_quietly_while_starting(signal_number: int, frame: object) -> None:
    """Before `main` runs nothing exists to clean up: say so in one line and end (no traceback from
    the middle of an import)."""
    message = b"flashast: interrupted\n" if signal_number == signal.SIGINT else b"flashast: terminated\n"
    os.write(2, message)
    os._exit(128 + signal_number)


def _is_the_command() -> bool:
    """Whether this process is `python -m flashast` (being located: `sys.argv[0]` is `-m` then) or
    the `flashast` console script, rather than a program importing flashast as a library."""
    arguments = getattr(sys, "orig_argv", [])
    as_module = sys.argv[:1] == ["-m"] and any(
        argument == "-mflashast" or (argument == "-m" and following == "flashast")
        for argument, following in zip(arguments, [*arguments[1:], ""], strict=True))
    return as_module or (bool(sys.argv) and Path(sys.argv[0]).name == "flashast")


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


if _is_the_command() and threading.current_thread() is threading.main_thread():
    # The command spends its first 100-300 ms importing (the presets are built then); a signal in
    # that time ends it in one line. `main` installs the handlers of the run itself.
    _install({signal.SIGINT: _end_quietly_while_starting, signal.SIGTERM: _end_quietly_while_starting})
