"""The ownership manifest, `DIR/.flashast.json`: which files flashast wrote, with what bytes.

It decides what a run may overwrite and what `--prune` may delete, so a manifest that is not what
flashast wrote is refused in one line (a user error), never trusted: every name must be a plain
generated-file name in DIR, with the sha256 it was written with.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flashast.atomic import encode
from flashast.axes import AxisValue
from flashast.errors import ModelError, UsageError
from flashast.generated import GeneratedFile
from flashast.kinds import Preset
from flashast.names import FileName
from flashast.untrusted import MEBIBYTE, NotARegularFile, UntrustedFileError, load_json, read_regular_file

MANIFEST_NAME = ".flashast.json"
MANIFEST_FORMAT = 1
# An entry takes about 250 bytes: this is room for a quarter of a million files, and no more is read.
MANIFEST_LIMIT = 64 * MEBIBYTE
# The keys this version writes. Others an older flashast wrote are read, never written again.
# `revision` and `upstream` say which upstream tree the files match (a preset without one has neither).
MANIFEST_KEYS = ("files", "flashast", "format", "preset", "revision", "upstream")
ENTRY_KEYS = ("aggregator", "axes", "kind", "preset", "sha256")
# Written only while a run renames its files into place (see `output.write`): the names it writes.
PENDING_KEY = "pending"


@dataclass(frozen=True)
class Entry:
    """What the manifest records of one owned file: the sha256 of the bytes flashast wrote, and where
    they came from. Only `sha256` is required: an entry added by hand may give it alone, and then the
    others are None (and not written back)."""

    sha256: str
    aggregator: bool | None = None
    axes: Mapping[str, AxisValue] | None = None
    kind: str | None = None
    preset: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A directory's ownership manifest: each owned file's `Entry` by name, and the run that wrote it
    (`version` is the key `flashast`; `preset` the bare name; `revision` and `upstream` the preset's,
    if it states them). `pending`: the files a run was renaming into place, written only while it
    does (so found only after a run was killed). A key that is None is not written."""

    files: Mapping[str, Entry] = field(default_factory=dict)
    version: str | None = None
    format: int | None = None
    preset: str | None = None
    revision: str | None = None
    upstream: str | None = None
    pending: tuple[str, ...] = ()

    def without(self, name: str) -> Manifest:
        """The manifest no longer owning file `name`."""
        return replace(self, files={owned: entry for owned, entry in self.files.items() if owned != name})


def sha256_of(text: str) -> str:
    return hashlib.sha256(encode(text)).hexdigest()


def read_manifest(directory: Path) -> Manifest | None:
    """The ownership manifest of `directory`, or None if it has none."""
    path = directory / MANIFEST_NAME
    not_regular = UsageError(f"{path}: not a flashast manifest (not a regular file); move it away")
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            # A FIFO or a device would block the read, a symlink could point anywhere: not ours.
            raise not_regular
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from None
    try:
        data = read_regular_file(path, MANIFEST_LIMIT)
    except NotARegularFile:
        raise not_regular from None  # replaced since it was looked at
    except UntrustedFileError as error:
        raise UsageError(f"{path}: {error.reason}") from None
    try:
        return _manifest(load_json(data))
    except UntrustedFileError as error:
        raise UsageError(f"{path}: not a flashast manifest ({error.reason}); delete it to start over") from None
    except ValueError as error:
        raise UsageError(f"{path}: not a flashast manifest ({error}); delete it to start over") from None


def _manifest(document: object) -> Manifest:
    """The manifest `document` (parsed JSON) holds, refusing one whose entries could make flashast
    touch a path it never wrote.

    The names in it decide what `--prune` deletes, so each must be a generated-file name in DIR (a
    `FileName`: `/`-separated plain segments, none `..` or hidden, so never the manifest itself), with
    the sha256 it was written with; every other key flashast writes must hold what flashast writes
    there. Keys it does not write (an older flashast wrote some) are tolerated: they decide nothing.
    """
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        raise ValueError("no 'files' table")
    files = {name: _entry(name, entry) for name, entry in document["files"].items()}
    pending = document.get(PENDING_KEY, [])
    if not isinstance(pending, list) or not all(isinstance(name, str) for name in pending):
        raise ValueError(f"{PENDING_KEY!r} is not a list of names")
    version, preset, revision, upstream = (_optional(document, key, str, "a str", "the manifest")
                                           for key in ("flashast", "preset", "revision", "upstream"))
    format_ = _optional(document, "format", int, "an int", "the manifest")
    return Manifest(files, version, format_, preset, revision, upstream, tuple(pending))


def _entry(name: str, entry: object) -> Entry:
    try:
        FileName(name)
    except ModelError:
        raise ValueError(f"{name!r} is not a generated file name") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise ValueError(f"{name!r} has no sha256")
    axes = _optional(entry, "axes", dict, "a table", repr(name))
    if axes is not None and not all(isinstance(value, (int, str)) for value in axes.values()):
        raise ValueError(f"{name!r}: 'axes' holds a value that is not an int, bool or str")
    owner = repr(name)
    return Entry(entry["sha256"], _optional(entry, "aggregator", bool, "a bool", owner), axes,
                 _optional(entry, "kind", str, "a str", owner), _optional(entry, "preset", str, "a str", owner))


def _optional(table: dict[str, Any], key: str, kind: type, spelled: str, owner: str) -> Any:
    """`table[key]`, None when absent; a value of another type is no manifest flashast wrote."""
    value = table.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise ValueError(f"{owner}: {key!r} is not {spelled}")
    return value


def preset_provenance(preset: Preset) -> dict[str, str]:
    """The manifest's keys for what the preset's files match upstream: its `revision` and `upstream`,
    each only when the preset states it. `preset` stays the bare name beside them, so that revisions
    of one preset own a directory alike."""
    return {key: value for key, value in (("revision", preset.revision), ("upstream", preset.upstream)) if value}


def manifest_entry(generated: GeneratedFile) -> Entry:
    """What the manifest records of one file: where it came from, and the sha256 of its bytes."""
    return Entry(sha256_of(generated.text), generated.aggregator, generated.axis_values, generated.kind,
                 generated.preset)


def dump_manifest(manifest: Manifest) -> str:
    """The manifest's one spelling: sorted keys, one line per top-level key and one per file, so a
    diff of it reads as the list of files that changed."""
    encode = json.JSONEncoder(sort_keys=True, separators=(", ", ": ")).encode
    files = [f"  {encode(name)}: {encode(_table(manifest.files[name]))}" for name in sorted(manifest.files)]
    top = {
        "files": "{\n" + ",\n".join(files) + "\n }" if files else "{}",
        "flashast": manifest.version,
        "format": manifest.format,
        PENDING_KEY: list(manifest.pending) or None,
        "preset": manifest.preset,
        "revision": manifest.revision,
        "upstream": manifest.upstream,
    }
    lines = [f" {encode(key)}: {value if key == 'files' else encode(value)}"
             for key, value in sorted(top.items()) if value is not None]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _table(entry: Entry) -> dict[str, object]:
    """An entry as JSON holds it: the keys that have a value."""
    written = {"aggregator": entry.aggregator, "axes": entry.axes, "kind": entry.kind, "preset": entry.preset,
               "sha256": entry.sha256}
    return {key: dict(value) if isinstance(value, Mapping) else value
            for key, value in written.items() if value is not None}
