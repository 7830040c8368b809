"""What earlier runs proved: the no-op stamp and the verification keys, through the real CLI.

The claims under test: a run whose inputs match the stamp and whose files still hold the stamped
bytes does nothing and builds no model; anything that could change the output (an edit, other
options, an installed plugin, another libclang verdict) sends the run down the full path; a file
verified once is not parsed again while its key holds, and a key changes with anything the verdict
depends on.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_environment, read_golden, run_cli, snapshot, write_distribution, write_extra_kind_plugin

from flashast import cache
from flashast.output import MANIFEST_NAME

LATE_PLUGIN = """
from flashast import Kind, LineComment, TranslationUnit
def register(registry):
    build = lambda config: TranslationUnit((LineComment('late'),))
    registry.add_kind('pytorch', Kind('late', {'n': (1,)}, build, 'late_{n}.cu'))
"""


def install_late_plugin(site: Path) -> None:
    """An installed distribution whose entry point adds kind `late` (one file, `late_1.cu`) to pytorch."""
    write_distribution(site, "late-plugin", "1.0", {"late": "late_plugin:register"}, {"late_plugin": LATE_PLUGIN})


# Runs the CLI in-process and reports which of flashast's heavy modules the run imported: none and
# not even the output module is the stamp path ("-"); the output module alone is a run replayed from
# the user cache's run record ("record"); otherwise the full path, named by its modules.
PROBE = """
import sys
from flashast.cli import main
code = main(sys.argv[1:])
heavy = sorted(name for name in ("flashast.nodes", "flashast.kinds", "flashast.verify", "clang.cindex")
               if name in sys.modules)
