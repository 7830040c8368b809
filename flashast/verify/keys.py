"""Verification keys: which exact inputs libclang already passed, so a run does not parse them again.

A key is two things:
- the **input digest**: the generated file's text and the texts of the generated files it includes
  (an aggregator's members), the full clang command line (with the file's own `-D`
  macros), the environment variables clang reads for include paths, libclang's identity, and the
  code of this package (the rules that judge a parse);
- the **readings**: the path and content digest of every other file the parse read, taken from the
  translation unit's inclusion list after the parse (a contract's headers served from memory, and any
  file on disk: a `Verbatim` `#include "/abs/x.h"`, a `--clang-arg -include`, real headers). A
  generated file the parse read that the input digest does not cover stays in the readings.

The store keeps, for each input digest that passed cleanly, the readings of that parse. A later
run reuses the verdict only if every recorded file still holds the recorded content: files on disk
are read again, and files served from memory are compared with what this run would serve. So a key
covers what the parse actually read, not a prediction of it. A verdict is remembered when nothing
in its parse fails and nothing is charged to the file: a warning in a generated file fails the run
and is never remembered; in contract mode any warning at all keeps a verdict out of the store, so it
is shown again; in real-header mode a warning inside a third-party header is that header's (counted
in one line by the run that parsed it) and does not keep the file's verdict out.

A header added where it would be found before one the parse read (the including file's directory,
or an include directory searched earlier) shadows it: such places are recorded as absent, so adding
a file there makes the files that read the shadowed header parse again. Headers on clang's own
system paths are read through the same inclusion list; only the `--include-dir` search order is
checked for shadowing.

Layout, under the user cache (`$FLASHAST_CACHE_DIR`, else `$XDG_CACHE_HOME/flashast`, else
`~/.cache/flashast`; `FLASHAST_NO_CACHE=1` turns it off): `verified-v2/index` holds one line per
passed input, `INPUT READINGS`, appended whole; `verified-v2/readings/READINGS.json` holds one list of
`[path, sha256]` pairs, named by its own digest, shared by every file whose parse read the same files.
A store that cannot be read or written is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

from flashast import __version__
from flashast.verify.toolchain import libclang_identity

STORE_NAME = "verified-v2"
# Past this size the index starts again (its lines are appended as files are verified).
INDEX_LIMIT_BYTES = 4 << 20
# Environment variables clang consults for include paths: they can change what a parse reads.
CLANG_ENVIRONMENT = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH")
PACKAGE_DIRECTORY = Path(__file__).resolve().parent

Reading = tuple[str, str]  # (path as the parse named it, sha256 of its content)


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest_parts(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", errors="surrogateescape")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


@cache
def verifier_identity() -> str:
    """flashast's version and the content of this package: a change to how a parse is judged
    invalidates every key."""
    sources = sorted(PACKAGE_DIRECTORY.glob("*.py"))
    return _digest_parts(__version__, *(f"{path.name}:{digest_bytes(path.read_bytes())}" for path in sources))


def common_inputs(arguments: Sequence[str], environment: Mapping[str, str] | None = None) -> str:
    """The part of every input digest one run shares: the verifier, libclang, the command line and
    the environment variables clang reads for include paths."""
    environment = os.environ if environment is None else environment
    return _digest_parts(
        "flashast-verified-2",
        verifier_identity(),
        libclang_identity(),
        json.dumps(list(arguments)),
        json.dumps({name: environment.get(name) for name in CLANG_ENVIRONMENT}, sort_keys=True),
    )


def input_digest(common: str, text: str, file_arguments: Sequence[str],
                 included: Sequence[tuple[str, str]] = ()) -> str:
    """The first half of a file's key: `common_inputs`, the file's own `-D` macros, its text and the
    (name, text) of each generated file it includes, which its readings then leave out."""
    return _digest_parts(common, json.dumps(list(file_arguments)), text,
                         *(part for name, included_text in included for part in (name, included_text)))


def store_directory(environment: Mapping[str, str] | None = None) -> Path | None:
    """Where verdicts are kept across runs and output directories, or None when caching is off."""
    environment = os.environ if environment is None else environment
    if environment.get("FLASHAST_NO_CACHE", "") not in ("", "0"):
        return None
    if environment.get("FLASHAST_CACHE_DIR"):
        return Path(environment["FLASHAST_CACHE_DIR"]) / STORE_NAME
    base = environment.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flashast" / STORE_NAME


class DiskContents:
    """Digests of files on disk, each read at most once per run (many parses read one header)."""

    def __init__(self) -> None:
        self._digests: dict[str, str | None] = {}

    def digest(self, path: str) -> str | None:
        """The content digest of the regular file at `path`, or None if there is none (a FIFO or a
        device is never opened: reading it could block)."""
        if path not in self._digests:
            self._digests[path] = _read_digest(path)
        return self._digests[path]


def _read_digest(path: str) -> str | None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return digest_bytes(handle.read())
    except OSError:
        return None
    finally:
        os.close(descriptor)


class VerdictStore:
    """The one store of passed inputs, with one lookup path (`passed`) and one way in (`remember`)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._index: dict[str, str] | None = None
        self._readings: dict[str, list[Reading] | None] = {}

    @classmethod
    def default(cls) -> VerdictStore:
        return cls(store_directory())

    def passed(self, key: str, current_digest: Callable[[str], str | None]) -> bool:
        """Whether `key`'s input passed before and every file that parse read is still the same.

        `current_digest(path)` is what this run would read at `path` now (None: nothing there).
        """
        readings_id = self._load_index().get(key)
        if readings_id is None:
            return False
        readings = self._load_readings(readings_id)
        return readings is not None and all(current_digest(path) == digest for path, digest in readings)

    def remember(self, passed: Iterable[tuple[str, Sequence[Reading]]]) -> None:
        """Keep each (key, readings) that passed. Failing to write the store never fails a run."""
        if self.directory is None:
            return
        lines = []
        try:
            (self.directory / "readings").mkdir(parents=True, exist_ok=True)
            for key, readings in passed:
                readings_id = self._write_readings(self.directory, sorted(set(readings)))
                lines.append(f"{key} {readings_id}\n")
                if self._index is not None:
                    self._index[key] = readings_id  # a later lookup through this object sees it too
            if not lines:
                return
            index = self.directory / "index"
            with contextlib.suppress(FileNotFoundError):
                if index.stat().st_size > INDEX_LIMIT_BYTES:
                    index.unlink()
            # One append of whole lines: concurrent runs interleave lines, never characters.
            # O_NONBLOCK: a FIFO put in the index's place must not block the run (opening it fails);
            # O_NOFOLLOW: a symlink there must not make flashast append to a file elsewhere.
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_NOFOLLOW
            descriptor = os.open(index, flags, 0o666)
            try:
                if stat.S_ISREG(os.fstat(descriptor).st_mode):
                    os.write(descriptor, "".join(lines).encode())
            finally:
                os.close(descriptor)
        except OSError:
            pass

    def _write_readings(self, directory: Path, readings: list[Reading]) -> str:
        """Keep one readings list under its own digest (once: many files read the same headers)."""
        text = json.dumps(readings, separators=(",", ":"))
        readings_id = digest_bytes(text.encode())[:32]
        if self._readings.get(readings_id) is None:
            path = directory / "readings" / f"{readings_id}.json"
            if not path.exists():
                temporary = path.with_name(f".{path.name}.{os.getpid()}")
                temporary.write_text(text)
                os.replace(temporary, path)
            self._readings[readings_id] = readings
        return readings_id

    def _load_index(self) -> dict[str, str]:
        if self._index is None:
            self._index = {}
            if self.directory is not None:
                with contextlib.suppress(OSError):
                    text = _read_regular(self.directory / "index")
                    for line in (text or "").splitlines():
                        fields = line.split()
                        # A damaged line (undecodable bytes, a torn write) spoils no other line.
                        if len(fields) == 2 and all(field.isascii() and field.isalnum() for field in fields):
                            self._index[fields[0]] = fields[1]
        return self._index

    def _load_readings(self, readings_id: str) -> list[Reading] | None:
        if readings_id not in self._readings:
            self._readings[readings_id] = None
            if self.directory is not None and readings_id.isalnum():
                with contextlib.suppress(OSError, ValueError, TypeError, RecursionError):
                    text = _read_regular(self.directory / "readings" / f"{readings_id}.json")
                    # Named by its own digest: a file whose content is not what its name says is a miss.
                    data = json.loads(text) if text is not None and _named_by_digest(text, readings_id) else None
                    if isinstance(data, list) and all(
                        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
                        for pair in data
                    ):
                        self._readings[readings_id] = [(path, digest) for path, digest in data]
        return self._readings[readings_id]


def _named_by_digest(text: str, readings_id: str) -> bool:
    return digest_bytes(text.encode("utf-8", "surrogateescape"))[:32] == readings_id


def _read_regular(path: Path) -> str | None:
    """The text of a regular file, or None; never opens a FIFO or a device for reading."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            return handle.read().decode("utf-8", errors="surrogateescape")
    finally:
        os.close(descriptor)
