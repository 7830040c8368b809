"""The ownership manifest, `DIR/.flashast.json`: which files flashast wrote, with what bytes.

It decides what a run may overwrite and what `--prune` may delete, so a manifest that is not what
flashast wrote is refused in one line (a user error), never trusted: every name must be a plain
generated-file name in DIR, with the sha256 it was written with.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

from flashast.atomic import encode
from flashast.errors import ModelError, UsageError
from flashast.generated import GeneratedFile
from flashast.kinds import Preset
from flashast.names import FileName

MANIFEST_NAME = ".flashast.json"
MANIFEST_FORMAT = 1
# The keys this version writes. Others an older flashast wrote are read, never written again.
# `revision` and `upstream` say which upstream tree the files match (a preset without one has neither).
MANIFEST_KEYS = ("files", "flashast", "format", "preset", "revision", "upstream")
ENTRY_KEYS = ("aggregator", "axes", "kind", "preset", "sha256")
# Written only while a run renames its files into place (see `output.write`): the names it writes.
PENDING_KEY = "pending"


def sha256_of(text: str) -> str:
    return hashlib.sha256(encode(text)).hexdigest()


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The ownership manifest of `directory`, or None if it has none."""
    path = directory / MANIFEST_NAME
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            # A FIFO or a device would block the read, a symlink could point anywhere: not ours.
            raise UsageError(f"{path}: not a flashast manifest (not a regular file); move it away")
        data = path.read_bytes()  # decoded by `json.loads`, so bytes that are not UTF-8 are refused below
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror})") from None
    try:
        manifest: dict[str, Any] = json.loads(data)
        _check_manifest(manifest)
    except RecursionError:
        raise UsageError(f"{path}: not a flashast manifest (nested too deeply); delete it to start over") from None
    except ValueError as error:
        raise UsageError(f"{path}: not a flashast manifest ({error}); delete it to start over") from None
    return manifest


def _check_manifest(manifest: object) -> None:
    """Refuse a manifest whose entries could make flashast touch a path it never wrote.

    The names in it decide what `--prune` deletes, so each must be a generated-file name in DIR (a
    `FileName`: `/`-separated plain segments, none `..` or hidden, so never the manifest itself), with
    the sha256 it was written with. Other keys (an older flashast wrote some) are tolerated: they decide nothing.
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
    pending = manifest.get(PENDING_KEY, [])
    if not isinstance(pending, list) or not all(isinstance(name, str) for name in pending):
        raise ValueError(f"{PENDING_KEY!r} is not a list of names")


def preset_provenance(preset: Preset) -> dict[str, str]:
    """The manifest's keys for what the preset's files match upstream: its `revision` and `upstream`,
    each only when the preset states it. `preset` stays the bare name beside them, so that revisions
    of one preset own a directory alike."""
    return {key: value for key, value in (("revision", preset.revision), ("upstream", preset.upstream)) if value}


def manifest_entry(generated: GeneratedFile) -> dict[str, Any]:
    """What the manifest records of one file: where it came from, and the sha256 of its bytes."""
    return {
        "aggregator": generated.aggregator,
        "axes": generated.axis_values,
        "kind": generated.kind,
        "preset": generated.preset,
        "sha256": sha256_of(generated.text),
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


def current_spelling(manifest: dict[str, Any]) -> str:
    """A manifest as this version would write it: one from an older flashast that differs only by
    keys no longer written is up to date, so a run that changes nothing leaves it (and its mtime) alone."""
    current = only(manifest, MANIFEST_KEYS)
    current["files"] = {name: only(entry, ENTRY_KEYS) for name, entry in manifest["files"].items()}
    return dump_manifest(current)


def only(table: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: table[key] for key in keys if key in table}