print(code, ",".join(heavy) or ("record" if "flashast.output" in sys.modules else "-"))
"""


def probe(directory: Path, *arguments: str, plugins: bool = False, cache: bool = True) -> tuple[int, str, str]:
    environment = cli_environment(plugins, None if cache else {"FLASHAST_NO_CACHE": "1"})
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, "-o", str(directory), *arguments],
        capture_output=True, text=True, env=environment, check=False,
    )
    code, heavy = completed.stdout.splitlines()[-1].split()
    return int(code), heavy, completed.stderr


def test_an_unchanged_rerun_takes_the_stamp_path_and_touches_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert probe(out)[:2] == (0, "clang.cindex,flashast.kinds,flashast.nodes,flashast.verify")
    before = snapshot(out)
    code, heavy, stderr = probe(out)
    assert (code, heavy) == (0, "-")
    assert stderr == "flashast: 0 written, 48 unchanged, 0 stale (pytorch)\n"
    assert snapshot(out) == before


@pytest.mark.parametrize("cache", [True, False], ids=["from the run record", "full path without a cache"])
def test_an_edited_file_is_repaired(tmp_path: Path, cache: bool) -> None:
    out = tmp_path / "out"
    probe(out, cache=cache)
    edited = out / "flash_fwd_hdim64_bf16_sm80.cu"
    original = edited.read_bytes()
    edited.write_bytes(original + b"// hand edit\n")
    code, heavy, stderr = probe(out, cache=cache)
    # Without the cache the model is built again; the manifest's keys still spare libclang the parse.
    assert code == 0 and heavy == ("record" if cache else "flashast.kinds,flashast.nodes,flashast.verify")
    assert "1 written, 47 unchanged" in stderr
    assert edited.read_bytes() == original
    assert probe(out)[:2] == (0, "-"), "the manifest's stamp still describes the repaired directory"


@pytest.mark.parametrize("cache", [True, False], ids=["from the run record", "full path without a cache"])
def test_a_deleted_file_is_not_reported_unchanged(tmp_path: Path, cache: bool) -> None:
    out = tmp_path / "out"
    probe(out, cache=cache)
    (out / "flash_bwd_hdim96_fp16_sm80.cu").unlink()
    code, heavy, stderr = probe(out, cache=cache)
    assert code == 0 and heavy != "-" and "1 written, 47 unchanged" in stderr
    assert probe(out)[:2] == (0, "-")


def test_other_options_do_not_match_the_stamp(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    code, heavy, stderr = probe(out, "--only", "head_dim=128")
    assert code == 0 and "flashast.nodes" in heavy and "0 written, 6 unchanged" in stderr
    code, heavy, stderr = probe(out, "--no-verify")
    assert code == 0 and heavy == "flashast.kinds,flashast.nodes"
    assert "verification skipped" in stderr


def test_check_diff_list_and_plugin_runs_never_take_the_stamp_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    for arguments in (["--check"], ["--diff"], ["--list"]):
        code, heavy, _ = probe(out, *arguments)
        assert code == 0 and "flashast.nodes" in heavy, arguments
    plugin = write_extra_kind_plugin(tmp_path / "extra.py")
    code, heavy, stderr = probe(out, "--plugin", str(plugin))
    assert code == 0 and "flashast.nodes" in heavy and "1 written" in stderr
    assert "stamp" not in json.loads((out / MANIFEST_NAME).read_text()), "plugin code cannot be fingerprinted"
    code, heavy, stderr = probe(out)
    assert (code, heavy) == (0, "record"), "the plain run's record still holds; the plan is made afresh"
    assert "1 stale" in stderr


def test_a_plugin_installed_after_the_stamp_is_still_loaded(tmp_path: Path) -> None:
    """Installing a distribution changes a directory on sys.path, which the fingerprint covers."""
    site = tmp_path / "site"
    site.mkdir()
    out = tmp_path / "out"
    environment = {"PYTHONPATH": str(site)}
    assert run_cli("-o", out, discover_plugins=True, env=environment)[0] == 0
    assert run_cli("-o", out, discover_plugins=True, env=environment)[2] == (
        "flashast: 0 written, 48 unchanged, 0 stale (pytorch)\n"
    )
    install_late_plugin(site)
    code, _, stderr = run_cli("-o", out, discover_plugins=True, env=environment)
    assert code == 0, stderr
    assert (out / "late_1.cu").is_file()
    assert "1 written, 48 unchanged" in stderr


def test_a_stamped_directory_is_byte_for_byte_the_golden_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    probe(out)
    files = {name: data for name, (data, _) in snapshot(out).items() if name != MANIFEST_NAME}
    assert {name: hashlib.sha256(data).hexdigest() for name, data in files.items()} == read_golden("pytorch")


def test_the_stamp_rejects_names_outside_the_directory_links_and_edited_manifests(tmp_path: Path) -> None:
    (tmp_path / "x.cu").write_text("x")
    (tmp_path / "link.cu").symlink_to(tmp_path / "x.cu")
    digest = cache.content_digest(b"x")

    def manifest(stamped: dict[str, str], inputs: str = "f", **rest: object) -> dict[str, object]:
        digest_of_rest = cache.content_digest(cache.json_identity(rest).encode())
        return {**rest, "stamp": {"files": stamped, "inputs": inputs, "manifest": digest_of_rest}}

    assert cache.unchanged_since_stamp(tmp_path, manifest({"x.cu": digest}), "f") == 1
    assert cache.unchanged_since_stamp(tmp_path, manifest({"x.cu": digest}, "g"), "f") is None
    for name in ("../x.cu", ".hidden", "a/b.cu", "link.cu", "x\0.cu", ""):
        assert cache.unchanged_since_stamp(tmp_path, manifest({name: digest}), "f") is None, name
    edited = manifest({"x.cu": digest}, files={})
    edited["files"] = {"x.cu": {"sha256": "0"}}  # an owned entry added by hand after the stamp
    assert cache.unchanged_since_stamp(tmp_path, edited, "f") is None


# Verification keys ----------------------------------------------------------------------------------


def test_a_new_directory_reuses_verdicts_from_the_user_cache(tmp_path: Path) -> None:
    assert probe(tmp_path / "first")[:2] == (0, "clang.cindex,flashast.kinds,flashast.nodes,flashast.verify")
    # Other options: no run record matches, so the model is built; the verdicts are still known.
    code, heavy, _ = probe(tmp_path / "second", "--exclude", "dtype=bf16")
    assert (code, heavy) == (0, "flashast.kinds,flashast.nodes,flashast.verify"), "libclang is not even loaded"
    assert len(snapshot(tmp_path / "second")) == 24 + 1


def test_the_manifest_keys_serve_without_the_user_cache(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert probe(out)[0] == 0
    (out / "flash_fwd_hdim64_bf16_sm80.cu").write_text("// edited\n")
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, "-o", str(out)], capture_output=True, text=True, check=False,
        env=cli_environment(False, {"FLASHAST_NO_CACHE": "1"}),
    )
    code, heavy = completed.stdout.split()
    assert code == "0" and "clang.cindex" not in heavy
    assert "1 written" in completed.stderr


def test_the_user_cache_can_be_turned_off(tmp_path: Path) -> None:
    probe(tmp_path / "first")
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, "-o", str(tmp_path / "second")], capture_output=True, text=True,
        check=False, env=cli_environment(False, {"FLASHAST_NO_CACHE": "1"}),
    )
    assert completed.stdout.split() == ["0", "clang.cindex,flashast.kinds,flashast.nodes,flashast.verify"]


def test_a_failing_file_is_never_remembered(tmp_path: Path) -> None:
    """Only verified keys are stored: a broken kind fails every time, in every directory."""
    plugin = tmp_path / "broken.py"
    plugin.write_text(
        "from flashast import Include, Kind, TranslationUnit, Verbatim\n"
        "def register(registry):\n"
        "    build = lambda config: TranslationUnit((Include('ATen/native/transformers/cuda/flash_attn/flash.h',"
        " angled=True), Verbatim('int broken(')))\n"
        "    registry.add_kind('pytorch', Kind('broken', {'n': (1,)}, build, 'broken_{n}.cu', __import__("
        "'flashast.presets.pytorch', fromlist=['CONTRACT']).CONTRACT))\n"
    )
    for attempt in ("a", "b"):
        code, _, stderr = run_cli("-o", tmp_path / attempt, "--plugin", plugin)
        assert code == 3, stderr
        assert "broken_1.cu:2:" in stderr
        assert not (tmp_path / attempt).exists()


def test_a_key_changes_with_every_input_of_the_verdict() -> None:
    common = cache.common_verification_key(["-x", "c++"], {})
    key = cache.verification_key(common, "text", {"a.h": "A"}, {})
    assert key == cache.verification_key(cache.common_verification_key(["-x", "c++"], {}), "text", {"a.h": "A"}, {})
    variants = {
        "file text": cache.verification_key(common, "text2", {"a.h": "A"}, {}),
        "header text": cache.verification_key(common, "text", {"a.h": "B"}, {}),
        "header path": cache.verification_key(common, "text", {"b.h": "A"}, {}),
        "member": cache.verification_key(common, "text", {"a.h": "A"}, {"m.cu": "M"}),
        "arguments": cache.verification_key(cache.common_verification_key(["-x", "c++", "-DX"], {}), "text", {"a.h": "A"}, {}),
        "environment": cache.verification_key(
            cache.common_verification_key(["-x", "c++"], {"CPATH": "/somewhere"}), "text", {"a.h": "A"}, {}
        ),
    }
    assert len({key, *variants.values()}) == len(variants) + 1
    # Parts cannot run together: ("ab", "c") and ("a", "bc") are different inputs.
    assert cache.verification_key(common, "ab", {"c": ""}, {}) != cache.verification_key(common, "a", {"bc": ""}, {})


# The stamp and the verdict cache never disagree with the full path ---------------------------------


def test_a_hand_added_owned_entry_is_reported_stale_not_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    (out / "flash_fwd_hdim999_fp16_sm80.cu").write_text("// old\n")
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["files"]["flash_fwd_hdim999_fp16_sm80.cu"] = {"sha256": hashlib.sha256(b"// old\n").hexdigest()}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    code, heavy, stderr = probe(out)
    assert code == 0 and heavy != "-"
    assert "1 stale" in stderr.splitlines()[-1]


def test_a_generated_file_replaced_by_a_symlink_is_refused_as_in_a_full_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    target = out / "flash_fwd_hdim64_bf16_sm80.cu"
    copy = tmp_path / "copy.cu"
    copy.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(copy)
    code, _, stderr = run_cli("-o", out)
    assert code == 2 and "is not a regular file" in stderr


def test_turning_plugin_discovery_on_invalidates_a_stamp_made_with_it_off(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_late_plugin(site)
    out = tmp_path / "out"
    environment = {"PYTHONPATH": str(site)}
    assert run_cli("-o", out, env=environment)[0] == 0  # discovery off (the helper's default)
    assert run_cli("-o", out, env=environment)[2].startswith("flashast: 0 written, 48 unchanged")
    code, _, stderr = run_cli("-o", out, discover_plugins=True, env=environment)
    assert code == 0, stderr
    assert (out / "late_1.cu").is_file() and "1 written" in stderr


def test_bad_verification_options_are_refused_even_on_a_stamped_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    for option in ("--cuda-path", "--resource-dir"):
        code, _, stderr = run_cli("-o", out, option, str(tmp_path / "missing"))
        assert code == 2 and stderr.startswith("flashast: error: "), stderr


CONTRACT_WARNING_PLUGIN = """
from flashast import Contract, Include, Kind, PragmaOnce, TranslationUnit, Verbatim
CONTRACT = Contract({"warns.h": (PragmaOnce(), Verbatim("inline int narrowed = 1.5;"))})
def register(registry):
    build = lambda config: TranslationUnit((Include("warns.h"),))
    registry.add_kind("pytorch", Kind("warns", {"n": (1,)}, build, "warns_{n}.cu", CONTRACT))
