"""The flash-attn-2 preset against the real flash-attention 2.8.3 sources (marker `realheaders`).

Deselected by default (pyproject's `addopts`); `.ci/run` runs it with `pytest -m realheaders -n 0`. It
runs `scripts/verify_flash_attn_2.py` (`verify_real_sources.py` under the name the docs use) exactly
as the README tells a maintainer to, which fetches the sources, torch's headers and clang's resource
headers from the registries into a cache folder (`$FLASHAST_FA2_CACHE`, else
`~/.cache/flashast-fa2`; a second run fetches nothing). It skips only when the fetch failed and the
package index does not answer: anything else that goes wrong fails.

Then it shows why the real headers matter: one real signature changed in a copy of `flash.h` (a
template parameter added to `run_mha_fwd_`, the kind of change a release makes) is caught, exit 3,
at the generated file's own line, with a note at the changed declaration, and nothing is written.

The few unmarked tests at the end run in the default suite: they need no registry (resource
directory discovery on a tree they build, `--timings` in contract mode).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import run_cli, snapshot

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "verify_flash_attn_2.py"
FETCH_TIMEOUT = 1800
DRIFTED_FILE = "flash_fwd_hdim128_fp16_sm80.cu"
REAL_DECLARATION = "template<typename T, int Headdim, bool Is_causal> void run_mha_fwd_("
DRIFTED_DECLARATION = "template<typename T, int Headdim, bool Is_causal, bool Is_split> void run_mha_fwd_("


def load_script() -> ModuleType:
    """The script as a module, for its documented subset and constants (it runs nothing on import;
    the alias re-exports `verify_real_sources`'s names)."""
    spec = importlib.util.spec_from_file_location("verify_flash_attn_2", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


SCRIPT_MODULE = load_script()


def run_script(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=FETCH_TIMEOUT, check=False
    )


def index_unreachable() -> str | None:
    """Why the package index cannot be reached, or None when it answers for flash-attn."""
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "pip", "index", "versions", "flash-attn"],
            capture_output=True, text=True, timeout=180, check=False,
        )
    except subprocess.TimeoutExpired:
        return "pip index versions flash-attn timed out"
    if probe.returncode == 0 and SCRIPT_MODULE.FLASH_ATTN_VERSION in probe.stdout:
        return None
    lines = [line for line in probe.stderr.splitlines() if line.strip() and "is ignored" not in line]
    return lines[-1] if lines else f"pip index exited {probe.returncode}"


@pytest.fixture(scope="module")
def verification_arguments() -> list[str]:
    """Fill the cache (skipping only when the registries are unreachable); the flashast options."""
    fetched = run_script("--fetch-only")
    if fetched.returncode == SCRIPT_MODULE.EXIT_FETCH:
        reason = index_unreachable()
        if reason is not None:
            pytest.skip(f"registries unreachable, cannot fetch flash-attn {SCRIPT_MODULE.FLASH_ATTN_VERSION}: {reason}")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    printed = run_script("--print-args")
    assert printed.returncode == 0, printed.stdout + printed.stderr
    return shlex.split(printed.stdout)


@pytest.mark.realheaders
def test_script_verifies_the_release_preset_with_no_drift(verification_arguments: list[str]) -> None:
    """The script's default is `flash-attn-2@v2.8.3`, the preset of the release it fetches: a file of
    each of its kinds verifies, and no drift is expected (upstream main's is, and the conformance
    test below shows it)."""
    assert SCRIPT_MODULE.FLASH_ATTN_2.preset == "flash-attn-2@v2.8.3" and SCRIPT_MODULE.FLASH_ATTN_2.drifts == ()
    completed = run_script()
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    kinds_verified = set()
    dtypes_verified = set()
    for name in SCRIPT_MODULE.FLASH_ATTN_2.verified:
        assert re.search(rf"^verify-flash-attn-2:\s+ok\s+{re.escape(name)}\s+\d+\.\d s$", output, re.MULTILINE), output
        kinds_verified.add(name.split("_hdim")[0])
        dtypes_verified.add("bf16" if "_bf16_" in name else "fp16")
    assert kinds_verified == {"flash_fwd", "flash_fwd_split", "flash_bwd"}
    assert dtypes_verified == {"fp16", "bf16"}
    assert "drift" not in output
    count = len(SCRIPT_MODULE.FLASH_ATTN_2.verified)
    assert f"verify-flash-attn-2: all {count} files verified against the real headers\n" in output, output
    assert re.search(r"time: \d+ file\(s\) parsed, \d+\.\d s of parsing .*, total \d+\.\d s", output), output
    # A second run reuses the cache: nothing is fetched again.
    again = run_script("--fetch-only")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fetching" not in again.stdout and "creating" not in again.stdout, again.stdout


