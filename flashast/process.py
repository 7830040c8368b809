"""What the flashast command owes its process: standard streams it can trust, and one scratch folder.

- Standard output: everything the command prints there (`--list`, `--diff`, `--version`, the `cost`
  report, argparse's help) goes through `CheckedOutput`, which writes text as the file system spells
  paths (UTF-8, undecodable bytes as they were, whatever the locale: the way `--list` prints them) and
  turns a failed write into an `OutputError`, one line and exit 2, instead of a traceback or a silent
  exit 0. A reader that stopped early (`BrokenPipeError`) is not an error: that stays the caller's.
- Standard error that cannot be written loses its messages, never the exit code (`_Diagnostics`).
- Closed descriptors 0-2 are reopened on /dev/null first, so that no file flashast or libclang opens
  later takes their number (libclang's driver prints to descriptor 1; it must not land in a file).
- `scratch_folder`: real-header verification's temporary files (flashast's own and libclang's
  `preamble-*.pch`) all go into one private folder, removed when the run ends however it ends.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import NoReturn, TextIO, cast

from flashast.errors import OutputError, UsageError, signals_held


class _CheckedBytes(io.RawIOBase):
    """The binary side of `CheckedOutput` (`sys.stdout.buffer`): writes and flushes that fail raise
    `OutputError`, and the failure is remembered so that one argparse swallows still ends the run."""

    def __init__(self, target: io.BufferedIOBase | None) -> None:
        super().__init__()
        self.target = target
        self.failure: OutputError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        if self.target is None:
            self._fail("is closed, cannot write")
        try:
            return self.target.write(cast(bytes, data))
        except BrokenPipeError:
            raise
        except OSError as error:
            self._fail(f"cannot write ({error.strerror or error})")

    def flush(self) -> None:
        if self.target is None:
            return
        try:
            self.target.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            self._fail(f"cannot write ({error.strerror or error})")

    def _fail(self, problem: str) -> NoReturn:
        self.failure = OutputError(f"standard output: {problem}")
        if self.target is not None:
            # What is still buffered would fail again when the interpreter flushes it at exit.
            point_at_devnull(1)
        raise self.failure

    def fileno(self) -> int:
        if self.target is None:
            raise OSError("standard output is closed")
        return self.target.fileno()


class _TextTarget(io.RawIOBase):
    """Bytes written to a text-only stream, decoded as they were encoded (UTF-8, surrogates kept)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        written = cast(bytes, data)
        self.stream.write(written.decode("utf-8", "surrogateescape"))
        return len(written)

    def flush(self) -> None:
        self.stream.flush()


class CheckedOutput(io.TextIOBase):
    """`sys.stdout` while the command runs (see the module docstring)."""

    def __init__(self, original: TextIO | None) -> None:
        super().__init__()
        target: io.BufferedIOBase | None = None
        if original is not None:
            # A caller of `main` may have put a text-only stream in place (`io.StringIO`).
            target = cast(io.BufferedIOBase, getattr(original, "buffer", None) or _TextTarget(original))
        self.buffer = _CheckedBytes(target)

    encoding = "utf-8"
    errors = "surrogateescape"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.buffer.write(os.fsencode(text))
        return len(text)

    def flush(self) -> None:
        self.buffer.flush()

    def fileno(self) -> int:
        return self.buffer.fileno()

    def isatty(self) -> bool:
        try:
            return os.isatty(self.fileno())
        except OSError:
            return False

    @property
    def failure(self) -> OutputError | None:
        return self.buffer.failure


class _Diagnostics(io.TextIOBase):
    """`sys.stderr` while the command runs: a message that cannot be written (`2>/dev/full`, a reader
    of `2>&1 | head` gone) is dropped, so the exit code still says what happened instead of 1 or 123."""

    def __init__(self, original: TextIO) -> None:
        super().__init__()
        self.original = original

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            try:
                self.original.write(text)
            except UnicodeEncodeError:  # a strict stream: the message escaped, not lost
                self.original.write(text.encode("ascii", "backslashreplace").decode("ascii"))
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.original.flush()

    def fileno(self) -> int:
        return self.original.fileno()

    def isatty(self) -> bool:
        try:
            return self.original.isatty()
        except (OSError, ValueError):
            return False


