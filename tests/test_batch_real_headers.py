"""Real-header and device-side batches: files sharing a prelude parsed as one translation unit.

A clean batch passes every file in it and reports a header's warnings once; a batch with anything
failing, or anything located in a generated line, is forgotten and its files are parsed one by one,
so every finding is what a parse of that file alone says. The fixture trees are those of
test_real_headers (host side) and test_device (a device-only static assertion).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_cli
from test_batching import assert_same_verdict, failing_files
from test_device import FIXTURE as DEVICE_FIXTURE
from test_device import plugin
from test_real_headers import FLASH_ATTN, copy_tree, edit

from flashast.generated import GeneratedFile
from flashast.registry import Registry
from flashast.verify import VerifyOptions
from flashast.verify.batching import batch_limit, plan_batches


@pytest.fixture(scope="module")
def pytorch_files() -> list[GeneratedFile]:
    return Registry().preset("pytorch").generate()


def test_a_clean_batch_passes_and_reports_a_headers_warning_once_naming_the_files_parsed_together(
    tmp_path: Path,
) -> None:
    tree = copy_tree(tmp_path)
    edit(tree / FLASH_ATTN / "flash.h", "namespace pytorch_flash {\n",
         "namespace pytorch_flash {\n\ninline int fixture_warning() { int unused_in_fixture; return 0; }\n")
    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", tree, "--only", "kind=fwd", "--only",
                              "head_dim=64,96", "--jobs", "1", "--header-warnings", "--timings",
                              env={"FLASHAST_NO_CACHE": "1"})
    assert code == 0, stderr
    written = sorted(path.name for path in (tmp_path / "out").glob("*.cu"))
    assert len(written) == 4, written
    assert stderr.count("unused variable 'unused_in_fixture'") == 1, stderr
    together = re.search(r"first seen verifying (.*) in one parse", stderr)
    assert together is not None, stderr
    assert sorted(together.group(1).split(", ")) == written
    assert sorted(re.findall(r"^flashast: verified (\S+) in", stderr, re.MULTILINE)) == written


def test_batched_and_alone_agree_on_real_headers_for_a_drift_a_warning_and_strict(
    tmp_path: Path, pytorch_files: list[GeneratedFile]
) -> None:
    """Three ways a batch is not clean: an error in some files, a warning only --strict fails on,
    both. Each time every file's verdict and findings are those of a parse of that file alone."""
    tree = copy_tree(tmp_path)
    chosen = [generated for generated in pytorch_files if "hdim64_" in generated.name or "hdim96_" in generated.name]
    options = VerifyOptions(include_dirs=(tree,))
    edit(tree / FLASH_ATTN / "flash.h", "namespace pytorch_flash {\n",
         "namespace pytorch_flash {\n\ninline int fixture_warning() { int unused_in_fixture; return 0; }\n")
    assert failing_files(assert_same_verdict(chosen, options)) == set()
    assert assert_same_verdict(chosen, VerifyOptions(include_dirs=(tree,), strict=True)).passed is False
    edit(tree / FLASH_ATTN / "flash.h", "template<typename T, int Headdim> void run_mha_bwd_(",
         "template<typename T, int Headdim, bool Is_causal> void run_mha_bwd_(")
    verdict = assert_same_verdict(chosen, options)
    assert failing_files(verdict) == {generated.name for generated in chosen if generated.kind == "bwd"}


DEVICE_ELEMENTS = '("short", "float", "char16_t", "int")'


def test_a_device_only_error_in_a_batch_is_that_files_alone_and_the_others_are_remembered(tmp_path: Path) -> None:
    """Four files of one prelude, two of them with 32-bit elements the device side rejects: both are
    reported at their own lines; the two clean ones pass, and a second run parses only the failures."""
    arguments = ("-o", tmp_path / "out", "--plugin", plugin(tmp_path, elements=DEVICE_ELEMENTS), "--preset", "device",
                 "--include-dir", DEVICE_FIXTURE, "--device-arch", "sm_80", "--jobs", "1", "--timings")
    cache = {"FLASHAST_CACHE_DIR": str(tmp_path / "cache")}
    code, _, stderr = run_cli(*arguments, env=cache)
    assert code == 3, stderr
    for failing in ("float", "int"):
        assert re.search(rf"^copy_{failing}\.cu:\d+:\d+: error: static assertion failed", stderr, re.MULTILINE), stderr
    assert "error(s) in 2 of 4 file(s)" in stderr, stderr
    assert not re.search(r"^copy_(short|char16_t)\.cu:", stderr, re.MULTILINE), stderr
    code, _, stderr = run_cli(*arguments, env=cache)
    assert code == 3, stderr
    parsed = re.findall(r"^flashast: (?:verified|failed) \(device, sm_80\) (\S+) in", stderr, re.MULTILINE)
    assert sorted(parsed) == ["copy_float.cu", "copy_int.cu"], stderr


def test_a_batch_holds_at_most_the_limit_cut_into_near_equal_parts(pytorch_files: list[GeneratedFile]) -> None:
    fwd = [generated for generated in pytorch_files if generated.kind == "fwd"]
    assert len(fwd) == 16
    run = {generated.name: generated for generated in pytorch_files}
    assert sorted(len(batch.files) for batch in plan_batches(fwd, run, most=6)) == [5, 5, 6]
    assert [len(batch.files) for batch in plan_batches(fwd, run)] == [16]
    assert [len(batch.files) for batch in plan_batches(fwd[:3], run, most=2)] == [2]  # one file is parsed alone
    # Every thread gets a batch; a side never holds more than its cap.
    assert (batch_limit(48, 2, device=False), batch_limit(4, 2, device=False), batch_limit(1, 8, device=False)) == (8, 2, 2)
    assert (batch_limit(48, 1, device=True), batch_limit(12, 4, device=True)) == (4, 3)

