"""A directory belongs to the preset that wrote it: a run that forgets `--preset` (the default preset
on a flash-attention 2 tree) is refused before it touches the tree, and `--force` hands the directory
over without deleting the previous preset's files behind the user's back.

The refusals are the contract: the exit code, the one line on stderr and the untouched directory
(names, bytes, mtimes). A plain run is refused through the real CLI in a subprocess; the other modes
through `cli.main` in process (`run_in_process`), which prints the same.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import read_golden, run_cli, snapshot

from flashast.cli import main
from flashast.output import MANIFEST_NAME

PYTORCH = set(read_golden("pytorch"))


@pytest.fixture(scope="module")
def flash_attn_2_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fa2") / "kernels"
    code, _, stderr = run_cli("-o", directory, "--preset", "flash-attn-2", "-q")
    assert code == 0, stderr
    return directory


@pytest.fixture
def flash_attn_2_tree(tmp_path: Path, flash_attn_2_template: Path) -> Path:
    directory = tmp_path / "kernels"
    shutil.copytree(flash_attn_2_template, directory)
    return directory


@pytest.mark.parametrize("mode", [[], ["--prune"], ["--check"], ["--diff"], ["--list", "--manifest", "listing.json"]])
def test_a_run_of_another_preset_is_refused_and_changes_nothing(
    flash_attn_2_tree: Path, mode: list[str], run_in_process: Callable[..., tuple[int, str, str]]
) -> None:
    before = snapshot(flash_attn_2_tree.parent)
    run = run_in_process if mode else run_cli
    code, stdout, stderr = run("-o", "kernels", *mode, cwd=flash_attn_2_tree.parent)
    assert (code, stdout) == (2, "")
    (line,) = stderr.splitlines()
    assert line.startswith("flashast: error: kernels: belongs to preset flash-attn-2, not pytorch; ")
    assert "pass --preset flash-attn-2" in line
    assert "--force" in line
    assert snapshot(flash_attn_2_tree.parent) == before, "names, bytes and mtimes as they were; no listing"


def test_the_owning_preset_passes_and_the_refusal_comes_before_verification(
    flash_attn_2_tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")
    before = snapshot(flash_attn_2_tree)
    assert main(["-o", str(flash_attn_2_tree), "--preset", "flash-attn-2", "--check"]) == 0
    assert main(["-o", str(flash_attn_2_tree), "--preset", "flash-attn-2", "--prune"]) == 0
    assert snapshot(flash_attn_2_tree) == before
    capsys.readouterr()
    # A write of another preset that would fail verification is refused for the owner, not verified.
    # Real headers that are not there: every file fails verification (exit 3), unless refused first.
    failing = ["-o", str(flash_attn_2_tree), "-q", "--include-dir", str(flash_attn_2_tree.parent), "--only", "*hdim64*"]
    assert main([*failing, "--preset", "flash-attn-2"]) == 3
    capsys.readouterr()
    assert main(failing) == 2
    assert "belongs to preset flash-attn-2" in capsys.readouterr().err
    assert snapshot(flash_attn_2_tree) == before


def test_force_hands_the_directory_over_and_keeps_the_previous_presets_files(
    flash_attn_2_tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")
    fa2_only = {path.name: path.read_bytes() for path in flash_attn_2_tree.iterdir()}
    fa2_only = {name: data for name, data in fa2_only.items() if name not in PYTORCH and name != MANIFEST_NAME}
    assert len(fa2_only) == 60
    code, _, stderr = run_cli("-o", flash_attn_2_tree, "--force")
    assert code == 0, stderr
    assert "handed over from preset flash-attn-2 to pytorch (--force)" in stderr
    assert "60 kept as stale (--prune --force deletes them)" in stderr
    assert {name: (flash_attn_2_tree / name).read_bytes() for name in fa2_only} == fa2_only
    assert json.loads((flash_attn_2_tree / MANIFEST_NAME).read_text())["preset"] == "pytorch"
    # Now pytorch owns it; the previous preset's files go only when asked with --force too.
    assert main(["-o", str(flash_attn_2_tree), "--prune", "-q"]) == 0
    assert {name: (flash_attn_2_tree / name).read_bytes() for name in fa2_only} == fa2_only
    assert main(["-o", str(flash_attn_2_tree), "--prune", "--force"]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == "flashast: 0 written, 48 unchanged, 0 stale, 60 pruned (pytorch)"
    assert {path.name for path in flash_attn_2_tree.iterdir()} == {*PYTORCH, MANIFEST_NAME}
