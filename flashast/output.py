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
- a directory belongs to the preset its manifest names: a run of another preset is refused before it
  reads or writes a generated file (a forgotten `--preset` must not replace a tree), unless `force`
  hands the directory over; the previous preset's files then stay, as stale files deleted only by
  `prune` with `force`;
- every refusal (a foreign file in the way, a manifest that is not ours) and every write of new
  contents (a complete temp file in DIR) comes before the first rename. So a refused run, a full disk
  or any other write failure removes its temp files and leaves the directory exactly as it was:
  names, bytes and mtimes. Manifest names must be plain file names, so no manifest can make
  flashast delete or write outside the directory.

What survives a power loss: the manifest is fsynced and renamed first, and the directory fsynced
right after, so on disk the manifest never announces less than what is there; pruned files leave it
only once deleted. Generated files are not fsynced (as torchgen, CMake and black do not): one written
just before the power went may come back empty. What a rerun repairs: files a killed run left old
(named `pending` in the manifest) and owned files that are empty or missing are written again;
leftover temp files are removed under the lock.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from flashast.atomic import locked, refuse_escaping_parents, remove_leftovers, replace_files, write_atomically
from flashast.errors import UsageError
from flashast.generated import GeneratedFile
from flashast.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    Entry,
    Manifest,
    dump_manifest,
    manifest_entry,
    read_manifest,
    sha256_of,
)
from flashast.ownership import bare_preset, owned_by, owner_of

__all__ = [
    "MANIFEST_NAME",
    "Outcome",
    "Plan",
    "check_directory",
    "dump_manifest",
    "locked",
    "manifest_entry",
    "plan",
    "read_manifest",
    "refuse_conflicts",
    "unified_diff",
    "write",
    "write_atomically",
]


@dataclass
class Plan:
    """What a run would do to the directory, file by file."""

    directory: Path
    new: list[GeneratedFile] = field(default_factory=list)
    changed: list[GeneratedFile] = field(default_factory=list)
    unchanged: list[GeneratedFile] = field(default_factory=list)
    adopted: list[GeneratedFile] = field(default_factory=list)
    conflicts: list[GeneratedFile] = field(default_factory=list)
    # Owned files whose bytes are no longer what flashast wrote: someone edited them.
    edited: list[GeneratedFile] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    # Foreign files that look like this preset's output (its naming scheme or its prelude) but that no
    # kind generates: they would be compiled with the rest, so a run names them.
    look_alikes: list[str] = field(default_factory=list)
    manifest_before: Manifest | None = None
    manifest_after: Manifest = field(default_factory=Manifest)
    # The preset that owned the directory, when another one (this run's) takes it over with `force`.
    previous_owner: str | None = None
    # Stale files written for another preset (one that owned the directory before): kept by `prune`
    # unless `force`, since they are that preset's files, not this one's leftovers.
    other_presets: list[str] = field(default_factory=list)
    # The current text of every generated file that exists, for `unified_diff`.
    on_disk: dict[str, str] = field(default_factory=dict)

    @property
    def to_write(self) -> list[GeneratedFile]:
        return sorted(self.new + self.changed + self.conflicts + self.edited, key=lambda generated: generated.name)

    @property
    def differs(self) -> bool:
        """Whether the directory differs from what a run would leave (the manifest aside)."""
        return bool(self.new or self.changed or self.conflicts or self.edited or self.stale)


@dataclass
class Outcome:
    """What a run did: files written, stale files deleted, and stale files kept because they were edited."""

    written: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def check_directory(directory: Path, writable: bool = True) -> None:
    """Refuse, in one line, an output path that can never be a usable directory (or, with
    `writable`, one this run could not write: `--check` on a read-only checkout is fine). Any
    file-system error on the path (a component too long, a parent that cannot be searched) is the
    user's to fix, named in one line."""
    try:
        if directory.exists() and not directory.is_dir():
            raise UsageError(f"{directory}: exists and is not a directory")
        probe = directory
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir():
            raise UsageError(f"{directory}: {probe} is not a directory")
        if writable and not os.access(probe, os.W_OK | os.X_OK):
            raise UsageError(f"{directory}: {probe} is not writable")
    except OSError as error:
        raise UsageError(f"{directory}: cannot use ({error.strerror})") from None


