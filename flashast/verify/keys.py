"""The verdict store: which exact inputs libclang already passed, so a run does not parse them again.

One store holds every verdict: a generated file's, the conformance check's and a dispatcher's. A
verdict is three things:
- the **key**, an input digest named by `setup.ParseSetup.key`: the parse's own text (a generated
  file's with the texts of the generated files it includes, an aggregator's members), the full clang
  command line and its purpose, the environment variables clang reads for include paths, libclang's
  identity, and the code of this package (the rules that judge a parse);
- the **readings**: the path and content digest of every other file the parse read, taken from the
  translation unit's inclusion list after the parse (a contract's headers served from memory, and any
  file on disk: a `Verbatim` `#include "/abs/x.h"`, a `--clang-arg -include`, real headers). A
  generated file the parse read that the key does not cover stays in the readings;
- an optional **payload**: what the parse found, where it is more than "passed" (a dispatcher's
  references), as JSON data.

`lookup` returns a verdict only if every recorded file still holds the recorded content: files on
disk are read again, and files served from memory are compared with what this run would serve. So a
key covers what the parse actually read, not a prediction of it. A verdict is remembered when nothing
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
passed input, `KEY READINGS [PAYLOAD]`, appended whole (a run whose store is to be merged with
others', `--shard K/N`, appends to `index-shard-K-of-N` instead; every `index*` is read);
`verified-v2/readings/READINGS.json` holds one list of `[path, sha256]` pairs and
`verified-v2/payloads/PAYLOAD.json` one payload, each named by its own digest (readings are shared
by every file whose parse read the same files), so stores merge by copying. Keys and readings hold
no absolute path of the machine (`setup`). Everything is read as untrusted (`flashast.untrusted`:
regular files only, so a FIFO is never opened for reading; bounded sizes and nesting); a store that
cannot be read or written, or an entry that is damaged or whose content is not what its name says,
is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from flashast.compat import FlashastDeprecationWarning
from flashast.untrusted import MEBIBYTE, UntrustedFileError, load_json, read_regular_file

STORE_NAME = "verified-v2"
# Past this size the index starts again (its lines are appended as files are verified).
INDEX_LIMIT_BYTES = 4 << 20
# Indexes read from one store (`index`, and one per machine a store was merged from).
MAXIMUM_INDEXES = 4096
# A cost as a log holds it: seconds, to the millisecond.
_SECONDS = re.compile(r"[0-9]{1,9}\.[0-9]{3}")
# A readings list or a payload: a few MiB for the largest (a dispatcher with torch's headers).
ENTRY_LIMIT_BYTES = 64 * MEBIBYTE

Reading = tuple[str, str]  # (path as the parse named it, sha256 of its content)


@dataclass(frozen=True)
class Verdict:
    """One passed input: its key, every file its parse read, and what the parse found (`payload`,
    JSON data: a dispatcher's references), if anything beyond "passed"."""

    key: str
    readings: tuple[Reading, ...]
    payload: object = None


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    """The one store of passed inputs: one way to ask (`lookup`) and one way in (`remember`)."""

    def __init__(self, directory: Path | None, writer: str = "") -> None:
        """`writer` names the index this store appends to (`index-WRITER`; plain `index` without
        one): runs that write stores to be merged by copying (`--shard K/N`) each keep their own.
        Every index in the directory is read."""
        self.directory = directory
        self.index_name = f"index-{writer}" if writer else "index"
        self._index: dict[str, tuple[str, str | None]] | None = None
        self._documents: dict[tuple[str, str], object] = {}

    @classmethod
    def default(cls, writer: str = "") -> VerdictStore:
        """The user cache's store (`store_directory`), appending to its `writer`'s index."""
        return cls(store_directory(), writer)

    def lookup(self, key: str, current_digest: Callable[[str], str | None]) -> Verdict | None:
        """The verdict of `key`'s input, if it passed before and every file that parse read is still
        the same; else None. `current_digest(path)` is what this run would read at `path` now
        (None: nothing there)."""
        entry = self._load_index().get(key)
        if entry is None:
            return None
        readings_id, payload_id = entry
        readings = self._load("readings", readings_id)
        if not _is_readings(readings):
            return None
        payload = None if payload_id is None else self._load("payloads", payload_id)
        if payload_id is not None and payload is None:
            return None
        pairs = tuple((path, digest) for path, digest in readings)
        if not all(current_digest(path) == digest for path, digest in pairs):
            return None
        return Verdict(key, pairs, payload)

    def passed(self, key: str, current_digest: Callable[[str], str | None]) -> bool:
        """Deprecated: `lookup(key, current_digest) is not None`."""
        warnings.warn("VerdictStore.passed is deprecated: use VerdictStore.lookup (None when not passed)",
                      FlashastDeprecationWarning, stacklevel=2)
        return self.lookup(key, current_digest) is not None

    def remember(self, verdicts: Iterable[Verdict]) -> None:
        """Keep each verdict. Failing to write the store never fails a run."""
        directory = self.directory
        if directory is None:
            return
        lines = []
        try:
            for verdict in verdicts:
                if isinstance(verdict, tuple):  # 0.1.0's (key, readings) pairs
                    warnings.warn("VerdictStore.remember takes Verdict values; (key, readings) pairs are"
                                  " deprecated", FlashastDeprecationWarning, stacklevel=2)
                    verdict = Verdict(verdict[0], tuple(verdict[1]))
                readings_id = self._write(directory, "readings", sorted(set(verdict.readings)))
                payload_id = None if verdict.payload is None else self._write(directory, "payloads", verdict.payload)
                lines.append(" ".join(filter(None, (verdict.key, readings_id, payload_id))) + "\n")
                if self._index is not None:
                    self._index[verdict.key] = (readings_id, payload_id)  # a later lookup here sees it too
            if not lines:
                return
            _append(directory / self.index_name, lines)
        except (OSError, ValueError):
            pass

    def costs(self) -> dict[str, float]:
        """Seconds each file's verification took when it was last parsed, by file name, from every
        `costs*` log (`--shard` balances shards by them)."""
        found: dict[str, float] = {}
        for log in self._logs("costs"):
            with contextlib.suppress(UntrustedFileError):
                for line in read_regular_file(log, INDEX_LIMIT_BYTES).decode("utf-8", errors="replace").splitlines():
                    name, _, seconds = line.rpartition(" ")
                    if name and _SECONDS.fullmatch(seconds):
                        found[name] = float(seconds)
        return found

    def remember_costs(self, costs: Mapping[str, float]) -> None:
        """Log the seconds each file parsed in this run took (`costs`, or `costs-WRITER`)."""
        if self.directory is None or not costs:
            return
        lines = [f"{name} {seconds:.3f}\n" for name, seconds in sorted(costs.items()) if "\n" not in name]
        with contextlib.suppress(OSError, ValueError):
            self.directory.mkdir(parents=True, exist_ok=True)
            _append(self.directory / self.index_name.replace("index", "costs", 1), lines)

    def _write(self, directory: Path, folder: str, document: object) -> str:
        """Keep one document under its own digest (once: many files read the same headers)."""
        text = _canonical(document)
        name = digest_bytes(text.encode())[:32]
        if self._documents.get((folder, name)) is None:
            # Written again even if a file of that name exists: it may be a damaged one.
            path = directory / folder / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            temporary.write_text(text)
            os.replace(temporary, path)
            self._documents[(folder, name)] = json.loads(text)  # as `_load` would read it back
        return name

    def _load_index(self) -> dict[str, tuple[str, str | None]]:
        if self._index is None:
            self._index = {}
            for index in self._logs("index"):
                with contextlib.suppress(UntrustedFileError):
                    # The index restarts past INDEX_LIMIT_BYTES; one a concurrent run let grow a little
                    # further is still read, a larger one is a miss.
                    data = read_regular_file(index, 2 * INDEX_LIMIT_BYTES)
                    for line in data.decode("utf-8", errors="replace").splitlines():
                        fields = line.split()
                        # A damaged line (undecodable bytes, a torn write) spoils no other line.
                        if len(fields) in (2, 3) and all(field.isascii() and field.isalnum() for field in fields):
                            self._index[fields[0]] = (fields[1], fields[2] if len(fields) == 3 else None)
        return self._index

    def _logs(self, base: str) -> list[Path]:
        """`base` and every `base-WRITER` (copied in from other machines), in name order."""
        if self.directory is None:
            return []
        try:
            names = sorted(entry.name for entry in os.scandir(self.directory)
                           if entry.name == base or entry.name.startswith(base + "-"))
        except OSError:
            return []
        return [self.directory / name for name in names[:MAXIMUM_INDEXES]]

    def _load(self, folder: str, name: str) -> object:
        """The document named `name`, or None if it is missing, damaged, or not what its name says."""
        if (folder, name) not in self._documents:
            self._documents[(folder, name)] = None
            if self.directory is not None:
                with contextlib.suppress(UntrustedFileError):
                    data = read_regular_file(self.directory / folder / f"{name}.json", ENTRY_LIMIT_BYTES)
                    if digest_bytes(data)[:32] == name:
                        self._documents[(folder, name)] = load_json(data)
        return self._documents[(folder, name)]


def _canonical(document: object) -> str:
    return json.dumps(document, separators=(",", ":"))


def _is_readings(document: object) -> TypeGuard[list[list[str]]]:
    return isinstance(document, list) and all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
        for pair in document
    )


def _append(path: Path, lines: list[str]) -> None:
    """Append whole lines to a log of the store, which starts again past `INDEX_LIMIT_BYTES`."""
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > INDEX_LIMIT_BYTES:
            path.unlink()
    # One append of whole lines: concurrent runs interleave lines, never characters.
    # O_NONBLOCK: a FIFO put in the log's place must not block the run (opening it fails);
    # O_NOFOLLOW: a symlink there must not make flashast append to a file elsewhere.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_NOFOLLOW, 0o666)
    try:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.write(descriptor, "".join(lines).encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(descriptor)