@pytest.mark.realheaders
def test_a_drifted_real_signature_is_caught_at_the_generated_line(
    verification_arguments: list[str], tmp_path: Path
) -> None:
    # The same file verifies against the unpatched headers (it is in the script's subset), so the
    # failure below is the patch's doing alone.
    assert DRIFTED_FILE in SCRIPT_MODULE.FLASH_ATTN_2.verified
    real_source = Path(verification_arguments[verification_arguments.index("--include-dir") + 1])
    assert (real_source / "flash.h").is_file(), real_source
    drifted_source = tmp_path / "flash_attn_src"
    shutil.copytree(real_source, drifted_source)
    flash_h = drifted_source / "flash.h"
    lines = flash_h.read_text().splitlines(keepends=True)
    matching = [index for index, line in enumerate(lines) if line.startswith(REAL_DECLARATION)]
    assert len(matching) == 1, "flash.h no longer declares run_mha_fwd_ as this test expects"
    declaration_line = matching[0] + 1
    lines[matching[0]] = lines[matching[0]].replace(REAL_DECLARATION, DRIFTED_DECLARATION)
    flash_h.write_text("".join(lines))
    arguments = [str(drifted_source) if argument == str(real_source) else argument
                 for argument in verification_arguments]

    preview = tmp_path / "preview"
    code, _, stderr = run_cli("-o", preview, "--preset", "flash-attn-2", "--only", DRIFTED_FILE, "--no-verify", "-q")
    assert code == 0, stderr
    generated_lines = (preview / DRIFTED_FILE).read_text().splitlines()
    specialization_line = next(
        number for number, line in enumerate(generated_lines, 1) if "run_mha_fwd_<" in line
    )

    output = tmp_path / "kernels"
    code, _, stderr = run_cli("-o", output, "--preset", "flash-attn-2", "--only", DRIFTED_FILE, *arguments)
    assert code == 3, stderr
    assert re.search(
        rf"^{re.escape(DRIFTED_FILE)}:{specialization_line}:\d+: error: no function template matches function"
        r" template specialization 'run_mha_fwd_'",
        stderr, re.MULTILINE,
    ), stderr
    assert re.search(rf"{re.escape(str(flash_h))}:{declaration_line}:\d+: note: .*'Is_split'", stderr), stderr
    assert "kind=fwd dtype=fp16 head_dim=128 is_causal=false" in stderr
    assert snapshot(output) == {}


@pytest.mark.realheaders
def test_a_real_tree_without_resource_dir_fails_with_a_hint_naming_one(
    verification_arguments: list[str], tmp_path: Path
) -> None:
    position = verification_arguments.index("--resource-dir")
    resource_dir = verification_arguments[position + 1]
    arguments = [*verification_arguments[:position], *verification_arguments[position + 2:]]
    position = arguments.index("--cuda-path")
    arguments = [*arguments[:position], *arguments[position + 2:]]
    output = tmp_path / "kernels"
    code, _, stderr = run_cli("-o", output, "--preset", "flash-attn-2", "--only", DRIFTED_FILE, *arguments)
    assert code == 3, stderr
    assert "'stddef.h' file not found" in stderr
    hint = next(line for line in stderr.splitlines() if line.startswith("hint: no --resource-dir"))
    assert resource_dir in hint
    assert snapshot(output) == {}


def make_resource_dir(root: Path, relative: str, wrapper: bool = True) -> Path:
    """A clang resource directory under `root` (with the CUDA wrapper header unless told not to)."""
    directory = root / relative
    (directory / "include").mkdir(parents=True)
    if wrapper:
        (directory / "include" / "__clang_cuda_runtime_wrapper.h").write_text("// CUDA wrapper\n")
    return directory


