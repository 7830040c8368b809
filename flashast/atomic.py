"""Replacing files whole: what a reader or a killed run can see is a file's old bytes or its new
bytes, never a mix.

Each new content goes to a temp file in the same directory, written completely, and only then
replaces the file with `os.replace`. A batch writes every temp file before its first rename, so a
full disk is met while the directory is still untouched (the temps are removed). Temp names are
exactly `PREFIX<pid>-<16 hex digits>`, so leftovers of a killed run are recognisable beyond doubt.

Only the first file of a batch can be made durable (fsynced, and its directory after its rename):
that is the manifest, which must be on disk before the files it announces. The generated files are
not fsynced, like torchgen's, CMake's and black's: a power loss may leave one that was just written
empty, which `output` treats as missing and writes again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from flashast.errors import UsageError

TEMP_PREFIX = ".flashast-tmp-"
LISTING_TEMP_PREFIX = ".flashast-listing-tmp-"
# Exactly the names `_write_temp` makes: a user's `.flashast-tmp-notes` is not a leftover.
TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[0-9]+-[0-9a-f]{16}")


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on the directory, released when the block (or the process) ends."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def write_atomically(path: Path, text: str) -> None:
    """Replace one file outside flashast's ownership (the `--manifest` listing) the same
    whole-or-nothing way. Its temp file has its own prefix: a run cleaning up the temp files killed
    runs left in DIR must not take a listing being written there by another run."""
    replace_files(path.parent, [(path.name, text)], prefix=LISTING_TEMP_PREFIX)


def replace_files(
    directory: Path, items: Sequence[tuple[str, str]], prefix: str = TEMP_PREFIX, durable_first: bool = False
) -> None:
    """Replace each file whole, and all of them or none as far as a write failure goes.

    Every temp file is written (one at a time, so an open-file limit cannot matter) before the first
    `os.replace`: a full disk is met while the directory is still untouched, and every temp file is
    then removed. The renames follow in the order given. With `durable_first`, the first item is
    fsynced before its rename and the directory right after it, so it is on disk before any rename
    that follows.
    """
    for name, _ in items:
        refuse_escaping_parents(directory, name)
    temps: list[str] = []
    renamed = 0
    culprit = directory
    try:
        for index, (name, text) in enumerate(items):
            culprit = directory / name
            temps.append(_write_temp(directory, encode(text), prefix, durable=durable_first and index == 0))
        for (name, _), temp in zip(items, temps, strict=True):
            culprit = directory / name
            # A name under subdirectories (`sm80/fwd.cu`): they are made once every temp file is
            # whole, so a failed write leaves no new directory behind either.
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, directory / name)
            renamed += 1
            if durable_first and renamed == 1:
                culprit = directory
                sync_directory(directory)
    except BaseException as error:
        for temp in temps[renamed:]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        if isinstance(error, OSError):
            # A full disk or a read-only file system: the user's to fix, and every file is still whole.
            raise UsageError(f"{culprit}: cannot write ({error.strerror})") from None
        raise


def refuse_escaping_parents(directory: Path, name: str) -> None:
    """Refuse a file name under subdirectories of `directory` if one of them is a symbolic link or
    not a directory: writing or deleting through it could touch a file outside `directory`."""
    parts = name.split("/")[:-1]
    for count in range(1, len(parts) + 1):
        parent = directory.joinpath(*parts[:count])
        if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
            raise UsageError(f"{parent}: is not a plain directory, so flashast will not write or delete inside it")


def _write_temp(directory: Path, data: bytes, prefix: str, durable: bool) -> str:
    """A new temp file in `directory` holding `data` (fsynced if `durable`), closed; removed if any
    step fails.

    Its mode is 0o666 less the umask, like any new file (`mkstemp` would make it 0o600), because it
    becomes the generated file by a rename. `O_EXCL`: never a file someone else is writing.
    """
    path = os.path.join(directory, f"{prefix}{os.getpid()}-{os.urandom(8).hex()}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            _write_all(descriptor, data)
            if durable:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    return path


def _write_all(descriptor: int, data: bytes) -> None:
    """Write every byte: `os.write` may write fewer (a nearly full disk, a file-size limit), and a
    temp file renamed into place must be whole."""
    view = memoryview(data)
    while view:
        count = os.write(descriptor, view)
        if count <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[count:]


def sync_directory(directory: Path) -> None:
    """fsync the directory itself: a rename is on disk only once its directory is."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_leftovers(directory: Path) -> None:
    """Delete the temp files killed runs left in `directory` (call it holding the directory's lock)."""
    for leftover in directory.glob(TEMP_PREFIX + "*"):
        if TEMP_NAME.fullmatch(leftover.name):
            leftover.unlink(missing_ok=True)


def encode(text: str) -> bytes:
    """A file's bytes; `surrogateescape` round-trips bytes read from disk that were not UTF-8."""
    return text.encode("utf-8", errors="surrogateescape")
