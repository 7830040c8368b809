"""The flash-attn-3 preset against the real `hopper/` sources of a flash-attention checkout (marker
`realheaders`).

No package on the registries carries flash-attention 3's C++ sources, so these tests need a checkout:
`$FLASHAST_FA3_SOURCE` names the folder holding `hopper/` (a clone of Dao-AILab/flash-attention; its
`csrc/cutlass` submodule is not needed: `scripts/verify_real_sources.py` fetches CUTLASS's headers
from the `nvidia-cutlass` wheel into `$FLASHAST_FA3_CACHE`, else `~/.cache/flashast-fa3`). Without it
they skip, saying so; anything else that goes wrong fails.

They run the script as a maintainer would (`--preset flash-attn-3`), then show why the real headers
matter: one real signature changed in a copy of `hopper/` (a template parameter added to
`run_mha_fwd_`, the kind of change a release makes) is caught, exit 3, at the generated file's own
line, and nothing is written; and the contracts conform to the real headers in one parse.

The unmarked test runs in the default suite: without a source the script says why, exit 2.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, snapshot

from flashast.axes import AxisValue
from flashast.registry import Registry

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "verify_real_sources.py"
sys.path.insert(0, str(SCRIPT.parent))
import verify_real_sources as script  # noqa: E402 - the script as a module: its subset (it runs nothing on import)

SCRIPT_TIMEOUT = 3600
DRIFTED_FILE = "flash_fwd_hdim128_bf16_split_softcap_sm80.cu"
REAL_PARAMETERS = "bool Has_softcap, bool PackGQA>\nvoid run_mha_fwd_("
DRIFTED_PARAMETERS = "bool Has_softcap, bool PackGQA, bool Is_local>\nvoid run_mha_fwd_("


def run_script(*arguments: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--preset", "flash-attn-3", *arguments], capture_output=True,
                          text=True, timeout=SCRIPT_TIMEOUT, env=environment, check=False)


@pytest.fixture(scope="module")
def source() -> Path:
    """The flash-attention checkout, or a skip saying how to give one."""
    given = os.environ.get("FLASHAST_FA3_SOURCE")
    if not given:
        pytest.skip("no flash-attention 3 source: set FLASHAST_FA3_SOURCE to a flash-attention checkout (the folder"
                    " holding hopper/); no package on the registries carries its C++ sources")
    return Path(given)


@pytest.fixture(scope="module")
def verification_arguments(source: Path) -> list[str]:
    """The flashast options the script prints for the checkout (CUTLASS fetched first if needed)."""
    printed = run_script("--source", str(source), "--print-args")
    assert printed.returncode == 0, printed.stdout + printed.stderr
    return shlex.split(printed.stdout)


@pytest.mark.realheaders
def test_script_verifies_the_representative_subset(source: Path, verification_arguments: list[str]) -> None:
    completed = run_script("--source", str(source))
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    subset = script.FLASH_ATTN_3.verified
    for name in subset:
        assert re.search(rf"^verify-flash-attn-3:\s+ok\s+{re.escape(name)}\s+(\d+\.\d s|\(verdict reused)", output,
                         re.MULTILINE), output
    assert f"all {len(subset)} files verified against the real headers" in output
    assert re.search(r"time: \d+ file\(s\) parsed, \d+\.\d s of parsing .*, total \d+\.\d s", output), output
    # The subset is representative: every value of the axes that tell kernels apart, and an aggregator.
    files = {generated.name: generated for generated in Registry().preset("flash-attn-3").generate()}
    chosen = [files[name] for name in subset]
    wanted: dict[str, set[AxisValue]] = {"sm": {80, 90}, "dtype": {"fp16", "bf16", "e4m3"}, "split": {True},
                                         "paged": {True}, "softcap": {True}, "packgqa": {True}}
    for axis, values in wanted.items():
        assert values <= {generated.axes.get(axis, None) for generated in chosen}, axis
    assert {generated.kind for generated in chosen} >= {"fwd", "bwd"}
    assert any(generated.axes.get("head_dim_v", generated.axes.head_dim) != generated.axes.head_dim
               for generated in chosen)
    aggregators = [generated for generated in chosen if generated.aggregator]
    assert aggregators and set(aggregators[0].included_files()) <= set(subset)


@pytest.mark.realheaders
def test_a_drifted_hopper_signature_is_caught_at_the_generated_line(
    verification_arguments: list[str], tmp_path: Path
) -> None:
    # The same file verifies against the unpatched headers (it is in the script's subset), so the
    # failure below is the patch's doing alone.
    assert DRIFTED_FILE in script.FLASH_ATTN_3.verified
    hopper = Path(verification_arguments[verification_arguments.index("--include-dir") + 1])
    drifted = tmp_path / "hopper"
    shutil.copytree(hopper, drifted, ignore=shutil.ignore_patterns("instantiations", "*.py", "flash_attn_3"))
    for header in ("flash.h", "flash_fwd_launch_template.h"):
        text = (drifted / header).read_text()
        assert text.count(REAL_PARAMETERS) == 1, f"{header} no longer declares run_mha_fwd_ as this test expects"
        (drifted / header).write_text(text.replace(REAL_PARAMETERS, DRIFTED_PARAMETERS))
    arguments = [str(drifted) if argument == str(hopper) else argument for argument in verification_arguments]

    preview = tmp_path / "preview"
    code, _, stderr = run_cli("-o", preview, "--preset", "flash-attn-3", "--only", DRIFTED_FILE, "--no-verify", "-q")
    assert code == 0, stderr
    lines = (preview / DRIFTED_FILE).read_text().splitlines()
    instantiations = [number for number, line in enumerate(lines, 1) if line.startswith("template void run_mha_fwd_<")]
    assert len(instantiations) == 2  # an sm80 file serves sm80 and sm86

    output = tmp_path / "kernels"
    code, _, stderr = run_cli("-o", output, "--preset", "flash-attn-3", "--only", DRIFTED_FILE, *arguments)
    assert code == 3, stderr
    reported = {int(line) for line in re.findall(rf"^{re.escape(DRIFTED_FILE)}:(\d+):\d+: error: ", stderr,
                                                 re.MULTILINE)}
    assert reported == set(instantiations), stderr
    assert "kind=fwd dtype=bf16 head_dim=128" in stderr
    assert snapshot(output) == {}


@pytest.mark.realheaders
def test_the_contracts_conform_to_the_hopper_headers(verification_arguments: list[str]) -> None:
    code, _, stderr = run_cli("--preset", "flash-attn-3", "--conformance", *verification_arguments)
    assert code == 0, stderr
    assert "the contracts of flash-attn-3 conform to the real headers" in stderr


# Clean files of a kind (by name, or an aggregator's selection, which brings its members) and the
# architectures its kind declares, each parsed on the device side (`--device-arch` without a value):
# checked against upstream main's hopper/ (0251105a) with CUTLASS 4.2 (about 90 CPU seconds and 1.4-2.4
# GB per file and architecture, both sides, one by one; less in batches).
SM80 = ("sm_80", "sm_86")
DEVICE_CLEAN_SELECTIONS = {
    "fwd sm80": (("flash_fwd_hdim64_fp16_sm80.cu",), SM80, "flash_fwd_hdim64_fp16_sm80.cu"),
    "bwd sm80": (("flash_bwd_hdim64_fp16_sm80.cu",), SM80, "flash_bwd_hdim64_fp16_sm80.cu"),
    "fwd sm90": (("flash_fwd_hdim64_fp16_sm90.cu",), ("sm_90a",), "flash_fwd_hdim64_fp16_sm90.cu"),
    "bwd sm90": (("flash_bwd_hdim64_fp16_sm90.cu",), ("sm_90a",), "flash_bwd_hdim64_fp16_sm90.cu"),
    # calls atomicAdd(float4 *, float4), which only CUDA's crt/sm_90_rt.h declares
    "bwd sm90 hdim256": (("flash_bwd_hdim256_fp16_sm90.cu",), ("sm_90a",), "flash_bwd_hdim256_fp16_sm90.cu"),
    "bwd aggregator sm90": (("kind=bwd,bwd_softcapall", "head_dim=64", "dtype=fp16", "sm=90"), ("sm_90a",),
                            "flash_bwd_hdim64_fp16_softcapall_sm90.cu"),
}


@pytest.mark.realheaders
@pytest.mark.parametrize("case", sorted(DEVICE_CLEAN_SELECTIONS))
def test_clean_files_pass_the_device_side(verification_arguments: list[str], tmp_path: Path, case: str) -> None:
    selection, architectures, shown = DEVICE_CLEAN_SELECTIONS[case]
    only = [argument for each in selection for argument in ("--only", each)]
    output = tmp_path / "kernels"
    code, _, stderr = run_cli("-o", output, "--preset", "flash-attn-3", *only, "--device-arch", "--timings",
                              *verification_arguments)
    assert code == 0, stderr
    assert len(re.findall(rf"^flashast: verified {re.escape(shown)} in", stderr, re.MULTILINE)) == 1, stderr
    for architecture in architectures:
        device_line = rf"^flashast: verified \(device, {re.escape(architecture)}\) {re.escape(shown)} in"
        assert len(re.findall(device_line, stderr, re.MULTILINE)) == 1, stderr


E4M3_PLUGIN = """
from flashast import Kind
from flashast.presets import flash_attn_3 as fa3


