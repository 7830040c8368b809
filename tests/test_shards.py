"""`--shard K/N` and portable verdict stores: a whole tree's truth spread over a CI job matrix.

Shards are cut deterministically, disjoint and covering, with every aggregator beside its members.
Verdict keys hold no absolute path of the machine: two shard runs against two copies of one header
tree at different places write stores that, merged with `cp -r`, make the full run parse nothing;
a header changed in one copy then re-parses exactly the files that read it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from flashast.cli import main
from flashast.generated import GeneratedFile
from flashast.registry import BUILTIN_PRESETS
from flashast.verify import Report, VerdictStore, VerifyOptions, verify
from flashast.verify.keys import STORE_NAME
from flashast.verify.shards import shard_of, shards

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "pytorch_headers"
BWD_HEADER = Path("ATen/native/transformers/cuda/flash_attn/flash_bwd_launch_template.h")


def preset_files(name: str) -> list[GeneratedFile]:
    (preset,) = [preset for preset in BUILTIN_PRESETS if preset.name == name]
    return preset.generate()


@pytest.mark.parametrize("preset", ["flash-attn-3", "pytorch", "llama.cpp"])
@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_shards_are_disjoint_covering_whole_and_deterministic(preset: str, count: int) -> None:
    files = preset_files(preset)
    cut = [[generated.name for generated in shard_of(files, index, count)] for index in range(1, count + 1)]
    names = [name for shard in cut for name in shard]
    assert sorted(names) == sorted(generated.name for generated in files)  # covering, and disjoint
    where = {name: position for position, shard in enumerate(cut) for name in shard}
    for generated in files:
        assert all(where[member] == where[generated.name] for member in generated.included_files())
    # The same cut whatever order the files come in.
    again = [[generated.name for generated in shard_of(files[::-1], index, count)] for index in range(1, count + 1)]
    assert [sorted(shard) for shard in again] == [sorted(shard) for shard in cut]
    # Balanced by file count: no shard is heavier than its share by more than one unit.
    largest_unit = max(len(unit) for part in shards(files, count) for unit in part)
    assert max(map(len, cut)) - len(files) / count <= largest_unit


def test_costs_balance_the_shards() -> None:
    files = preset_files("pytorch")
    costs = {generated.name: (10.0 if "bwd" in generated.name else 1.0) for generated in files}
    cut = [shard_of(files, index, 2, costs) for index in (1, 2)]
    weights = [sum(costs[generated.name] for generated in shard) for shard in cut]
    assert abs(weights[0] - weights[1]) <= 10.0
    assert len(cut[0]) != len(cut[1])  # by count they would be 24 and 24


def test_a_shard_outside_its_range_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and 4"):
        shard_of(preset_files("pytorch"), 5, 4)


def copy_tree(destination: Path) -> Path:
    shutil.copytree(FIXTURE, destination)
    return destination


def verify_against(headers: Path, files: Sequence[GeneratedFile], store: VerdictStore) -> Report:
    return verify(files, VerifyOptions(include_dirs=(headers,)), store)


def test_stores_of_two_shards_on_two_copies_merge_by_copying(tmp_path: Path) -> None:
    files = preset_files("pytorch")
    first_copy = copy_tree(tmp_path / "machine-1" / "src" / "headers")
    second_copy = copy_tree(tmp_path / "machine-2" / "a" / "deeper" / "place")
    for index, headers in ((1, first_copy), (2, second_copy)):
        store = VerdictStore(tmp_path / f"cache-{index}" / STORE_NAME, writer=f"shard-{index}-of-2")
        report = verify_against(headers, shard_of(files, index, 2), store)
        assert report.parsed == len(shard_of(files, index, 2)) and report.reused == 0
    merged = tmp_path / "merged"
    merged.mkdir()
    for index in (1, 2):
        subprocess.run(["cp", "-r", f"{tmp_path / f'cache-{index}'}/.", str(merged)], check=True)
    for store_file in (merged / STORE_NAME).rglob("*"):
        if store_file.is_file():
            text = store_file.read_text()
            assert str(tmp_path) not in text, store_file  # no absolute path of either machine
    full = verify_against(second_copy, files, VerdictStore(merged / STORE_NAME))
    assert (full.parsed, full.reused) == (0, len(files))
    # A header changed in one copy: exactly the files that read it are parsed again.
    readers = [generated for generated in files if "bwd" in generated.name]
    (second_copy / BWD_HEADER).write_text((second_copy / BWD_HEADER).read_text() + "\n// edited\n")
    edited = verify_against(second_copy, files, VerdictStore(merged / STORE_NAME))
    assert (edited.parsed, edited.reused) == (len(readers), len(files) - len(readers))
    unchanged = verify_against(first_copy, files, VerdictStore(merged / STORE_NAME))
    assert (unchanged.parsed, unchanged.reused) == (0, len(files))


def test_shard_runs_write_nothing_and_their_merged_stores_leave_the_final_run_nothing_to_parse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "kernels"
    for index in (1, 2):
        monkeypatch.setenv("FLASHAST_CACHE_DIR", str(tmp_path / f"cache-{index}"))
        assert main(["-o", str(output), "--preset", "flash-attn-3", "--shard", f"{index}/2"]) == 0
        assert not output.exists()
        assert f"flashast: shard {index}/2: " in capsys.readouterr().err
        assert (tmp_path / f"cache-{index}" / STORE_NAME / f"index-shard-{index}-of-2").is_file()
    merged = tmp_path / "merged"
    merged.mkdir()
    for index in (1, 2):
        subprocess.run(["cp", "-r", f"{tmp_path / f'cache-{index}'}/.", str(merged)], check=True)
    monkeypatch.setenv("FLASHAST_CACHE_DIR", str(merged))
    assert main(["-o", str(output), "--preset", "flash-attn-3", "--timings"]) == 0
    assert "flashast: 450 file(s) not parsed again" in capsys.readouterr().err


@pytest.mark.parametrize(("arguments", "said"), [
    (["--shard", "0/2"], "argument --shard: '0/2' is not K/N with 1 <= K <= N"),
    (["--shard", "3/2"], "argument --shard: '3/2' is not K/N with 1 <= K <= N"),
    (["--shard", "1/2", "--check"], "--check: --shard only verifies its part of the files"),
    (["--shard", "1/2", "--no-verify"], "--no-verify: --shard only verifies its part of the files"),
])
def test_a_shard_that_cannot_be_is_a_usage_error(arguments: list[str], said: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", str(tmp_path / "kernels"), *arguments]) == 2
    assert f"flashast: error: {said}" in capsys.readouterr().err
    assert not (tmp_path / "kernels").exists()


def test_a_run_logs_what_each_parse_cost_and_shards_balance_by_it(
        tmp_path: Path, isolated_verification_cache: Path) -> None:
    assert main(["-o", str(tmp_path / "kernels"), "--preset", "pytorch"]) == 0
    costs = VerdictStore.default().costs()
    assert sorted(costs) == sorted(generated.name for generated in preset_files("pytorch"))
    assert all(seconds >= 0 for seconds in costs.values())
    (isolated_verification_cache / STORE_NAME / "costs").write_text(
        "".join(f"{name} {10.0 if 'bwd' in name else 1.0:.3f}\n" for name in costs) + "damaged line\n")
    assert main(["-o", str(tmp_path / "kernels"), "--preset", "pytorch", "--shard", "1/2"]) == 0
    assert not (isolated_verification_cache / STORE_NAME / "costs-shard-1-of-2").exists()  # it parsed nothing
    weights = VerdictStore.default().costs()
    assert shard_of(preset_files("pytorch"), 1, 2, weights) != shard_of(preset_files("pytorch"), 1, 2)