def plan(
    directory: Path, files: Sequence[GeneratedFile], preset: str, preset_names: frozenset[str], version: str,
    provenance: Mapping[str, str] | None = None,
) -> Plan:
    """Compare the rendered files with the directory; reads, never writes.

    `provenance`: the manifest's keys saying which upstream revision the files match
    (`manifest.preset_provenance`).

    `preset_names` is every name the preset generates unfiltered: owned files outside it are stale,
    owned files filtered out of this run are left alone (their entries carried over).
    """
    result = Plan(directory)
    if directory.is_dir():
        result.manifest_before = read_manifest(directory)
    owned: Mapping[str, Entry] = result.manifest_before.files if result.manifest_before else {}
    entries = dict(owned)
    # Files a killed run was writing: their bytes may be the old ones, which is no user's edit.
    pending = set(result.manifest_before.pending) if result.manifest_before else set()
    for generated in files:
        current = _read_existing(directory / generated.name)
        if current is None:
            result.new.append(generated)
        else:
            result.on_disk[generated.name] = current
            if current == generated.text:
                (result.unchanged if generated.name in owned else result.adopted).append(generated)
            elif generated.name not in owned:
                result.conflicts.append(generated)
            elif not _still_ours(current, owned[generated.name].sha256) and generated.name not in pending:
                result.edited.append(generated)
            else:
                result.changed.append(generated)
        entries[generated.name] = manifest_entry(generated)
    for name in sorted(owned.keys() - preset_names):
        refuse_escaping_parents(directory, name)  # before `--prune` could delete through a link
        path = directory / name
        if not path.exists():
            del entries[name]  # a stale file someone already deleted needs no ownership any more
        elif path.is_symlink() or not path.is_file():
            # Neither reported as a plain stale file nor pruned: flashast only ever wrote regular files.
            raise UsageError(f"{path}: owned by flashast but now not a regular file; move it away")
        else:
            result.stale.append(name)
            written_for = owned[name].preset
            if written_for is not None and bare_preset(written_for) != bare_preset(preset):
                result.other_presets.append(name)
    owner = owner_of(result.manifest_before)
    result.previous_owner = owner if owner is not None and owner != bare_preset(preset) else None
    result.look_alikes = _look_alikes(directory, files, preset_names, owned.keys())
    provenance = provenance or {}
    result.manifest_after = Manifest(
        files={name: entries[name] for name in sorted(entries)},
        version=version,
        format=MANIFEST_FORMAT,
        preset=preset,
        revision=provenance.get("revision"),
        upstream=provenance.get("upstream"),
    )
    return result


def _still_ours(current: str | bytes, recorded_sha256: object) -> bool:
    """Whether an owned file holds only flashast's work: the bytes it recorded, or nothing at all.

    Generated files are not fsynced, so a power loss soon after a run may leave one empty. An empty
    file holds no one's edit, so, like a missing one, it is simply written again.
    """
    if not current:
        return True
    digest = sha256_of(current) if isinstance(current, str) else hashlib.sha256(current).hexdigest()
    return digest == recorded_sha256


def _look_alikes(
    directory: Path, files: Sequence[GeneratedFile], preset_names: frozenset[str], owned: Iterable[str]
) -> list[str]:
    """Foreign files that look generated by this preset: a name of the same shape as a generated one
    (digits aside: `flash_fwd_hdim128_bf16_sm100.cu` beside `..._sm90.cu`), or a text that starts
    with the first line every generated file starts with (the preset's "auto-generated" banner)."""
    if not files or not directory.is_dir():
        return []
    shapes = {_shape(name) for name in preset_names}
    first_lines = {generated.text.split("\n", 1)[0] for generated in files}
    banner = first_lines.pop() if len(first_lines) == 1 else ""
    banner = banner if banner.lstrip().startswith(("//", "/*")) else ""
    known = preset_names | set(owned)
    found = []
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return []
    for entry in entries:
        if entry.name in known or entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        if _shape(entry.name) in shapes or (banner and _starts_with(entry.path, banner)):
            found.append(entry.name)
    return found