def test_find_resource_dirs_keeps_compatible_ones_newest_first_and_each_once(tmp_path: Path) -> None:
    from flashast.verify import find_resource_dirs

    clang16 = make_resource_dir(tmp_path, "llvm-16/lib/clang/16")
    clang17 = make_resource_dir(tmp_path, "llvm-17/lib/clang/17")
    make_resource_dir(tmp_path, "llvm-19/lib/clang/19")  # too new for libclang 18
    make_resource_dir(tmp_path, "llvm-18/lib/clang/18", wrapper=False)  # no CUDA wrappers: useless
    # Debian's /usr/lib/clang/16/include is a link to llvm-16's: the same headers, listed once.
    (tmp_path / "clang" / "16").mkdir(parents=True)
    (tmp_path / "clang" / "16" / "include").symlink_to(clang16 / "include")
    assert find_resource_dirs((tmp_path,)) == [clang17, clang16]
    assert find_resource_dirs((tmp_path / "nothing-here",)) == []


def test_timings_prints_each_file_once_as_it_is_verified(tmp_path: Path) -> None:
    code, _, stderr = run_cli("-o", tmp_path / "kernels", "--preset", "flash-attn-2", "--only", "kind=fwd",
                              "--only", "head_dim=128", "--timings")
    assert code == 0, stderr
    timed = re.findall(r"^flashast: verified (\S+) in \d+\.\d s$", stderr, re.MULTILINE)
    assert sorted(timed) == sorted(path.name for path in (tmp_path / "kernels").glob("*.cu"))
    assert len(timed) == 4


@pytest.mark.realheaders
def test_conformance_finds_exactly_the_known_drift_in_one_parse(verification_arguments: list[str]) -> None:
    """The contracts of upstream main's flash-attn-2 against 2.8.3's headers: everything conforms but
    the one template that came after the release; the release preset's contracts conform entirely."""
    code, _, stderr = run_cli("--preset", "flash-attn-2", "--conformance", *verification_arguments)
    assert code == 3, stderr
    errors = [line for line in stderr.splitlines() if ": error: " in line and not line.startswith("flashast:")]
    assert len(errors) == 1, stderr
    assert re.match(r"<contract>/flash_fwd_launch_template\.h:\d+:\d+: error: function template"
                    r" flash::run_mha_fwd_splitkv_align is not declared by the real headers", errors[0]), errors
    code, _, stderr = run_cli("--preset", "flash-attn-2@v2.8.3", "--conformance", *verification_arguments)
    assert code == 0, stderr
    assert ": error: " not in stderr


@pytest.mark.realheaders
def test_a_rerun_over_unchanged_real_headers_parses_nothing(verification_arguments: list[str], tmp_path: Path) -> None:
    arguments: list[str | Path] = ["-o", tmp_path / "kernels", "--preset", "flash-attn-2", "--only", DRIFTED_FILE,
                                  "--timings", *verification_arguments]
    code, _, stderr = run_cli(*arguments)
    assert code == 0, stderr
    assert re.search(rf"^flashast: verified {re.escape(DRIFTED_FILE)} in", stderr, re.MULTILINE), stderr
    code, _, stderr = run_cli(*arguments)
    assert code == 0, stderr
    assert "flashast: 1 file(s) not parsed again" in stderr
    assert "flashast: verified" not in stderr


FLOAT_PLUGIN = '''
from flashast import Kind
from flashast.presets import flash_attn_2 as fa2


def build(config):
    specialization = fa2.RUN_MHA_FWD.specialize(
        "float", config.head_dim, config.is_causal,
        body=[fa2.run_mha_fwd_hdim(config.head_dim).call("float", config.is_causal)],
    )
    return fa2._file(fa2.FWD_LAUNCH_HEADER, specialization)


def register(registry):
    registry.add_kind("flash-attn-2", Kind(
        "fwd_float", axes={"head_dim": (128,), "is_causal": (False,)}, build=build,
        file_name="flash_fwd_hdim{head_dim}_float_sm80.cu", contract=fa2.CONTRACT, architectures=("sm_80",)))
'''


