"""The output directory, through `flashast.output`'s public functions on real files.

Write-if-changed, ownership (adoption, conflicts, stale files, prune, force), the manifest (its
spelling, tampering, manifests of an older flashast), and what a failure leaves behind: a write that
fails (a file-size limit), a run killed at a random moment, two runs at once, a low open-file limit.
The last ones run `output.write` in a subprocess (the script `WRITER`), as a pipeline would; the
killed runs, each in a process forked from one that has imported flashast (`FORKING_WRITER`).

"Nothing written" is checked on names, bytes, mtimes and inode numbers (`state`): a file rewritten
with the same bytes has a new inode, and mtimes are first set far in the past (`age`), so a rewrite
in the same clock tick cannot hide either.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import cli_environment, digest_files, read_golden, run_cli

from flashast.atomic import TEMP_PREFIX
from flashast.axes import AxisValue, Configuration
from flashast.cli import main
from flashast.contract import Contract
from flashast.errors import UsageError
from flashast.generated import GeneratedFile
from flashast.nodes import TranslationUnit, Verbatim
from flashast.output import (
    MANIFEST_NAME,
    Outcome,
    Plan,
    check_directory,
    dump_manifest,
    plan,
    read_manifest,
    refuse_conflicts,
    unified_diff,
    write,
    write_atomically,
)
from flashast.registry import Registry
from flashast.style import Style

PRESET = "demo"
VERSION = "0-test"
LONG_AGO = 1_000_000_000  # ns: 1970, so any write after `age` shows in the mtime
State = dict[str, tuple[bytes, int, int]]


def source(name: str, text: str, kind: str = "fwd", style: Style | None = None, **axes: AxisValue) -> GeneratedFile:
    """A generated file whose text is `text` (as a `Verbatim` unit), with its kind and axes."""
    unit = TranslationUnit((Verbatim(text),))
    configuration = Configuration(tuple(axes.items()) or (("head_dim", 128),))
    return GeneratedFile(name, PRESET, kind, configuration, unit, style or Style(), Contract())


FILES = [source("a_fwd.cu", "int a;"), source("b_bwd.cu", "int b;", kind="bwd"), source("c_fwd.cu", "int c;")]
NAMES = frozenset(generated.name for generated in FILES)


def generate(
    directory: Path, files: Sequence[GeneratedFile] = FILES, names: frozenset[str] | None = None,
    prune: bool = False, force: bool = False,
) -> tuple[Plan, Outcome]:
    """`output.write` for the demo preset; `names` is every name it generates unfiltered."""
    preset_names = names if names is not None else frozenset(generated.name for generated in files)
    return write(directory, files, PRESET, preset_names, VERSION, prune=prune, force=force)


def planned(directory: Path, files: Sequence[GeneratedFile] = FILES, names: frozenset[str] | None = None) -> Plan:
    preset_names = names if names is not None else frozenset(generated.name for generated in files)
    return plan(directory, files, PRESET, preset_names, VERSION)


def state(directory: Path) -> State:
    """Every entry of `directory`, hidden ones too, as {name: (bytes, st_mtime_ns, st_ino)}."""
    result: State = {}
    for path in sorted(directory.iterdir()):
        status = path.stat()
        result[path.name] = (path.read_bytes() if path.is_file() else b"", status.st_mtime_ns, status.st_ino)
    return result


def age(directory: Path) -> None:
    """Set every file's mtime far in the past."""
    for path in directory.iterdir():
        os.utime(path, ns=(LONG_AGO, LONG_AGO))


def manifest_of(directory: Path) -> dict[str, object]:
    return json.loads((directory / MANIFEST_NAME).read_text())


def owned(directory: Path) -> dict[str, dict[str, object]]:
    files = manifest_of(directory)["files"]
    assert isinstance(files, dict)
    return files


def temp_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith(".flashast-") and
                  path.name != MANIFEST_NAME)


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


@pytest.fixture
def output(tmp_path: Path) -> Path:
    """A directory `generate` has just written (FILES and the manifest), aged."""
    directory = tmp_path / "out"
    generate(directory)
    age(directory)
    return directory


# What a run writes.


def test_the_pytorch_preset_is_written_byte_for_byte_into_a_new_nested_directory(tmp_path: Path) -> None:
    preset = Registry().preset("pytorch")
    files = preset.generate()
    directory = tmp_path / "a" / "b" / "kernels"
    result, outcome = write(directory, files, preset.name, frozenset(generated.name for generated in files), VERSION)
    golden = read_golden("pytorch")
    assert digest_files(directory) == golden
    assert sorted(path.name for path in directory.iterdir()) == sorted([*golden, MANIFEST_NAME])
    assert sorted(outcome.written) == sorted(golden) and len(result.new) == 48
    assert {name: entry["sha256"] for name, entry in owned(directory).items()} == golden


