"""The output directory: plan against it, then act on it, touching only what must change.

Guarantees:
- the plan is made (again) under an exclusive flock on the directory itself, so locking creates no
  file, and nothing is written before the whole plan exists;
- a file is written only if its bytes change, so a second run leaves every mtime as it was;
- the ownership manifest (`.flashast.json`) lists every file flashast wrote, with its sha256, kind and
  axis values, and is rewritten only when its content changes;
- a file flashast did not write is never overwritten (unless `force`) nor deleted. A byte-identical
  one is adopted: that is how a tree made by an upstream generator moves to flashast with zero diff;
- stale files (owned, no longer generated) are reported, and deleted only by `prune`, and only while
  they still hold the bytes flashast wrote (an edited one is kept unless `force`);
- every refusal (a foreign file in the way, a manifest that is not ours) and every write of new
  contents (a complete temp file in DIR, fsynced) comes before the first rename. So a refused run, a
  full disk or any other write failure removes its temp files and leaves the directory exactly as it
  was: names, bytes and mtimes. Manifest names must be plain file names, so no manifest can make
  flashast delete or write outside the directory.

What survives a power loss: each file holds its old bytes or its new bytes, never a mix (`os.replace`
of a temp file fsynced first). The manifest is renamed first and the directory fsynced right after,
so the manifest never announces less than what is on disk; pruned files leave it only once deleted.
What a rerun repairs: a run killed between renames leaves some files new and some old; the next run
rewrites what differs, and removes leftover temp files under the lock.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flashast.errors import ModelError, UsageError
from flashast.generated import GeneratedFile
from flashast.names import FileName

MANIFEST_NAME = ".flashast.json"
MANIFEST_FORMAT = 1
TEMP_PREFIX = ".flashast-tmp-"
LISTING_TEMP_PREFIX = ".flashast-listing-tmp-"
# The keys this version writes. Others an older flashast wrote are read, never written again.
MANIFEST_KEYS = ("files", "flashast", "format", "preset")
ENTRY_KEYS = ("aggregator", "axes", "kind", "preset", "sha256")


@dataclass
class Plan:
    """What a run would do to the directory, file by file."""

    directory: Path
    new: list[GeneratedFile] = field(default_factory=list)
    changed: list[GeneratedFile] = field(default_factory=list)
    unchanged: list[GeneratedFile] = field(default_factory=list)
    adopted: list[GeneratedFile] = field(default_factory=list)
    conflicts: list[GeneratedFile] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    manifest_before: dict[str, Any] | None = None
    manifest_after: dict[str, Any] = field(default_factory=dict)
    # The current text of every generated file that exists, for `unified_diff`.
    on_disk: dict[str, str] = field(default_factory=dict)

    @property
    def to_write(self) -> list[GeneratedFile]:
        return sorted(self.new + self.changed + self.conflicts, key=lambda generated: generated.name)

    @property
    def differs(self) -> bool:
        """Whether the directory differs from what a run would leave (the manifest aside)."""
        return bool(self.new or self.changed or self.conflicts or self.stale)


@dataclass
class Outcome:
    """What a run did: files written, stale files deleted, and stale files kept because they were edited."""

    written: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def check_directory(directory: Path, writable: bool = True) -> None:
    """Refuse, in one line, an output path that can never be a usable directory (or, with
    `writable`, one this run could not write: `--check` on a read-only checkout is fine)."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory}: exists and is not a directory")
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{directory}: {probe} is not a directory")
    if writable and not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{directory}: {probe} is not writable")


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The ownership manifest of `directory`, or None if it has none."""
    path = directory / MANIFEST_NAME
    try:
        data = path.read_bytes()  # decoded by `json.loads`, so bytes that are not UTF-8 are refused below
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from None
    try:
        manifest: dict[str, Any] = json.loads(data)
        _check_manifest(manifest)
    except ValueError as error:
        raise UsageError(f"{path}: not a flashast manifest ({error}); delete it to start over") from None
    return manifest


def _check_manifest(manifest: object) -> None:
    """Refuse a manifest whose entries could make flashast touch a path it never wrote.

    The names in it decide what `--prune` deletes, so each must be a plain generated-file name in
    DIR (no `/`, no `..`, not hidden, so never the manifest itself), with the sha256 it was written
    with. Other keys (an older flashast wrote some) are tolerated: they decide nothing.
    """
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ValueError("no 'files' table")
    for name, entry in manifest["files"].items():
        try:
            FileName(name)
        except ModelError:
            raise ValueError(f"{name!r} is not a generated file name") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ValueError(f"{name!r} has no sha256")


def manifest_entry(generated: GeneratedFile) -> dict[str, Any]:
    """What the manifest records of one file: where it came from, and the sha256 of its bytes."""
    return {
        "aggregator": generated.aggregator,
        "axes": generated.axis_values,
        "kind": generated.kind,
        "preset": generated.preset,
        "sha256": hashlib.sha256(_encode(generated.text)).hexdigest(),
    }


def dump_manifest(manifest: dict[str, Any]) -> str:
    """The manifest's one spelling: sorted keys, one line per top-level key and one per file, so a
    diff of it reads as the list of files that changed."""
    encode = json.JSONEncoder(sort_keys=True, separators=(", ", ": ")).encode

    def spell(value: object, path: tuple[str, ...]) -> str:
        if path not in ((), ("files",)) or not isinstance(value, dict) or not value:
            return encode(value)
        indent = " " * (len(path) + 1)
        entries = [f"{indent}{encode(key)}: {spell(value[key], (*path, key))}" for key in sorted(value)]
        return "{\n" + ",\n".join(entries) + "\n" + indent[:-1] + "}"

    return spell(manifest, ()) + "\n"


def plan(
    directory: Path, files: Sequence[GeneratedFile], preset: str, preset_names: frozenset[str], version: str
) -> Plan:
    """Compare the rendered files with the directory; reads, never writes.

    `preset_names` is every name the preset generates unfiltered: owned files outside it are stale,
    owned files filtered out of this run are left alone (their entries carried over).
    """
    result = Plan(directory)
    if directory.is_dir():
        result.manifest_before = read_manifest(directory)
    owned: dict[str, Any] = result.manifest_before["files"] if result.manifest_before else {}
    entries = {name: _only(entry, ENTRY_KEYS) for name, entry in owned.items()}
    for generated in files:
        current = _read_existing(directory / generated.name)
        if current is None:
            result.new.append(generated)
        else:
            result.on_disk[generated.name] = current
            if current == generated.text:
                (result.unchanged if generated.name in owned else result.adopted).append(generated)
            elif generated.name in owned:
                result.changed.append(generated)
            else:
                result.conflicts.append(generated)
        entries[generated.name] = manifest_entry(generated)
    for name in sorted(owned.keys() - preset_names):
        path = directory / name
        if not path.exists():
            del entries[name]  # a stale file someone already deleted needs no ownership any more
        elif path.is_symlink() or not path.is_file():
            # Neither reported as a plain stale file nor pruned: flashast only ever wrote regular files.
            raise UsageError(f"{path}: owned by flashast but now not a regular file; move it away")
        else:
            result.stale.append(name)
    result.manifest_after = {
        "files": {name: entries[name] for name in sorted(entries)},
        "flashast": version,
        "format": MANIFEST_FORMAT,
        "preset": preset,
    }
    return result


def _only(table: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: table[key] for key in keys if key in table}


def _read_existing(path: Path) -> str | None:
    """The file's text (undecodable bytes kept as surrogates, so they compare unequal), None if absent."""
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise UsageError(f"{path}: exists and is not a regular file")
        return path.read_bytes().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from None


