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
import subprocess
import sys
from pathlib import Path

from conftest import cli_environment, read_golden, run_cli, snapshot, write_extra_kind_plugin

from flashast import cache
from flashast.output import MANIFEST_NAME

# Runs the CLI in-process and reports which of flashast's heavy modules the run imported.
PROBE = """
import sys
from flashast.cli import main
code = main(sys.argv[1:])
heavy = sorted(name for name in ("flashast.nodes", "flashast.kinds", "flashast.verify", "clang.cindex")
               if name in sys.modules)
print(code, ",".join(heavy) or "-")
"""


def probe(directory: Path, *arguments: str, plugins: bool = False) -> tuple[int, str, str]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, "-o", str(directory), *arguments],
        capture_output=True, text=True, env=cli_environment(plugins), check=False,
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


def test_an_edited_file_is_repaired_by_the_full_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    edited = out / "flash_fwd_hdim64_bf16_sm80.cu"
    original = edited.read_bytes()
    edited.write_bytes(original + b"// hand edit\n")
    code, heavy, stderr = probe(out)
    assert code == 0 and "flashast.nodes" in heavy
    assert "1 written, 47 unchanged" in stderr
    assert edited.read_bytes() == original
    assert probe(out)[:2] == (0, "-"), "the manifest's stamp still describes the repaired directory"


def test_a_deleted_file_is_not_reported_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe(out)
    (out / "flash_bwd_hdim96_fp16_sm80.cu").unlink()
    code, heavy, stderr = probe(out)
    assert code == 0 and "flashast.nodes" in heavy and "1 written" in stderr


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
    assert code == 0 and "flashast.nodes" in heavy
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
    (site / "late_plugin.py").write_text(
        "from flashast import Kind, LineComment, TranslationUnit\n"
        "def register(registry):\n"
        "    build = lambda config: TranslationUnit((LineComment('late'),))\n"
        "    registry.add_kind('pytorch', Kind('late', {'n': (1,)}, build, 'late_{n}.cu'))\n"
    )
    info = site / "late_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: late-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[flashast.plugins]\nlate = late_plugin:register\n")
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


def test_the_stamp_rejects_names_outside_the_directory(tmp_path: Path) -> None:
    (tmp_path / "x.cu").write_text("x")
    digest = cache.content_digest(b"x")
    for name in ("../x.cu", ".hidden", "a/b.cu"):
        assert cache.unchanged_since_stamp(tmp_path, {"stamp": {"inputs": "f", "files": {name: digest}}}, "f") is None
    assert cache.unchanged_since_stamp(tmp_path, {"stamp": {"inputs": "f", "files": {"x.cu": digest}}}, "f") == 1
    assert cache.unchanged_since_stamp(tmp_path, {"stamp": {"inputs": "g", "files": {"x.cu": digest}}}, "f") is None


# Verification keys ----------------------------------------------------------------------------------


def test_a_new_directory_reuses_verdicts_from_the_user_cache(tmp_path: Path) -> None:
    assert probe(tmp_path / "first")[:2] == (0, "clang.cindex,flashast.kinds,flashast.nodes,flashast.verify")
    code, heavy, _ = probe(tmp_path / "second")
    assert code == 0 and "clang.cindex" not in heavy, "every key was verified before: libclang is not even loaded"
    assert snapshot(tmp_path / "second").keys() == snapshot(tmp_path / "first").keys()


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