def test_the_manifest_owns_each_file_with_exactly_aggregator_axes_kind_preset_and_sha256(output: Path) -> None:
    manifest = manifest_of(output)
    assert sorted(manifest) == ["files", "flashast", "format", "preset"]
    assert (manifest["flashast"], manifest["format"], manifest["preset"]) == (VERSION, 1, PRESET)
    assert owned(output)["b_bwd.cu"] == {
        "aggregator": False, "axes": {"head_dim": 128}, "kind": "bwd", "preset": PRESET,
        "sha256": sha256((output / "b_bwd.cu").read_bytes()),
    }
    lines = (output / MANIFEST_NAME).read_text().splitlines()
    assert [line.split('"')[1] for line in lines if line.startswith('  "')] == sorted(NAMES), "one line per file"
    assert [line.split('"')[1] for line in lines if line.startswith(' "')] == sorted(manifest), "one per key"
    assert (output / MANIFEST_NAME).read_text() == dump_manifest(read_manifest(output)), "one spelling"


def test_files_are_created_with_the_usual_mode_for_the_umask(tmp_path: Path) -> None:
    """A temp file becomes the generated file: it must not keep a temp file's private mode 0o600."""
    previous = os.umask(0o022)
    try:
        generate(tmp_path / "out")
        write_atomically(tmp_path / "listing.json", "{}\n")
    finally:
        os.umask(previous)
    for path in [*(tmp_path / "out").iterdir(), tmp_path / "listing.json"]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_a_second_run_writes_nothing_at_all(output: Path) -> None:
    before = state(output)
    directory_mtime = output.stat().st_mtime_ns
    result, outcome = generate(output)
    assert state(output) == before
    assert output.stat().st_mtime_ns == directory_mtime, "not even a temp file was made"
    assert (outcome.written, len(result.unchanged), result.differs) == ([], 3, False)


def test_only_the_file_whose_model_changed_is_rewritten(output: Path) -> None:
    changed = source("b_bwd.cu", "int b2;", kind="bwd")
    files = [FILES[0], changed, FILES[2]]
    age(output)
    before = state(output)
    result, outcome = generate(output, files)
    after = state(output)
    assert outcome.written == ["b_bwd.cu"] and [generated.name for generated in result.changed] == ["b_bwd.cu"]
    assert {name for name in after if after[name] != before[name]} == {"b_bwd.cu", MANIFEST_NAME}
    assert (output / "b_bwd.cu").read_text() == changed.text
    assert MANIFEST_NAME not in json.loads((output / MANIFEST_NAME).read_text()).get("pending", ())


def test_an_owned_file_edited_by_hand_is_never_overwritten_without_force(output: Path) -> None:
    (output / "b_bwd.cu").write_text("// edited by hand\n")
    age(output)
    before = state(output)
    with pytest.raises(UsageError, match=r"b_bwd\.cu: edited since flashast wrote it; .* pass --force"):
        generate(output)
    assert state(output) == before
    assert [generated.name for generated in planned(output).edited] == ["b_bwd.cu"]
    assert planned(output).differs
    _, outcome = generate(output, force=True)
    assert outcome.written == ["b_bwd.cu"]
    assert (output / "b_bwd.cu").read_text() == FILES[1].text
    assert {name for name, value in state(output).items() if value != before[name]} == {"b_bwd.cu"}