def _shape(name: str) -> str:
    return re.sub(r"[0-9]+", "#", name)


def _starts_with(path: str, line: str) -> bool:
    """Whether the regular file at `path` starts with `line` (read without blocking on odd files)."""
    expected = (line + "\n").encode("utf-8", errors="surrogateescape")
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(descriptor).st_mode) and os.read(descriptor, len(expected)) == expected
    except OSError:
        return False
    finally:
        os.close(descriptor)


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
    """Refuse, in one line, to overwrite files flashast did not write, or owned files someone edited
    since (unless `force`): a user's work is never silently lost."""
    if force:
        return
    if result.previous_owner is not None:
        raise owned_by(result.directory, result.previous_owner, result.manifest_after.preset or "", writes=True)
    _refuse(result, result.conflicts, "exists, was not written by flashast and differs{more};"
            " move it away or pass --force")
    _refuse(result, result.edited, "edited since flashast wrote it{more}; keep your edit elsewhere"
            " (or in the kind that makes it) and pass --force to regenerate")


def _refuse(result: Plan, files: list[GeneratedFile], problem: str) -> None:
    """One `UsageError` naming the first of `files` and how many more there are, if there are any."""
    if files:
        more = f" (and {len(files) - 1} more)" if len(files) > 1 else ""
        raise UsageError(f"{result.directory / files[0].name}: {problem.format(more=more)}")


def write(
    directory: Path,
    files: Sequence[GeneratedFile],
    preset: str,
    preset_names: frozenset[str],
    version: str,
    prune: bool = False,
    force: bool = False,
    provenance: Mapping[str, str] | None = None,
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
        result = plan(directory, files, preset, preset_names, version, provenance)
        refuse_conflicts(result, force)
        remove_leftovers(directory)  # killed runs': ours to delete under the lock
        items = [(generated.name, generated.text) for generated in result.to_write]
        manifest_text = dump_manifest(result.manifest_after)
        if result.changed:
            # Ownership first. The files whose recorded sha256 changes are named as pending, so that
            # if this run is killed before their renames, the next one does not take their old bytes
            # for a user's edit; once all are in place, the manifest is written without the mark.
            changing = tuple(sorted(generated.name for generated in result.changed))
            pending = replace(result.manifest_after, pending=changing)
            replace_files(directory, [(MANIFEST_NAME, dump_manifest(pending)), *items], durable_first=True)
            replace_files(directory, [(MANIFEST_NAME, manifest_text)], durable_first=True)
        else:
            # A manifest that differs only by keys this version no longer writes is up to date, so a
            # run that changes nothing leaves it (and its mtime) alone.
            announce = (result.manifest_before is None
                        or manifest_text != dump_manifest(replace(result.manifest_before, pending=())))
            if announce:
                items.insert(0, (MANIFEST_NAME, manifest_text))  # ownership first
            replace_files(directory, items, durable_first=announce)
        outcome.written.extend(generated.name for generated in result.to_write)
        if prune and result.stale:
            _prune(result, outcome, force)
            if outcome.pruned:
                replace_files(directory, [(MANIFEST_NAME, dump_manifest(result.manifest_after))], durable_first=True)
    return result, outcome


def _prune(result: Plan, outcome: Outcome, force: bool) -> None:
    """Delete the stale files that still hold the bytes flashast wrote; keep (and name) edited ones.

    A stale file someone edited since is no longer only flashast's work, so it is kept unless
    `force`; the manifest keeps owning it, so it stays reported as stale.
    """
    owned: Mapping[str, Entry] = result.manifest_before.files if result.manifest_before else {}
    for name in result.stale:
        path = result.directory / name
        try:
            current = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as error:
            raise UsageError(f"{path}: cannot read ({error.strerror})") from None
        if current is not None and not _still_ours(current, owned[name].sha256) and not force:
            outcome.kept.append(name)
            continue
        if name in result.other_presets and not force:
            outcome.kept.append(name)  # another preset's file: deleted only when asked with --force
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise UsageError(f"{path}: cannot delete ({error.strerror})") from None
        outcome.pruned.append(name)
        result.manifest_after = result.manifest_after.without(name)


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