@pytest.mark.realheaders
def test_the_device_side_rejects_a_float_forward_kernel_the_host_side_passes(
    verification_arguments: list[str], tmp_path: Path
) -> None:
    """FA2's kernels support fp16 and bf16 only: for `float` the host side is silent, while cute's
    copy atoms assert on the device side (what nvcc reports after ~37 s), at the generated line."""
    plugin = tmp_path / "float_kind.py"
    plugin.write_text(FLOAT_PLUGIN)
    common: list[str | Path] = ["--preset", "flash-attn-2", "--plugin", plugin, *verification_arguments]
    code, _, stderr = run_cli("-o", tmp_path / "host", "--only", "kind=fwd_float", *common)
    assert code == 0, stderr
    output = tmp_path / "device"
    code, _, stderr = run_cli("-o", output, "--only", "kind=fwd_float", "--device-arch", *common)
    assert code == 3, stderr
    assert re.search(r"^flash_fwd_hdim128_float_sm80\.cu:\d+:\d+: error: static assertion failed .*"
                     r"CopyOperation is not valid for Dst of ValType", stderr, re.MULTILINE), stderr
    assert "(device side, --cuda-gpu-arch=sm_80)" in stderr
    assert snapshot(output) == {}
    code, _, stderr = run_cli("-o", tmp_path / "clean", "--only", DRIFTED_FILE, "--device-arch", "sm_80", *common)
    assert code == 0, stderr


# One clean file of each kind of the release the sources are (the cheapest head_dim); the release has
# no `fwd_split_align` kind, and main's `fwd_split` files declare it extern.
RELEASE_PRESET = "flash-attn-2@v2.8.3"
CLEAN_FILE_OF_EACH_KIND = {
    "fwd": "flash_fwd_hdim64_fp16_sm80.cu",
    "fwd_split": "flash_fwd_split_hdim64_fp16_sm80.cu",
    "bwd": "flash_bwd_hdim64_fp16_sm80.cu",
}


@pytest.mark.realheaders
@pytest.mark.parametrize("kind", sorted(CLEAN_FILE_OF_EACH_KIND))
def test_a_clean_file_of_each_kind_passes_the_device_side_for_the_architectures_it_declares(
    verification_arguments: list[str], tmp_path: Path, kind: str
) -> None:
    """What nvcc compiles, the device side passes: a bwd file was rejected for the 42 "missing
    'typename'" errors clang makes in `flash_bwd_kernel.h` and nvcc does not (the header's warning
    now, once). Each device-side parse takes about 90 CPU seconds and 2-3 GB."""
    name = CLEAN_FILE_OF_EACH_KIND[kind]
    output = tmp_path / "kernels"
    code, _, stderr = run_cli("-o", output, "--preset", RELEASE_PRESET, "--only", name, "--device-arch",
                              "--timings", *verification_arguments)
    assert code == 0, stderr
    assert len(re.findall(rf"^flashast: verified {re.escape(name)} in", stderr, re.MULTILINE)) == 1, stderr
    assert len(re.findall(rf"^flashast: verified \(device, sm_80\) {re.escape(name)} in", stderr, re.MULTILINE)) == 1
    assert (output / name).is_file()


VECTOR_ATOMICS_PLUGIN = """
from flashast import (Declarator, FunctionTemplate, Include, Kind, Namespace, Parameter, Preset, TranslationUnit, Type,
                      TypeParameter)

RUN_ACCUMULATE = FunctionTemplate((TypeParameter("T"),), "void", "run_accumulate",
                                  (Parameter(Type("T", declarator=Declarator.POINTER), "total"),
                                   Parameter(Type("T"), "value"), Parameter(Type("cudaStream_t"), "stream")))


def build(config):
    return TranslationUnit((Include("vector_atomics.h"),
                            Namespace("device_check", (RUN_ACCUMULATE.instantiate("float4"),))))


def register(registry):
    registry.add_preset(Preset("atomics", kinds=(Kind("accumulate", axes={"sm": (80, 90)}, build=build,
                                                      file_name="accumulate_sm{sm}.cu",
                                                      architectures=lambda config: ("sm_80",) if config.sm == 80
                                                      else ("sm_90a",)),)))
"""