def test_files_a_killed_run_was_writing_are_repaired_not_taken_for_edits(output: Path) -> None:
    """The manifest names the files a run is about to rename as pending; a run killed before their
    renames leaves them old, and the next run rewrites them without --force."""
    changed = source("b_bwd.cu", "int b2;", kind="bwd")
    manifest = json.loads((output / MANIFEST_NAME).read_text())
    manifest["files"]["b_bwd.cu"]["sha256"] = hashlib.sha256(changed.text.encode()).hexdigest()
    manifest["pending"] = ["b_bwd.cu"]
    (output / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert planned(output, [FILES[0], changed, FILES[2]]).edited == []
    _, outcome = generate(output, [FILES[0], changed, FILES[2]])
    assert outcome.written == ["b_bwd.cu"]
    assert "pending" not in json.loads((output / MANIFEST_NAME).read_text())


def test_files_a_power_loss_left_empty_are_written_again_while_edits_are_still_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generated files are not fsynced: after a power loss a file just written may come back empty.
    An empty owned file is no one's edit, so the next run rewrites it like a missing one; a file with
    other bytes is still an edit. (The CLI runs in this process: what it decides is tested here.)"""
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")

    def in_process(*arguments: str | Path) -> tuple[int, str, str]:
        code = main([str(argument) for argument in arguments])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    directory = tmp_path / "out"
    assert in_process("-o", directory, "--no-verify", "-q")[0] == 0
    emptied, edited = sorted(read_golden("pytorch"))[:2]
    (directory / emptied).write_bytes(b"")
    (directory / edited).write_text("// my change\n")
    code, _, stderr = in_process("-o", directory, "--no-verify", "--check")
    assert code == 1
    assert f"changed {directory / emptied}\n" in stderr and f"edited {directory / edited} " in stderr
    code, _, stderr = in_process("-o", directory, "--no-verify")
    assert code == 2 and "edited since flashast wrote it" in stderr and (directory / emptied).read_bytes() == b""
    (directory / edited).unlink()
    code, _, stderr = in_process("-o", directory, "--no-verify")
    assert code == 0, stderr
    assert digest_files(directory) == read_golden("pytorch")


def test_a_file_whose_generated_text_changes_is_rewritten_with_its_new_ownership(output: Path) -> None:
    files = [FILES[0], source("b_bwd.cu", "int b2;", kind="bwd"), FILES[2]]
    before = state(output)
    generate(output, files)
    after = state(output)
    assert {name for name in after if after[name] != before[name]} == {"b_bwd.cu", MANIFEST_NAME}
    assert owned(output)["b_bwd.cu"]["sha256"] == sha256(files[1].text)


def test_plan_reads_and_never_writes(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    result = planned(missing)
    assert ([generated.name for generated in result.new], result.differs) == (sorted(NAMES), True)
    assert not missing.exists()
    assert result.manifest_after.files.keys() == NAMES


# Files flashast did not write.


def test_byte_identical_foreign_files_are_adopted_without_being_rewritten(tmp_path: Path) -> None:
    """How a tree made by an upstream generator moves to flashast: zero diff, zero rewrites."""
    directory = tmp_path / "out"
    directory.mkdir()
    for generated in FILES[:2]:
        (directory / generated.name).write_text(generated.text)
    age(directory)
    before = state(directory)
    result, outcome = generate(directory)
    after = state(directory)
    assert [generated.name for generated in result.adopted] == ["a_fwd.cu", "b_bwd.cu"]
    assert outcome.written == ["c_fwd.cu"]
    assert {name: after[name] for name in before} == before
    assert owned(directory).keys() == NAMES


def test_a_whole_adoptable_tree_gets_only_a_manifest(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    for generated in FILES:
        (directory / generated.name).write_text(generated.text)
    age(directory)
    before = state(directory)
    assert not planned(directory).differs
    generate(directory)
    after = state(directory)
    assert set(after) - set(before) == {MANIFEST_NAME}
    assert {name: after[name] for name in before} == before


def test_a_foreign_file_in_the_way_is_refused_in_one_line_before_anything_is_written(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    (directory / "b_bwd.cu").write_text("// my own kernel\n")
    (directory / "c_fwd.cu").write_text("// mine too\n")
    before = state(directory)
    with pytest.raises(UsageError) as raised:
        generate(directory, prune=True)
    assert str(raised.value) == (
        f"{directory / 'b_bwd.cu'}: exists, was not written by flashast and differs (and 1 more);"
        " move it away or pass --force"
    )
    assert state(directory) == before, "no manifest, no new file, no temp file"
    with pytest.raises(UsageError):
        refuse_conflicts(planned(directory), force=False)
    refuse_conflicts(planned(directory), force=True)


def test_force_overwrites_a_foreign_file_and_takes_ownership(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    (directory / "b_bwd.cu").write_text("// my own kernel\n")
    _, outcome = generate(directory, force=True)
    assert sorted(outcome.written) == sorted(NAMES)
    assert (directory / "b_bwd.cu").read_text() == FILES[1].text
    assert owned(directory).keys() == NAMES
    (directory / "b_bwd.cu").write_text("// edited after\n")
    with pytest.raises(UsageError, match="edited since flashast wrote it"):
        generate(directory)  # owned now, and edited since: a user's work, kept unless `force`
    generate(directory, force=True)
    assert (directory / "b_bwd.cu").read_text() == FILES[1].text


def test_a_name_differing_only_in_case_is_another_file_here(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    (directory / "A_fwd.cu").write_text("// mine\n")
    generate(directory)
    assert (directory / "A_fwd.cu").read_text() == "// mine\n"
    assert (directory / "a_fwd.cu").read_text() == FILES[0].text
    assert "A_fwd.cu" not in owned(directory)


# Stale files.


def test_stale_files_are_reported_kept_and_pruned_only_when_asked(output: Path) -> None:
    (output / "notes.cu").write_text("// a file flashast never wrote\n")
    age(output)
    before = state(output)
    result, outcome = generate(output, FILES[:1])
    assert result.stale == ["b_bwd.cu", "c_fwd.cu"]
    assert state(output) == before, "reported, not deleted, and the manifest still owns them"
    assert unified_diff(result).count("+++ /dev/null") == 2

    result, outcome = generate(output, FILES[:1], prune=True)
    assert outcome.pruned == ["b_bwd.cu", "c_fwd.cu"]
    assert sorted(path.name for path in output.iterdir()) == [MANIFEST_NAME, "a_fwd.cu", "notes.cu"]
    assert state(output)["notes.cu"] == before["notes.cu"], "a foreign file is never pruned"
    assert owned(output).keys() == {"a_fwd.cu"}
    assert not planned(output, FILES[:1]).differs


def test_prune_keeps_a_stale_file_edited_since_unless_forced(output: Path) -> None:
    (output / "c_fwd.cu").write_text("// someone's work now\n")
    _, outcome = generate(output, FILES[:2], prune=True)
    assert (outcome.pruned, outcome.kept) == ([], ["c_fwd.cu"])
    assert (output / "c_fwd.cu").read_text() == "// someone's work now\n"
    assert "c_fwd.cu" in owned(output), "still owned, so still reported as stale"
    _, outcome = generate(output, FILES[:2], prune=True, force=True)
    assert outcome.pruned == ["c_fwd.cu"] and not (output / "c_fwd.cu").exists()
    assert owned(output).keys() == {"a_fwd.cu", "b_bwd.cu"}


def test_prune_deletes_a_stale_file_a_power_loss_left_empty(output: Path) -> None:
    """An empty owned file holds no one's edit: pruned like one that still holds flashast's bytes."""
    (output / "c_fwd.cu").write_bytes(b"")
    _, outcome = generate(output, FILES[:2], prune=True)
    assert (outcome.pruned, outcome.kept) == (["c_fwd.cu"], [])
    assert not (output / "c_fwd.cu").exists() and "c_fwd.cu" not in owned(output)


def test_a_stale_file_deleted_by_hand_leaves_the_manifest(output: Path) -> None:
    (output / "c_fwd.cu").unlink()
    result, _ = generate(output, FILES[:2])
    assert result.stale == []
    assert owned(output).keys() == {"a_fwd.cu", "b_bwd.cu"}


def test_a_stale_path_that_is_no_longer_a_regular_file_is_refused_and_nothing_changes(output: Path) -> None:
    (output / "c_fwd.cu").unlink()
    (output / "c_fwd.cu").mkdir()
    (output / "a_fwd.cu").write_text("// needs rewriting\n")
    age(output)
    before = state(output)
    with pytest.raises(UsageError, match=r"c_fwd\.cu: owned by flashast but now not a regular file"):
        generate(output, FILES[:2], prune=True)
    assert state(output) == before


def test_a_filtered_run_leaves_filtered_out_files_alone_and_not_stale(output: Path) -> None:
    (output / "c_fwd.cu").write_text("// edited, but not part of this run\n")
    age(output)
    before = state(output)
    result, outcome = generate(output, FILES[:1], names=NAMES)
    assert (result.stale, outcome.written) == ([], [])
    assert state(output) == before, "files and manifest untouched"
    assert planned(output, FILES[2:], names=NAMES).edited == [FILES[2]]


# The manifest: tampering, older versions.

TAMPERED: dict[str, bytes] = {
    "not JSON": b"{",
    "not UTF-8": b'{"files": {"a_fwd.cu": {"sha256": "\x80"}}}',
    "a list": b"[]",
    "no files table": b'{"preset": "demo"}',
    "files not a table": b'{"files": []}',
    "a path out of DIR": b'{"files": {"../outside.cu": {"sha256": "0"}}}',
    "a hidden subdirectory": b'{"files": {".git/config": {"sha256": "0"}}}',
    "an empty segment": b'{"files": {"sub//x.cu": {"sha256": "0"}}}',
    "the manifest itself": b'{"files": {".flashast.json": {"sha256": "0"}}}',
    "a hidden file": b'{"files": {".x.cu": {"sha256": "0"}}}',
    "no sha256": b'{"files": {"a_fwd.cu": {}}}',
    "a sha256 not a string": b'{"files": {"a_fwd.cu": {"sha256": 1}}}',
    "an entry not a table": b'{"files": {"a_fwd.cu": "0"}}',
    # What flashast writes in the other keys is typed too: a manifest holding anything else is not its.
    "a kind not a string": b'{"files": {"a_fwd.cu": {"sha256": "0", "kind": 5}}}',
    "axes not a table": b'{"files": {"a_fwd.cu": {"sha256": "0", "axes": [1]}}}',
    "an axis value not a value": b'{"files": {"a_fwd.cu": {"sha256": "0", "axes": {"head_dim": null}}}}',
    "aggregator not a bool": b'{"files": {"a_fwd.cu": {"sha256": "0", "aggregator": 1}}}',
    "a format not an int": b'{"files": {}, "format": true}',
    "a preset not a string": b'{"files": {}, "preset": ["demo"]}',
    "a float": b'{"files": {}, "format": 1.0}',
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_manifest_is_refused_in_one_line_and_nothing_changes(tmp_path: Path, case: str) -> None:
    directory = tmp_path / "out"
    generate(directory, FILES[:1])
    (tmp_path / "outside.cu").write_text("// not in DIR\n")
    (directory / MANIFEST_NAME).write_bytes(TAMPERED[case])
    age(directory)
    before = state(directory)
    for attempt in (lambda: generate(directory, prune=True, force=True), lambda: planned(directory),
                    lambda: read_manifest(directory)):
        with pytest.raises(UsageError) as raised:
            attempt()
        message = str(raised.value)
        assert message.startswith(f"{directory / MANIFEST_NAME}: not a flashast manifest (")
        assert message.endswith("; delete it to start over") and "\n" not in message
    assert state(directory) == before
    assert (tmp_path / "outside.cu").read_text() == "// not in DIR\n"


def test_a_manifest_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).mkdir()
    with pytest.raises(UsageError, match=r"\.flashast\.json: not a flashast manifest \(not a regular file\)"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path / "nowhere") is None


def older_manifest(directory: Path, verified: object = "key") -> None:
    """Rewrite the manifest as an older flashast spelled it: a key per file, a no-op stamp."""
    manifest = manifest_of(directory)
    manifest["files"] = {name: {**entry, "verified": verified} for name, entry in owned(directory).items()}
    manifest["stamp"] = {"files": {name: "digest" for name in owned(directory)}, "inputs": "x", "manifest": "y"}
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    age(directory)


@pytest.mark.parametrize("verified", ["key", None, 42], ids=["a key", "none", "not a key"])
def test_an_older_manifest_is_read_and_left_alone_by_a_run_that_changes_nothing(output: Path, verified: object) -> None:
    older_manifest(output, verified)
    before = state(output)
    result, _ = generate(output)
    assert state(output) == before
    assert result.manifest_before is not None and result.manifest_before.files.keys() == owned(output).keys()
    assert not result.differs


def test_an_older_manifest_is_rewritten_without_its_old_keys_once_it_changes(output: Path) -> None:
    older_manifest(output)
    files = [source("a_fwd.cu", "int a2;"), FILES[1]]  # c_fwd.cu filtered out: its entry is carried over
    generate(output, files, names=NAMES)
    manifest = manifest_of(output)
    assert sorted(manifest) == ["files", "flashast", "format", "preset"]
    assert owned(output).keys() == NAMES
    assert all(sorted(entry) == ["aggregator", "axes", "kind", "preset", "sha256"] for entry in owned(output).values())
    assert (output / MANIFEST_NAME).read_text() == dump_manifest(read_manifest(output))


# The order of changes: ownership first.

IN_MOVED_TO, IN_DELETE = 0x80, 0x200


def changes_made_by(action: Callable[[], object], directory: Path) -> list[tuple[str, str]]:
    """The renames into `directory` and deletions in it that `action` makes, in order, as inotify
    reports them: ("renamed", name) or ("deleted", name); temp files left out."""
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = libc.inotify_init1(os.O_NONBLOCK)
    assert descriptor >= 0, os.strerror(ctypes.get_errno())
    try:
        assert libc.inotify_add_watch(descriptor, os.fsencode(directory), IN_MOVED_TO | IN_DELETE) >= 0
        action()
        events = b""
        while True:
            try:
                events += os.read(descriptor, 1 << 20)
            except BlockingIOError:
                break
    finally:
        os.close(descriptor)
    changes = []
    while events:
        _, mask, _, length = struct.unpack_from("iIII", events)
        name = events[16 : 16 + length].rstrip(b"\0").decode()
        events = events[16 + length :]
        if not name.startswith(TEMP_PREFIX):
            changes.append(("renamed" if mask & IN_MOVED_TO else "deleted", name))
    return changes


def test_the_manifest_is_renamed_before_the_files_it_announces_and_after_prunes(output: Path) -> None:
    """So at every moment (a kill, a power loss) each file on disk is owned: the manifest never
    announces less than what is there. When an owned file's content changes, the first manifest
    names it as pending and a second one, once every file is in place, drops the mark."""
    files = [source("a_fwd.cu", "int a2;"), FILES[1], source("d_fwd.cu", "int d;")]
    assert changes_made_by(lambda: generate(output, files), output) == [
        ("renamed", MANIFEST_NAME), ("renamed", "a_fwd.cu"), ("renamed", "d_fwd.cu"), ("renamed", MANIFEST_NAME),
    ]
    more = [*files, source("e_fwd.cu", "int e;")]
    assert changes_made_by(lambda: generate(output, more), output) == [
        ("renamed", MANIFEST_NAME), ("renamed", "e_fwd.cu"),
    ]
    assert changes_made_by(lambda: generate(output, more, prune=True), output) == [
        ("deleted", "c_fwd.cu"), ("renamed", MANIFEST_NAME),
    ]
    assert owned(output).keys() == {"a_fwd.cu", "b_bwd.cu", "d_fwd.cu", "e_fwd.cu"}
    assert changes_made_by(lambda: generate(output, more, prune=True), output) == []


# Diffs and directories.


def test_unified_diff_shows_changed_new_and_stale_files(output: Path) -> None:
    (output / "a_fwd.cu").write_text("int old;\n")
    (output / "b_bwd.cu").unlink()
    files = [FILES[0], FILES[1], source("d_fwd.cu", "int d;", style=Style(insert_newline_at_eof=False))]
    text = unified_diff(planned(output, files))
    assert [line for line in text.splitlines() if line.startswith(("--- ", "+++ "))] == [
        "--- a/a_fwd.cu", "+++ b/a_fwd.cu", "--- /dev/null", "+++ b/b_bwd.cu",
        "--- /dev/null", "+++ b/d_fwd.cu", "--- a/c_fwd.cu", "+++ /dev/null",
    ]
    assert "-int old;\n+int a;\n" in text
    assert "+int d;\n\\ No newline at end of file\n" in text
    assert unified_diff(planned(output, [FILES[0], FILES[1], FILES[2]])).startswith("--- a/a_fwd.cu")
    generate(output, force=True)
    assert unified_diff(planned(output)) == ""


def test_check_directory_refuses_paths_that_cannot_be_directories(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="exists and is not a directory"):
        check_directory(tmp_path / "file")
    with pytest.raises(UsageError, match=r"file is not a directory$"):
        check_directory(tmp_path / "file" / "out")
    check_directory(tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()


def test_leftover_temp_files_of_a_killed_run_are_removed_by_the_next_run(output: Path) -> None:
    (output / f"{TEMP_PREFIX}4242-0123456789abcdef").write_text("half a fi")
    (output / f"{TEMP_PREFIX}notes").write_text("a user's own file that happens to share the prefix")
    (output / "a_fwd.cu").unlink()
    generate(output)
    assert temp_files(output) == [f"{TEMP_PREFIX}notes"]
    assert (output / "a_fwd.cu").read_text() == FILES[0].text


# Failures in the middle of writing, in a subprocess.

WRITER = r'''
import json, resource, signal, sys, time
from pathlib import Path
from flashast.axes import Configuration
from flashast.contract import Contract
from flashast.errors import UsageError
from flashast.generated import GeneratedFile
from flashast.nodes import TranslationUnit, Verbatim
from flashast.output import write
from flashast.style import Style

spec = json.loads(Path(sys.argv[2]).read_text())
files = [GeneratedFile(name, "demo", "fwd", Configuration((("head_dim", 128),)), TranslationUnit((Verbatim(text),)),
                       Style(), Contract()) for name, text in spec["files"]]
texts = [generated.text for generated in files]  # rendered before the clock starts
if spec.get("file_size_limit"):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec["file_size_limit"], resource.RLIM_INFINITY))
if spec.get("spare_descriptors") is not None:
    in_use = len(list(Path("/proc/self/fd").iterdir()))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + spec["spare_descriptors"], resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print("ready", flush=True)
if spec.get("wait"):
    sys.stdin.readline()
started = time.monotonic()
try:
    _, outcome = write(Path(sys.argv[1]), files, "demo", frozenset(spec["names"]), "0-test")
except UsageError as error:
    print(json.dumps({"error": str(error)}), flush=True)
    sys.exit(2)
print(json.dumps({"written": outcome.written, "seconds": time.monotonic() - started}), flush=True)
'''


def start_writer(tmp_path: Path, directory: Path, files: Sequence[tuple[str, str]], **options: object) -> subprocess.Popen[str]:
    """Start `WRITER` on `files` ((name, text) pairs); it prints `ready` just before `output.write`.

    Its stderr goes to its stdout, and `finish` reads the rest through the same buffered reader:
    `communicate` would read the descriptor itself and miss what `readline` already buffered."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    spec = tmp_path / f"spec-{random.getrandbits(64):x}.json"
    spec.write_text(json.dumps({"files": files, "names": [name for name, _ in files], **options}))
    process = subprocess.Popen(
        [sys.executable, str(script), str(directory), str(spec)], env=cli_environment(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline() != "ready\n":
        pytest.fail(f"the writer did not start: {finish(process)}")
    return process


def finish(process: subprocess.Popen[str]) -> str:
    """Everything else the writer prints, once it has ended."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    output = process.stdout.read()
    process.wait(timeout=300)
    return output


def result_of(process: subprocess.Popen[str]) -> tuple[int, dict[str, object]]:
    output = finish(process)
    try:
        return process.returncode, json.loads(output)
    except ValueError:
        pytest.fail(f"the writer failed: {output}")


def run_writer(tmp_path: Path, directory: Path, files: Sequence[tuple[str, str]], **options: object) -> tuple[int, dict[str, object]]:
    return result_of(start_writer(tmp_path, directory, files, **options))


def texts(files: Sequence[tuple[str, str]]) -> dict[str, str]:
    """What `WRITER` writes for each (name, Verbatim text) pair."""
    return {name: source(name, text).text for name, text in files}


@pytest.mark.parametrize("failing", ["the last file", "the manifest, renamed first"])
def test_a_write_that_fails_leaves_every_file_as_it_was_and_no_temp_file(tmp_path: Path, failing: str) -> None:
    """A file-size limit (RLIMIT_FSIZE, which binds root too) stands for a full disk: `write` stops
    short, then fails. Every temp file comes before the first rename, so nothing is renamed."""
    directory = tmp_path / "out"
    old = [("a.cu", "int a;"), ("b.cu", "int b;"), ("c.cu", "int c;")]
    assert run_writer(tmp_path, directory, old)[0] == 0
    (directory / "mine.txt").write_text("a foreign file\n")
    age(directory)
    before = state(directory)
    if failing == "the last file":
        # a.cu changes, n.cu is new, and z.cu (written last, after the manifest's temp file) is too big.
        new, limit, culprit = [("a.cu", "int a2;"), ("b.cu", "int b;"), ("n.cu", "int n;"), ("z.cu", "// z\n" * 4000)], 8192, "z.cu"
    else:
        new, limit, culprit = [("a.cu", "int a2;"), ("b.cu", "int b;"), ("c.cu", "int c;")], 64, MANIFEST_NAME
    code, result = run_writer(tmp_path, directory, new, file_size_limit=limit)
    assert (code, result) == (2, {"error": f"{directory / culprit}: cannot write (File too large)"})
    assert state(directory) == before
    assert temp_files(directory) == []
    code, result = run_writer(tmp_path, directory, new)
    assert code == 0 and sorted(result["written"]) == sorted(name for name, text in new if (name, text) not in old)


def test_one_temp_file_is_open_at_a_time(tmp_path: Path) -> None:
    """With three descriptors to spare, 300 files are still written (and the directory locked)."""
    files = [(f"f{index:03}.cu", f"int f{index};") for index in range(300)]
    code, result = run_writer(tmp_path, tmp_path / "out", files, spare_descriptors=3)
    assert code == 0, result
    assert len(result["written"]) == 300
    assert digest_files(tmp_path / "out") == {name: sha256(text) for name, text in texts(files).items()}


# The kill test's writers: `WRITER`'s spec and `write`, each in a process forked from one that imported
# flashast once (`FORKING_WRITER`), so a round costs the write, not an interpreter's start and imports.
# The parent reaps a writer only when told to, after the test has killed it: its pid cannot be reused
# for another process in between.
FORKING_WRITER = WRITER.split("spec = json.loads", 1)[0] + r'''
import os

for request in sys.stdin:
    directory, spec_path = request.rstrip("\n").split("\t")
    pid = os.fork()
    if pid == 0:
        spec = json.loads(Path(spec_path).read_text())
        files = [GeneratedFile(name, "demo", "fwd", Configuration((("head_dim", 128),)), TranslationUnit((Verbatim(text),)),
                               Style(), Contract()) for name, text in spec["files"]]
        texts = [generated.text for generated in files]  # rendered before the clock starts
        print("ready", os.getpid(), flush=True)
        started = time.monotonic()
        _, outcome = write(Path(directory), files, "demo", frozenset(spec["names"]), "0-test")
        print(json.dumps({"written": outcome.written, "seconds": time.monotonic() - started}), flush=True)
        os._exit(0)
    sys.stdin.readline()  # "reap"
    _, status = os.waitpid(pid, 0)
    print("ended", status, flush=True)
'''


class ForkingWriter:
    """`FORKING_WRITER` running: `start` forks a writer for one round and returns its pid once it is
    about to call `write`; `end` reaps it and returns what it printed and its wait status."""

    def __init__(self, tmp_path: Path) -> None:
        script = tmp_path / "forking_writer.py"
        script.write_text(FORKING_WRITER)
        self.tmp_path = tmp_path
        self.process = subprocess.Popen([sys.executable, str(script)], env=cli_environment(), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def start(self, directory: Path, files: Sequence[tuple[str, str]]) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        spec = self.tmp_path / f"spec-{random.getrandbits(64):x}.json"
        spec.write_text(json.dumps({"files": files, "names": [name for name, _ in files]}))
        self.process.stdin.write(f"{directory}\t{spec}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line.startswith("ready "):
            pytest.fail(f"the writer did not start: {line}{self.close()}")
        return int(line.split()[1])

    def end(self) -> tuple[list[str], int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("reap\n")
        self.process.stdin.flush()
        printed = []
        while not (line := self.process.stdout.readline()).startswith("ended "):
            if not line:
                pytest.fail(f"the forking writer ended: {printed}")
            printed.append(line)
        return printed, int(line.split()[1])

    def run(self, directory: Path, files: Sequence[tuple[str, str]]) -> dict[str, object]:
        """One round to its end: what the writer reported (it must exit 0)."""
        self.start(directory, files)
        printed, status = self.end()
        assert status == 0 and len(printed) == 1, printed
        result: dict[str, object] = json.loads(printed[0])
        return result

    def close(self) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        output = self.process.stdout.read()
        self.process.wait(timeout=60)
        return output


def round_files(round_: int) -> list[tuple[str, str]]:
    """Round `round_` of the kill test: 60 files of ~40 KB whose text changes every round, and two
    files new in this round."""
    body = f"// round {round_}\n" + "// padding padding padding padding\n" * 1200
    base = [(f"k{index:02}.cu", f"{body}int k{index};") for index in range(60)]
    return [*base, (f"new_{round_:02}_a.cu", body), (f"new_{round_:02}_b.cu", body)]


def test_sigkill_at_any_moment_never_leaves_a_torn_or_unowned_file(tmp_path: Path) -> None:
    """20 runs, each killed after a random delay while it writes: every file is whole (old or new
    bytes), so is the manifest, every file on disk is owned by the manifest on disk (ownership
    first), and the next run repairs the directory."""
    directory = tmp_path / "out"
    writer = ForkingWriter(tmp_path)
    seconds = []
    for round_ in range(3):  # the last two measure how long writing takes here, to aim the kills
        result = writer.run(directory, round_files(round_))
        assert isinstance(result["seconds"], float)
        seconds.append(result["seconds"])
    window = 1.2 * max(seconds[1:])
    rng = random.Random(20240601)
    torn = 0
    for round_ in range(3, 23):
        files = round_files(round_)
        old = {path.name: path.read_bytes() for path in directory.iterdir()}
        sources = [source(name, text) for name, text in files]
        new = {generated.name: generated.text.encode() for generated in sources}
        upcoming = planned(directory, sources)
        new_manifest = dump_manifest(upcoming.manifest_after)
        # While files whose sha256 changes are renamed, the manifest names them as pending.
        pending = sorted(generated.name for generated in upcoming.changed)
        pending_manifest = dump_manifest(dataclasses.replace(upcoming.manifest_after, pending=tuple(pending)))
        pid = writer.start(directory, files)
        time.sleep(rng.uniform(0, window))
        os.kill(pid, signal.SIGKILL)  # not reaped yet: still this writer's pid, whether or not it finished
        _, status = writer.end()
        assert status in (0, signal.SIGKILL), status
        manifest_bytes = (directory / MANIFEST_NAME).read_bytes()
        assert manifest_bytes in (old[MANIFEST_NAME], new_manifest.encode(), pending_manifest.encode()), (
            f"round {round_}: torn manifest"
        )
        manifest = read_manifest(directory)
        assert manifest is not None
        on_disk = {path.name for path in directory.iterdir() if not path.name.startswith(".")}
        assert on_disk <= manifest.files.keys(), f"round {round_}: a file on disk the manifest does not own"
        rewritten = 0
        for name in on_disk:
            data = (directory / name).read_bytes()
            assert data in (old.get(name), new.get(name)), f"round {round_}: {name} is torn"
            rewritten += data == new.get(name) != old.get(name)
        torn += 0 < rewritten < len(new)
    final = [source(name, text) for name, text in round_files(23)]
    generate(directory, final, prune=True)
    assert sorted(path.name for path in directory.iterdir()) == sorted([MANIFEST_NAME, *(generated.name for generated in final)])
    assert not planned(directory, final).differs
    assert writer.close() == ""
    print(f"{torn} of 20 runs were killed between their first and last rename")


@pytest.mark.parametrize("round_", range(3))
def test_two_runs_started_together_are_serialised_by_the_lock(tmp_path: Path, round_: int) -> None:
    """Both plan as soon as they are released; without the lock both would find every file new."""
    directory = tmp_path / "new" / "out"
    files = [(f"f{index:03}.cu", f"int f{index};") for index in range(100)]
    processes = [start_writer(tmp_path, directory, files, wait=True) for _ in range(2)]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [result_of(process)[1] for process in processes]
    assert sorted(len(result["written"]) for result in results) == [0, 100]
    assert digest_files(directory) == {name: sha256(text) for name, text in texts(files).items()}
    assert temp_files(directory) == []


# Through the command line.


def test_the_cli_writes_the_pytorch_tree_then_nothing_on_a_second_run(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    code, _, stderr = run_cli("-o", directory)
    assert code == 0, stderr
    assert digest_files(directory) == read_golden("pytorch")
    age(directory)
    before = state(directory)
    code, _, stderr = run_cli("-o", directory)
    assert code == 0, stderr
    assert state(directory) == before


def test_a_verification_failure_writes_nothing_at_all(tmp_path: Path) -> None:
    """Exit 3 with the diagnostic, and the directory (an edited file, a stale one) exactly as it was."""
    extra = tmp_path / "extra_kind.py"
    extra.write_text(
        "from flashast import Kind, LineComment, TranslationUnit\n"
        "\n"
        "\n"
        "def register(registry):\n"
        "    build = lambda config: TranslationUnit((LineComment('extra'),))\n"
        "    registry.add_kind('pytorch', Kind('extra', axes={'head_dim': (128,)}, build=build,"
        " file_name='extra_hdim{head_dim}.cu'))\n"
    )
    directory = tmp_path / "out"
    code, _, stderr = run_cli("-o", directory, "--plugin", str(extra))
    assert code == 0, stderr
    (directory / "flash_fwd_hdim128_bf16_sm80.cu").write_text("// needs rewriting\n")
    broken = tmp_path / "broken_kind.py"
    broken.write_text(
        "from flashast import Kind, TranslationUnit, Verbatim\n"
        "\n"
        "\n"
        "def register(registry):\n"
        "    build = lambda config: TranslationUnit((Verbatim('int broken = ;'),))\n"
        "    registry.add_kind('pytorch', Kind('broken', axes={'head_dim': (64,)}, build=build,"
        " file_name='broken_hdim{head_dim}.cu'))\n"
    )
    age(directory)
    before = state(directory)
    code, stdout, stderr = run_cli("-o", directory, "--plugin", str(broken), "--prune", "--force")
    assert (code, stdout) == (3, "")
    assert "broken_hdim64.cu:1:" in stderr and "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith("flashast: error: ")
    assert state(directory) == before