def register(registry):
    registry.add_kind("flash-attn-3", Kind(
        "fwd_e4m3_sm80", axes={"dtype": ("e4m3",), "head_dim": (64,), "head_dim_v": (64,), "split": (False,),
                               "paged": (False,), "softcap": (False,), "packgqa": (False,), "sm": (80,)},
        build=fa3.build_fwd, file_name="flash_fwd_hdim64_e4m3_sm80.cu", contract=fa3.CONTRACT,
        architectures=("sm_80",)))
    registry.add_kind("flash-attn-3", Kind(
        "bwd_e4m3", axes={"dtype": ("e4m3",), "head_dim": (64,), "softcap": (False,), "sm": (90,)},
        build=fa3.build_bwd, file_name="flash_bwd_hdim64_e4m3_sm90.cu", contract=fa3.CONTRACT,
        architectures=("sm_90a",)))
"""


@pytest.mark.realheaders
def test_e4m3_where_upstream_has_no_kernel_fails_as_nvcc_fails_it(verification_arguments: list[str],
                                                                   tmp_path: Path) -> None:
    """Upstream builds e4m3 only for sm90 forward kernels, and nvcc rejects the others: an sm80 forward
    instantiation passes the host side and fails cute's copy assertion on the device side; an sm90
    backward specialization fails GMMA's operand-major assertion already on the host side."""
    plugin = tmp_path / "e4m3_kinds.py"
    plugin.write_text(E4M3_PLUGIN)
    output = tmp_path / "kernels"
    code, _, stderr = run_cli("-o", output, "--preset", "flash-attn-3", "--plugin", plugin, "--only",
                              "kind=fwd_e4m3_sm80,bwd_e4m3", "--device-arch", "--timings", *verification_arguments)
    assert code == 3, stderr
    assert re.search(r"^flashast: verified flash_fwd_hdim64_e4m3_sm80\.cu in", stderr, re.MULTILINE), stderr
    assert re.search(r"^flash_fwd_hdim64_e4m3_sm80\.cu:\d+:\d+: error: static assertion failed .*"
                     r"TiledCopy uses too few vals for selected CopyAtom", stderr, re.MULTILINE), stderr
    assert re.search(r"^flash_bwd_hdim64_e4m3_sm90\.cu:\d+:\d+: error: static assertion failed .*"
                     r"must be GMMA::Major::K", stderr, re.MULTILINE), stderr
    assert "(1 on the host side, 1 on the device side for sm_80)" in stderr
    assert snapshot(output) == {}


def test_without_a_source_the_script_says_why_and_exits_2(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if name != "FLASHAST_FA3_SOURCE"}
    environment["FLASHAST_FA3_CACHE"] = str(tmp_path / "cache")
    completed = run_script(environment=environment)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "the hopper/ C++ sources are in no package on the registries" in completed.stdout
    assert "--source DIR" in completed.stdout and "$FLASHAST_FA3_SOURCE" in completed.stdout
    completed = run_script("--source", str(tmp_path), environment=environment)
    assert completed.returncode == 2
    assert f"{tmp_path}: no hopper/flash_fwd_launch_template.h" in completed.stdout
    assert not (tmp_path / "cache").exists()  # nothing fetched before the source is known