def point_at_devnull(descriptor: int) -> None:
    """Reopen `descriptor` on /dev/null (a closed one, or stdout whose reader or disk is gone)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    if devnull != descriptor:
        os.dup2(devnull, descriptor)
        os.close(devnull)


def _is_open(descriptor: int) -> bool:
    try:
        os.fstat(descriptor)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def checked_output() -> Iterator[CheckedOutput]:
    """Install `CheckedOutput` as `sys.stdout` and `_Diagnostics` as `sys.stderr` (over /dev/null if
    there was none) for the block; the last flush of stdout happens in the block's caller, where an
    `OutputError` is reported."""
    stdout_closed = sys.stdout is None or not _is_open(1)
    for descriptor in (0, 1, 2):
        if not _is_open(descriptor):
            point_at_devnull(descriptor)
    original_stdout, original_stderr = sys.stdout, sys.stderr
    output = CheckedOutput(None if stdout_closed else original_stdout)
    if original_stdout is not None and not stdout_closed:
        with contextlib.suppress(OSError):  # what someone else left unwritten is not this run's to report
            original_stdout.flush()
    sys.stdout = cast(TextIO, output)
    diagnostics = original_stderr if original_stderr is not None else open(os.devnull, "w")  # noqa: SIM115
    sys.stderr = cast(TextIO, _Diagnostics(diagnostics))
    try:
        yield output
    finally:
        sys.stdout, sys.stderr = original_stdout, original_stderr if original_stderr is not None else diagnostics


@contextlib.contextmanager
def scratch_folder() -> Iterator[None]:
    """One private folder for every temporary file of the run, flashast's and libclang's (which names
    its preambles after `TMPDIR`), removed at the end, whatever ended the run (a signal waits while
    the folder is made and while it is removed, so neither is left half done)."""
    base = tempfile.gettempdir()
    try:
        base.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(base).decode("ascii", "backslashreplace")
        raise UsageError(f"TMPDIR {shown}: not valid UTF-8, which libclang needs for the paths it is given;"
                         " point TMPDIR at another folder") from None
    saved_environment, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    folder = None
    try:
        with signals_held():
            _remove_folders_of_ended_runs(base)
            try:
                folder = tempfile.mkdtemp(prefix=f"{_RUN_PREFIX}{os.getpid()}-", dir=base)
            except OSError as error:
                raise UsageError(f"TMPDIR {base}: cannot create a scratch folder ({error.strerror})") from None
            os.environ["TMPDIR"] = folder
            tempfile.tempdir = folder
        yield
    finally:
        with signals_held():
            if saved_environment is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved_environment
            tempfile.tempdir = saved_tempdir
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


# A run's scratch folder: `flashast-run-HOST-PID-RANDOM` (the host, since TMPDIR may be shared).
_RUN_PREFIX = f"flashast-run-{socket.gethostname().replace('/', '_')}-"


def _remove_folders_of_ended_runs(base: str) -> None:
    """A run killed outright (SIGKILL, the OOM killer, a power loss) cannot clean up, and its folder
    holds libclang's preambles, hundreds of megabytes with real headers: the next run removes the
    folders of this host's runs whose process no longer exists (this user's only)."""
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(_RUN_PREFIX):
            continue
        process = entry.name[len(_RUN_PREFIX):].split("-", 1)[0]
        try:
            mine = entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid()
        except OSError:
            continue
        if mine and process.isdigit() and len(process) < 10 and not _running(int(process)):
            shutil.rmtree(entry.path, ignore_errors=True)


def _running(process: int) -> bool:
    try:
        os.kill(process, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, and is someone else's
        return True
    return True