"""


def test_strict_is_part_of_the_verdict_and_a_pass_with_warnings_is_not_remembered(tmp_path: Path) -> None:
    plugin = tmp_path / "warns.py"
    plugin.write_text(CONTRACT_WARNING_PLUGIN)
    code, _, stderr = run_cli("-o", tmp_path / "a", "--plugin", plugin, "--only", "kind=warns")
    assert code == 0 and "warning: implicit conversion" in stderr
    code, _, stderr = run_cli("-o", tmp_path / "b", "--plugin", plugin, "--only", "kind=warns")
    assert code == 0 and "warning: implicit conversion" in stderr, "the warning is shown again, not cached away"
    code, _, stderr = run_cli("-o", tmp_path / "c", "--plugin", plugin, "--only", "kind=warns", "--strict")
    assert code == 3 and "error: implicit conversion" in stderr


def test_files_named_by_clang_arguments_are_read_every_time(tmp_path: Path) -> None:
    extra = tmp_path / "extra.h"
    extra.write_text("struct fine {};\n")
    arguments = ("--clang-arg=-include", f"--clang-arg={extra}", "--only", "head_dim=64")
    assert run_cli("-o", tmp_path / "a", *arguments)[0] == 0
    extra.write_text("this is not C++\n")
    code, _, stderr = run_cli("-o", tmp_path / "a", *arguments)
    assert code == 3, stderr
    code, _, stderr = run_cli("-o", tmp_path / "b", *arguments)
    assert code == 3 and not (tmp_path / "b").exists()


def test_a_malformed_verification_key_in_the_manifest_is_a_user_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    next(iter(manifest["files"].values()))["verified"] = ["x"]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    before = snapshot(out)
    code, _, stderr = run_cli("-o", out)
    assert code == 2 and len(stderr.splitlines()) == 1 and "malformed verification key" in stderr
    assert snapshot(out) == before


# Run records -----------------------------------------------------------------------------------------


def run_records(cache_directory: Path) -> list[Path]:
    return sorted((cache_directory / cache.RUNS_NAME).glob("*.json"))


@pytest.mark.parametrize("preset", ["pytorch", "flash-attn-3"])
def test_a_new_directory_is_written_from_the_run_record_byte_for_byte(tmp_path: Path, preset: str) -> None:
    """The record path writes exactly what the full path writes, manifest included, without the model."""
    assert probe(tmp_path / "full", "--preset", preset)[:2] == (
        0, "clang.cindex,flashast.kinds,flashast.nodes,flashast.verify"
    )
    code, heavy, stderr = probe(tmp_path / "replayed", "--preset", preset)
    assert (code, heavy) == (0, "record")
    full, replayed = snapshot(tmp_path / "full"), snapshot(tmp_path / "replayed")
    assert {name: data for name, (data, _) in replayed.items()} == {name: data for name, (data, _) in full.items()}
    golden = read_golden(preset)
    assert {name: hashlib.sha256(data).hexdigest() for name, (data, _) in replayed.items() if name in golden} == golden
    assert stderr == f"flashast: {len(golden)} written, 0 unchanged, 0 stale ({preset})\n"
    assert probe(tmp_path / "replayed", "--preset", preset)[:2] == (0, "-"), "the replayed directory is stamped"


def test_a_damaged_run_record_is_a_miss_and_the_full_path_runs(
    tmp_path: Path, isolated_verification_cache: Path
) -> None:
    probe(tmp_path / "first")
    [record] = run_records(isolated_verification_cache)
    whole = json.loads(record.read_text())
    damaged = {**whole, "files": [{**whole["files"][0], "text": 7}, *whole["files"][1:]]}
    escaping = {**whole, "preset_names": [*whole["preset_names"], "../escaped.cu"],
                "files": [*whole["files"], {**whole["files"][0], "name": "../escaped.cu"}]}
    first = whole["files"][0]
    # Still valid JSON, still well-formed: a flipped letter, an added file, a text no UTF-8 file can
    # hold (each with its digest made to match, as a same-version writer with a bug would), nesting
    # deeper than json can read.
    flipped = {**whole, "files": [{**first, "text": first["text"].replace("template", "tempalte")}, *whole["files"][1:]]}
    added = {**whole, "preset_names": [*whole["preset_names"], "CMakeLists.txt"],
             "files": [*whole["files"], {**first, "name": "CMakeLists.txt"}]}
    surrogate = {**whole, "files": [{**first, "text": "\ud800"}, *whole["files"][1:]]}
    surrogate["digest"] = cache._record_digest(surrogate)
    texts = ("", "{", json.dumps({**whole, "fingerprint": "other"}), json.dumps(damaged), json.dumps(escaping),
             json.dumps(flipped), json.dumps(added), json.dumps(surrogate), "[" * 100000)
    for text in texts:
        record.write_text(text)
        out = tmp_path / f"out{texts.index(text)}"
        code, heavy, stderr = probe(out)
        assert code == 0 and "flashast.nodes" in heavy, (text[:40], stderr)
        golden = read_golden("pytorch")
        assert {name: hashlib.sha256(data).hexdigest() for name, (data, _) in snapshot(out).items()
                if name != MANIFEST_NAME} == golden
    assert json.loads(record.read_text()) == whole, "the full path wrote the record again"
    assert not (tmp_path / "escaped.cu").exists()
    assert not any((tmp_path / f"out{index}" / "CMakeLists.txt").exists() for index in range(len(texts)))


def test_no_record_without_the_cache_with_plugins_or_for_other_modes(
    tmp_path: Path, isolated_verification_cache: Path
) -> None:
    probe(tmp_path / "a", cache=False)
    probe(tmp_path / "b", "--plugin", str(write_extra_kind_plugin(tmp_path / "extra.py")))
    probe(tmp_path / "b", "--check")
    probe(tmp_path / "c", "--prune")
    assert run_records(isolated_verification_cache) == []
    code, heavy, _ = probe(tmp_path / "d")
    assert code == 0 and "flashast.nodes" in heavy
    assert len(run_records(isolated_verification_cache)) == 1, "a plain write run leaves its record"


def test_the_record_path_still_refuses_a_foreign_file_and_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    probe(tmp_path / "first")
    out = tmp_path / "out"
    out.mkdir()
    (out / "flash_fwd_hdim64_bf16_sm80.cu").write_text("// mine\n")
    before = snapshot(out)
    code, heavy, stderr = probe(out)
    assert (code, heavy) == (2, "record")
    assert "flash_fwd_hdim64_bf16_sm80.cu: exists, was not written by flashast" in stderr
    assert snapshot(out) == before


def test_records_are_kept_for_the_most_recently_used_inputs(tmp_path: Path) -> None:
    store = tmp_path / "verified-v1"
    file = cache.RecordedFile("a.cu", "// a\n", "k", "p", False, {"n": 1})
    for number in range(cache.RUNS_KEPT + 3):
        cache.remember_run(store, f"{number:03d}".ljust(64, "f"), "p", ["a.cu"], [file], {"a.cu": None})
        os.utime(cache._run_path(store, f"{number:03d}".ljust(64, "f")), ns=(number * 10**9, number * 10**9))
    assert cache.load_run(store, "000".ljust(64, "f")) is None, "the oldest records went"
    used = cache.load_run(store, "003".ljust(64, "f"))  # reading a record marks it used
    assert used is not None and [recorded.text for recorded in used.files] == ["// a\n"]
    for number in range(100, 100 + cache.RUNS_KEPT - 1):
        cache.remember_run(store, f"{number:03d}".ljust(64, "f"), "p", ["a.cu"], [file], {"a.cu": None})
    assert cache.load_run(store, "003".ljust(64, "f")) is not None
    assert len(list(store.parent.joinpath(cache.RUNS_NAME).iterdir())) == cache.RUNS_KEPT


def test_an_entry_point_added_in_place_is_loaded_though_the_fingerprint_did_not_change(tmp_path: Path) -> None:
    """`setup.py develop` rewrites a distribution's entry_points.txt in place: no directory the
    fingerprint watches changes, so both shortcuts ask whether any plugin is declared now."""
    site = tmp_path / "site"
    site.mkdir()
    write_distribution(site, "late-plugin", "1.0", {}, {"late_plugin": LATE_PLUGIN})
    entry_points = next(site.glob("*.dist-info")) / "entry_points.txt"
    entry_points.write_text("[console_scripts]\nlate = late_plugin:register\n")
    environment = {"PYTHONPATH": str(site)}
    stamped = tmp_path / "stamped"
    assert run_cli("-o", stamped, discover_plugins=True, env=environment)[0] == 0
    assert not (stamped / "late_1.cu").exists()
    site_mtime = site.stat().st_mtime_ns
    entry_points.write_text("[flashast.plugins]\nlate = late_plugin:register\n")
    assert site.stat().st_mtime_ns == site_mtime, "the in-place edit changes no watched directory"
    for out in (stamped, tmp_path / "new"):
        code, _, stderr = run_cli("-o", out, discover_plugins=True, env=environment)
        assert code == 0, stderr
        assert (out / "late_1.cu").read_text() == "// late\n", out


def test_a_record_that_cannot_be_kept_leaves_no_temp_file(tmp_path: Path) -> None:
    store = tmp_path / "verified-v1"
    fingerprint = "1".ljust(64, "f")
    (cache._run_path(store, fingerprint) / "in-the-way").mkdir(parents=True)
    file = cache.RecordedFile("a.cu", "// a\n", "k", "p", False, {"n": 1})
    cache.remember_run(store, fingerprint, "p", ["a.cu"], [file], {"a.cu": None})
    assert sorted(path.name for path in cache._run_path(store, fingerprint).parent.iterdir()) == [
        cache._run_path(store, fingerprint).name
    ]
    assert cache.load_run(store, fingerprint) is None