@pytest.mark.realheaders
def test_the_device_side_declares_what_nvcc_declares_for_sm90_vector_atomics(
    verification_arguments: list[str], tmp_path: Path
) -> None:
    """CUDA declares `atomicAdd(float4 *, float4)` from sm_90 on, in a header nvcc's device compilation
    includes and clang's CUDA wrapper does not (flash-attention 3's sm90 hdim256 backward kernels call
    it): the file built for sm_90a passes the device side, as nvcc compiles it; the one built for
    sm_80 fails at its generated line, as nvcc rejects it. Real CUDA headers, no flash-attention tree."""
    options = list(verification_arguments)  # CUDA, clang's resource headers and the defines; no FA2 tree
    while "--include-dir" in options:
        del options[options.index("--include-dir"):options.index("--include-dir") + 2]
    plugin = tmp_path / "atomics.py"
    plugin.write_text(VECTOR_ATOMICS_PLUGIN)
    common: list[str | Path] = ["--plugin", plugin, "--preset", "atomics", "--include-dir",
                                Path(__file__).parent / "fixtures" / "device_headers", *options]
    code, _, stderr = run_cli("-o", tmp_path / "sm90", "--only", "sm=90", "--device-arch", "--timings", *common)
    assert code == 0, stderr
    assert re.search(r"^flashast: verified \(device, sm_90a\) accumulate_sm90\.cu in", stderr, re.MULTILINE), stderr
    code, _, stderr = run_cli("-o", tmp_path / "sm80", "--only", "sm=80", "--device-arch", *common)
    assert code == 3, stderr
    assert re.search(r"^accumulate_sm80\.cu:\d+:\d+: error: no matching function for call to 'atomicAdd'", stderr,
                     re.MULTILINE), stderr
    assert "(1 on the device side for sm_80)" in stderr


# Elements FA2 has no kernels for (nvcc rejects both files), and what the device side says of each.
UNSUPPORTED_ELEMENTS = {
    "double": ("double", r"^flash_fwd_hdim128_double_sm80\.cu:\d+:\d+: error: static assertion failed .*"
                         r"CopyOperation is not valid for Dst of ValType"),
    "e4m3": ("cutlass::float_e4m3_t",
             r"flash_fwd_kernel\.h:\d+:\d+: error: no matching function for call to 'make_tiled_copy_A'"),
}


@pytest.mark.realheaders
@pytest.mark.parametrize("label", sorted(UNSUPPORTED_ELEMENTS))
def test_an_element_without_kernels_passes_the_host_side_and_fails_the_device_side_in_one_run(
    verification_arguments: list[str], tmp_path: Path, label: str
) -> None:
    """Judging the missing `typename` as nvcc does loses no device-only rejection: `double`, like
    `float`, fails cute's copy-atom assertion on the device side; fp8 `cutlass::float_e4m3_t` (FA2 has
    no fp8 path) finds no tiled copy for an 8-bit element against the 16-bit MMA atom, an error inside
    `flash_fwd_kernel.h` (the header's: the file fails with it). The host side passes both."""
    element, expected = UNSUPPORTED_ELEMENTS[label]
    plugin = tmp_path / f"{label}_kind.py"
    plugin.write_text(FLOAT_PLUGIN.replace('"float"', f'"{element}"').replace("fwd_float", f"fwd_{label}")
                      .replace("_float_sm80", f"_{label}_sm80"))
    output = tmp_path / "kernels"
    code, _, stderr = run_cli("-o", output, "--preset", "flash-attn-2", "--plugin", plugin, "--only",
                              f"kind=fwd_{label}", "--device-arch", "--timings", *verification_arguments)
    assert code == 3, stderr
    assert re.search(rf"^flashast: verified flash_fwd_hdim128_{label}_sm80\.cu in", stderr, re.MULTILINE), stderr
    assert re.search(expected, stderr, re.MULTILINE), stderr
    assert "(1 on the device side for sm_80)" in stderr
    assert snapshot(output) == {}