def refuse_conflicts(result: Plan, force: bool) -> None:
    """Refuse, in one line, to overwrite files flashast did not write (unless `force`)."""
    if result.conflicts and not force:
        first = result.conflicts[0].name
        more = f" (and {len(result.conflicts) - 1} more)" if len(result.conflicts) > 1 else ""
        raise UsageError(
            f"{result.directory / first}: exists, was not written by flashast and differs{more};"
            " move it away or pass --force"
        )


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on the directory, released when the block (or the process) ends."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def write(
    directory: Path,
    files: Sequence[GeneratedFile],
    preset: str,
    preset_names: frozenset[str],
    version: str,
    prune: bool = False,
    force: bool = False,
) -> tuple[Plan, Outcome]:
    """Plan under the directory lock, then write what changed and prune what was asked.

    Every refusal (a foreign file in the way, an unreadable manifest) and every failed write happens
    before the first change to the directory, so such a run leaves it exactly as it was.
    """
    check_directory(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{directory}: cannot create ({error.strerror})") from None
    outcome = Outcome()
    with locked(directory):
        result = plan(directory, files, preset, preset_names, version)
        refuse_conflicts(result, force)
        for leftover in directory.glob(TEMP_PREFIX + "*"):  # killed runs': ours to delete under the lock
            leftover.unlink(missing_ok=True)
        items = [(generated.name, generated.text) for generated in result.to_write]
        manifest_text = dump_manifest(result.manifest_after)
        if result.manifest_before is None or manifest_text != _current_spelling(result.manifest_before):
            items.insert(0, (MANIFEST_NAME, manifest_text))  # ownership first
        _replace_files(directory, items)
        outcome.written.extend(generated.name for generated in result.to_write)
        if prune and result.stale:
            _prune(result, outcome, force)
            if outcome.pruned:
                _replace_files(directory, [(MANIFEST_NAME, dump_manifest(result.manifest_after))])
    return result, outcome


def _current_spelling(manifest: dict[str, Any]) -> str:
    """A manifest as this version would write it: one from an older flashast that differs only by
    keys no longer written is up to date, so a run that changes nothing leaves it (and its mtime) alone."""
    current = _only(manifest, MANIFEST_KEYS)
    current["files"] = {name: _only(entry, ENTRY_KEYS) for name, entry in manifest["files"].items()}
    return dump_manifest(current)


def _prune(result: Plan, outcome: Outcome, force: bool) -> None:
    """Delete the stale files that still hold the bytes flashast wrote; keep (and name) edited ones.

    A stale file someone edited since is no longer only flashast's work, so it is kept unless
    `force`; the manifest keeps owning it, so it stays reported as stale.
    """
    owned = result.manifest_before["files"] if result.manifest_before else {}
    for name in result.stale:
        path = result.directory / name
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as error:
            raise UsageError(f"{path}: cannot read ({error.strerror})") from None
        if current is not None and hashlib.sha256(current).hexdigest() != owned[name]["sha256"] and not force:
            outcome.kept.append(name)
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise UsageError(f"{path}: cannot delete ({error.strerror})") from None
        outcome.pruned.append(name)
        del result.manifest_after["files"][name]


def write_atomically(path: Path, text: str) -> None:
    """Replace one file outside flashast's ownership (the `--manifest` listing) the same
    whole-or-nothing way. Its temp file has its own prefix: a run cleaning up the temp files killed
    runs left in DIR must not take a listing being written there by another run."""
    _replace_files(path.parent, [(path.name, text)], prefix=LISTING_TEMP_PREFIX)


def _replace_files(directory: Path, items: Sequence[tuple[str, str]], prefix: str = TEMP_PREFIX) -> None:
    """Replace each file whole, and all of them or none as far as a write failure goes.

    Every temp file is written and fsynced (one at a time, so an open-file limit cannot matter)
    before the first `os.replace`: a full disk is met while the directory is still untouched, and
    every temp file is then removed. The renames follow in the order given; the directory is
    fsynced after the first (the manifest, when it is in `items`) and after the last, so the
    manifest's rename is on disk before any file it announces.
    """
    temps: list[str] = []
    renamed = 0
    culprit = directory
    try:
        for name, text in items:
            culprit = directory / name
            temps.append(_write_temp(directory, _encode(text), prefix))
        for (name, _), temp in zip(items, temps, strict=True):
            culprit = directory / name
            os.replace(temp, directory / name)
            renamed += 1
            if renamed in (1, len(items)):
                culprit = directory
                _sync_directory(directory)
    except BaseException as error:
        for temp in temps[renamed:]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        if isinstance(error, OSError):
            # A full disk or a read-only file system: the user's to fix, and every file is still whole.
            raise UsageError(f"{culprit}: cannot write ({error.strerror})") from None
        raise


def _write_temp(directory: Path, data: bytes, prefix: str) -> str:
    """A new temp file in `directory` holding `data`, fsynced and closed; removed if any step fails.

    Its mode is 0o666 less the umask, like any new file (`mkstemp` would make it 0o600), because it
    becomes the generated file by a rename. `O_EXCL`: never a file someone else is writing.
    """
    path = os.path.join(directory, f"{prefix}{os.getpid()}-{secrets.token_hex(8)}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            _write_all(descriptor, data)
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


def _sync_directory(directory: Path) -> None:
    """fsync the directory itself: a rename is on disk only once its directory is."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _encode(text: str) -> bytes:
    """A file's bytes; `surrogateescape` round-trips bytes read from disk that were not UTF-8."""
    return text.encode("utf-8", errors="surrogateescape")


def unified_diff(result: Plan) -> str:
    """A unified diff (`a/NAME`, `b/NAME`) from the directory to what a run would write."""
    chunks: list[str] = []
    for generated in result.to_write:
        before = result.on_disk.get(generated.name)
        chunks.extend(
            difflib.unified_diff(
                (before or "").splitlines(keepends=True),
                generated.text.splitlines(keepends=True),
                fromfile="/dev/null" if before is None else f"a/{generated.name}",
                tofile=f"b/{generated.name}",
            )
        )
    for name in result.stale:
        try:
            before = (result.directory / name).read_text(errors="surrogateescape")
        except OSError:
            continue
        chunks.extend(
            difflib.unified_diff(before.splitlines(keepends=True), [], fromfile=f"a/{name}", tofile="/dev/null")
        )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in chunks)
