"""Real-header verification on a fixture tree written with CUDA syntax.

`tests/fixtures/pytorch_headers/` declares the PyTorch preset's interface the way the real tree does:
`flash.h` with the parameter structs and primary templates, the two launch templates under
`ATen/native/transformers/cuda/flash_attn/` with `__global__`/`__launch_bounds__`/`__device__` kernels
launched with `<<<...>>>`, and a small `cutlass/numeric_types.h`. It needs nothing but the libclang
wheel: no clang resource directory and no CUDA toolkit (`-nocudainc`; the tree's own
`cuda_runtime_stub.h` defines the CUDA keywords). Faults are made in a copy of the tree under
`tmp_path`, and every run is `python -m flashast` in a subprocess.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import run_cli, snapshot
from test_batching import assert_same_verdict, failing_files

from flashast.axes import Configuration
from flashast.errors import VerificationError
from flashast.generated import GeneratedFile
from flashast.kinds import Kind
from flashast.nodes import Include, TranslationUnit
from flashast.registry import Registry
from flashast.verify import VerifyOptions, clang_arguments, find_cuda_path, verify

FIXTURE = Path(__file__).parent / "fixtures" / "pytorch_headers"
FLASH_ATTN = Path("ATen/native/transformers/cuda/flash_attn")
FWD_FILE = "flash_fwd_hdim128_fp16_sm80.cu"
SPLIT_FILE = "flash_fwd_split_hdim96_bf16_sm80.cu"


@pytest.fixture(scope="module")
def pytorch_files() -> dict[str, GeneratedFile]:
    return {generated.name: generated for generated in Registry().preset("pytorch").generate()}


def copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "headers"
    shutil.copytree(FIXTURE, tree)
    return tree


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must occur exactly once) in a copied header."""
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


def line_of(text: str, marker: str) -> int:
    numbers = [number for number, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(numbers) == 1, (marker, text)
    return numbers[0]


def error_heads(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line and not line.startswith("flashast: ")]


def populated(tmp_path: Path) -> Path:
    directory = tmp_path / "out"
    directory.mkdir()
    (directory / FWD_FILE).write_text("// an older version\n")
    return directory


def test_the_fixture_tree_uses_cuda_syntax() -> None:
    """What the fixture must exercise: kernels, launch bounds, device functions, triple-chevron launches."""
    text = "\n".join(path.read_text() for path in sorted(FIXTURE.rglob("*.h")))
    for construct in ("__global__ void", "__launch_bounds__(", "__device__", "<<<grid, "):
        assert construct in text


def test_correct_files_verify_against_the_fixture_tree(
    tmp_path: Path, pytorch_files: dict[str, GeneratedFile]
) -> None:
    """Not on a terminal, each parsed file is one line as its verdict is known, then the summary."""
    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", FIXTURE)
    assert code == 0, stderr
    *progress, summary = stderr.splitlines()
    assert summary == "flashast: 48 written, 0 unchanged, 0 stale (pytorch)"
    shown = [re.fullmatch(r"flashast: verified (\d+)/48 (\S+)", line) for line in progress]
    assert all(shown), progress
    assert sorted(int(match.group(1)) for match in shown if match) == list(range(1, 49))
    assert sorted(match.group(2) for match in shown if match) == sorted(pytorch_files)


def test_the_files_verify_in_process_each_parsed_once(pytorch_files: dict[str, GeneratedFile]) -> None:
    files = list(pytorch_files.values())
    report = verify(files, VerifyOptions(include_dirs=(FIXTURE,)))
    assert (report.files, report.parsed, report.reused, report.errors, report.warnings) == (48, 48, 0, [], [])


def test_files_sharing_a_preamble_get_the_verdict_each_gets_alone(
    tmp_path: Path, pytorch_files: dict[str, GeneratedFile]
) -> None:
    """Files that include the same launch header are re-parsed over a shared preamble; with a drifted
    header, each file's findings are those of a run that verifies it alone."""
    tree = copy_tree(tmp_path)
    edit(tree / FLASH_ATTN / "flash.h", "template<typename T, int Headdim> void run_mha_fwd_(",
         "template<typename T, int Headdim, bool Is_causal> void run_mha_fwd_(")
    # Two files of each of the four groups (fwd, fwd_split, bwd by launch header and dtype).
    chosen = [pytorch_files[name] for name in sorted(pytorch_files) if "hdim64_" in name or "hdim128_" in name]
    assert len(chosen) == 12
    verdict = assert_same_verdict(chosen, VerifyOptions(include_dirs=(tree,)))
    assert failing_files(verdict) == {generated.name for generated in chosen if generated.kind == "fwd"}


def test_a_drifted_header_fails_at_the_generated_line(tmp_path: Path, pytorch_files: dict[str, GeneratedFile]) -> None:
    tree = copy_tree(tmp_path)
    flash_h = tree / FLASH_ATTN / "flash.h"
    edit(flash_h, "template<typename T, int Headdim> void run_mha_fwd_(",
         "template<typename T, int Headdim, bool Is_causal> void run_mha_fwd_(")
    directory = populated(tmp_path)
    before = snapshot(directory)

    code, _, stderr = run_cli("-o", directory, "--include-dir", tree)

    assert code == 3, stderr
    assert snapshot(directory) == before
    line = line_of(pytorch_files[FWD_FILE].text, "void run_mha_fwd_<cutlass::half_t, 128>(")
    block = stderr[stderr.index(f"{FWD_FILE}:{line}:6: error: "):]
    assert block.startswith(f"{FWD_FILE}:{line}:6: error: no function template matches function template"
                            " specialization 'run_mha_fwd_'")
    drift_line = line_of(flash_h.read_text(), "bool Is_causal> void run_mha_fwd_(")
    assert f"{flash_h}:{drift_line}:" in block.splitlines()[1]
    assert "candidate template ignored" in block.splitlines()[1]
    assert "from: preset pytorch, kind=fwd dtype=fp16 head_dim=128 sm=80" in block
    # Exactly the 16 fwd files fail; bwd and the split instantiations do not use run_mha_fwd_.
    blamed = {head.split(":")[0] for head in error_heads(stderr)}
    assert blamed == {name for name in pytorch_files if name.startswith("flash_fwd_hdim")}
    assert stderr.splitlines()[-1] == (
        "flashast: error: verification failed: 16 error(s) in 16 of 48 file(s); nothing was written"
    )


def test_a_header_only_error_is_reported_once(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    traits = tree / FLASH_ATTN / "kernel_traits.h"
    edit(traits, "namespace pytorch_flash {\n",
         "namespace pytorch_flash {\n\nstatic_assert(sizeof(int) == 3, \"fixture: a broken header\");\n")
    directory = populated(tmp_path)
    before = snapshot(directory)

    code, _, stderr = run_cli("-o", directory, "--include-dir", tree)

    assert code == 3, stderr
    assert snapshot(directory) == before
    assert stderr.count("fixture: a broken header") == 1, stderr
    line = line_of(traits.read_text(), "fixture: a broken header")
    assert re.search(rf"^{re.escape(str(traits))}:{line}:\d+: error: static assertion failed", stderr, re.MULTILINE)
    assert "(in a header: reported once; first seen verifying " in stderr
    assert error_heads(stderr) == [line for line in error_heads(stderr) if line.startswith(str(traits))]
    assert stderr.splitlines()[-1] == (
        "flashast: error: verification failed: 1 error(s) in 0 of 48 file(s), 1 problem(s) in headers;"
        " nothing was written"
    )


def test_an_error_an_explicit_instantiation_causes_is_blamed_on_its_line(
    tmp_path: Path, pytorch_files: dict[str, GeneratedFile]
) -> None:
    """clang names no line of ours for an error inside an explicitly instantiated template; it is
    still this file's fault, found by comparing with the includes parsed alone."""
    tree = copy_tree(tmp_path)
    edit(tree / FLASH_ATTN / "flash_fwd_launch_template.h",
         "void run_mha_fwd_splitkv_dispatch(Flash_fwd_params &params, cudaStream_t stream) {\n",
         "void run_mha_fwd_splitkv_dispatch(Flash_fwd_params &params, cudaStream_t stream) {\n"
         "    static_assert(Headdim != 96, \"fixture: no split kernel for head dim 96\");\n")

    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", tree)

    assert code == 3, stderr
    heads = error_heads(stderr)
    line = line_of(pytorch_files[SPLIT_FILE].text, "template void run_mha_fwd_splitkv_dispatch<")
    assert sorted(head.split(": error: ")[0] for head in heads) == [
        f"flash_fwd_split_hdim96_bf16_sm80.cu:{line}:15", f"flash_fwd_split_hdim96_fp16_sm80.cu:{line}:15"
    ]
    assert "fixture: no split kernel for head dim 96" in heads[0]
    assert "note: the error is here, in a header, instantiated for this line" in stderr
    assert "from: preset pytorch, kind=fwd_split dtype=bf16 head_dim=96 sm=80" in stderr


def test_an_error_deep_in_a_kernel_a_specialization_instantiates_is_blamed_on_the_call(
    tmp_path: Path, pytorch_files: dict[str, GeneratedFile]
) -> None:
    tree = copy_tree(tmp_path)
    edit(tree / FLASH_ATTN / "flash_bwd_launch_template.h",
         "    typename Kernel_traits::Element gradient{};\n",
         "    typename Kernel_traits::Element gradient{};\n"
         "    static_assert(Kernel_traits::kHeadDim != 224, \"fixture: no backward kernel for head dim 224\");\n")

    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", tree)

    assert code == 3, stderr
    name = "flash_bwd_hdim224_fp16_sm80.cu"
    line = line_of(pytorch_files[name].text, "run_mha_bwd_hdim224<cutlass::half_t>(params, stream);")
    # Two instantiations per file (causal and not), each an error of this file at the forwarding call:
    # printed once, with the count.
    assert [head.split(": error: ")[0] for head in error_heads(stderr)].count(f"{name}:{line}:5") == 1
    assert "(reported 2 times here, each time for another instantiation" in stderr
    assert "in instantiation of function template specialization 'pytorch_flash::flash_bwd_kernel<" in stderr


def test_an_aggregator_verifies_cleanly_against_the_fixture_tree() -> None:
    """An aggregator is parsed without a shared preamble; nothing about that may warn (clang finds
    /usr/local/cuda even with -nocudainc and warns about its version unless told not to)."""

    def build(config: Configuration) -> TranslationUnit:
        return TranslationUnit((Include(FWD_FILE), Include(SPLIT_FILE)))

    registry = Registry()
    registry.add_kind("pytorch", Kind("some", axes={"dtype": ("any",)}, build=build, file_name="flash_some_{dtype}.cu",
                                      aggregator=True))
    report = verify(registry.preset("pytorch").generate(), VerifyOptions(include_dirs=(FIXTURE,)))
    assert (report.files, report.errors, report.warnings) == (49, [], [])


def test_an_aggregators_failing_member_is_named_and_no_scratch_path_leaks(
    tmp_path: Path, pytorch_files: dict[str, GeneratedFile]
) -> None:
    """An aggregator includes other generated files; their errors carry the member's own name and
    line, plus the aggregator that included it, whether they show up in the aggregator's parse of
    its includes alone or in its full parse."""
    members = ("flash_fwd_hdim128_fp16_sm80.cu", "flash_fwd_hdim64_fp16_sm80.cu")

    def build(config: Configuration) -> TranslationUnit:
        return TranslationUnit(tuple(Include(member) for member in members))

    registry = Registry()
    registry.add_kind("pytorch", Kind("fwd_all", axes={"dtype": ("fp16",)}, build=build,
                                      file_name="flash_fwd_hdimall_{dtype}_sm80.cu", aggregator=True))
    tree = copy_tree(tmp_path)
    edit(tree / FLASH_ATTN / "flash.h", "template<typename T, int Headdim> void run_mha_fwd_(",
         "template<typename T, int Headdim, bool Is_causal> void run_mha_fwd_(")

    with pytest.raises(VerificationError) as raised:
        verify(registry.preset("pytorch").generate(), VerifyOptions(include_dirs=(tree,)))

    report = raised.value.report
    line = line_of(pytorch_files[FWD_FILE].text, "void run_mha_fwd_<cutlass::half_t, 128>(")
    blocks = [block for block in report.split("\n" + FWD_FILE) if "included from: flash_fwd_hdimall_fp16_sm80.cu" in block]
    assert len(blocks) == 1 and blocks[0].startswith(f":{line}:6: error: no function template matches"), report
    assert "flashast-verify" not in report
    # The 16 fwd files, and the aggregator once per member.
    assert str(raised.value) == "verification failed: 18 error(s) in 17 of 49 file(s); nothing was written"


def test_an_error_a_members_explicit_instantiation_causes_is_the_members_in_an_aggregator(
    tmp_path: Path, pytorch_files: dict[str, GeneratedFile]
) -> None:
    members = ("flash_fwd_split_hdim64_fp16_sm80.cu", "flash_fwd_split_hdim96_fp16_sm80.cu")

    def build(config: Configuration) -> TranslationUnit:
        return TranslationUnit(tuple(Include(member) for member in members))

    registry = Registry()
    registry.add_kind("pytorch", Kind("split_all", axes={"dtype": ("fp16",)}, build=build,
                                      file_name="flash_fwd_split_all_{dtype}.cu", aggregator=True))
    tree = copy_tree(tmp_path)
    edit(tree / FLASH_ATTN / "flash_fwd_launch_template.h",
         "void run_mha_fwd_splitkv_dispatch(Flash_fwd_params &params, cudaStream_t stream) {\n",
         "void run_mha_fwd_splitkv_dispatch(Flash_fwd_params &params, cudaStream_t stream) {\n"
         "    static_assert(Headdim != 96, \"fixture: no split kernel for head dim 96\");\n")

    with pytest.raises(VerificationError) as raised:
        verify(registry.preset("pytorch").generate(), VerifyOptions(include_dirs=(tree,)))

    report = raised.value.report
    line = line_of(pytorch_files[members[1]].text, "template void run_mha_fwd_splitkv_dispatch<")
    blocks = report.split("\n")
    heads = [number for number, text in enumerate(blocks) if text.startswith(f"{members[1]}:{line}:15: error: ")]
    assert len(heads) == 2, report  # the member's own parse, and the aggregator's
    assert any("    included from: flash_fwd_split_all_fp16.cu" in text for text in blocks[heads[0]:heads[1] + 6])
    # bf16 and fp16 hdim96 files, and the aggregator; nothing is a header problem.
    assert str(raised.value) == "verification failed: 3 error(s) in 3 of 49 file(s); nothing was written"


def test_the_launch_syntax_is_really_parsed(tmp_path: Path) -> None:
    """Without the runtime function a `<<<...>>>` launch lowers to, every launch is an error."""
    tree = copy_tree(tmp_path)
    edit(tree / "cuda_runtime_stub.h", "extern \"C\" unsigned __cudaPushCallConfiguration(",
         "extern \"C\" unsigned renamed_push_call_configuration(")
    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", tree)
    assert code == 3
    assert "__cudaPushCallConfiguration" in stderr


def test_a_header_warning_is_counted_listed_once_on_request_and_fails_only_with_strict(
    tmp_path: Path, pytorch_files: dict[str, GeneratedFile]
) -> None:
    """A warning inside a header is the header's, not a generated file's: counted in one line, shown
    once with --header-warnings, an error with --strict. (No store: each run parses.)"""
    tree = copy_tree(tmp_path)
    flash_h = tree / FLASH_ATTN / "flash.h"
    edit(flash_h, "namespace pytorch_flash {\n",
         "namespace pytorch_flash {\n\ninline int fixture_warning() { int unused_in_fixture; return 0; }\n")
    uncached = {"FLASHAST_NO_CACHE": "1"}
    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", tree, env=uncached)
    assert code == 0, stderr
    assert "unused_in_fixture" not in stderr
    assert ("flashast: 1 warning(s) inside headers, none in generated files (--header-warnings lists them)"
            in stderr.splitlines())

    code, _, stderr = run_cli("-o", tmp_path / "listed", "--include-dir", tree, "--header-warnings", env=uncached)
    assert code == 0, stderr
    assert stderr.count("unused variable 'unused_in_fixture'") == 1, stderr
    assert re.search(rf"^{re.escape(str(flash_h))}:\d+:\d+: warning: unused variable", stderr, re.MULTILINE)
    assert "--strict makes header warnings fail" in stderr

    with pytest.raises(VerificationError) as raised:
        verify(list(pytorch_files.values()), VerifyOptions(include_dirs=(tree,), strict=True))
    assert raised.value.report.count("unused variable 'unused_in_fixture'") == 1
    assert re.match(rf"{re.escape(str(flash_h))}:\d+:\d+: error: unused variable", raised.value.report)


def test_an_include_dir_without_the_headers_fails_at_each_include_line(
    tmp_path: Path, pytorch_files: dict[str, GeneratedFile]
) -> None:
    (tmp_path / "empty").mkdir()
    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", tmp_path / "empty")
    assert code == 3
    heads = error_heads(stderr)
    assert len(heads) == 48
    line = line_of(pytorch_files[FWD_FILE].text, "#include <")
    assert f"{FWD_FILE}:{line}:10: error: 'ATen/native/transformers/cuda/flash_attn/flash_fwd_launch_template.h'" \
        " file not found" in heads


def test_defines_reach_the_parse(tmp_path: Path, pytorch_files: dict[str, GeneratedFile]) -> None:
    """`--define` (through the CLI) and a `-D` clang argument both reach the real headers."""
    tree = copy_tree(tmp_path)
    edit(tree / FLASH_ATTN / "flash.h", "namespace pytorch_flash {\n",
         "#ifndef FIXTURE_CONFIGURED\n#error \"fixture: build with -DFIXTURE_CONFIGURED\"\n#endif\n\n"
         "namespace pytorch_flash {\n")
    files = list(pytorch_files.values())
    with pytest.raises(VerificationError) as raised:
        verify(files, VerifyOptions(include_dirs=(tree,)))
    assert raised.value.report.count("fixture: build with -DFIXTURE_CONFIGURED") == 1
    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", tree, "--define", "FIXTURE_CONFIGURED=1")
    assert code == 0, stderr
    report = verify(files, VerifyOptions(include_dirs=(tree,), clang_args=("-DFIXTURE_CONFIGURED",)))
    assert (report.parsed, report.errors) == (48, [])


def test_cuda_path_needs_a_resource_dir_and_directories_must_exist(tmp_path: Path) -> None:
    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", FIXTURE, "--cuda-path", tmp_path)
    assert (code, stderr.splitlines()) == (
        2, ["flashast: error: --cuda-path: CUDA's headers need clang's resource headers; add --resource-dir DIR"]
    )
    code, _, stderr = run_cli("-o", tmp_path / "out", "--include-dir", tmp_path / "missing")
    assert (code, stderr.splitlines()) == (2, [f"flashast: error: --include-dir {tmp_path / 'missing'}: not a directory"])
    assert not (tmp_path / "out").exists()


def test_the_cuda_path_comes_from_the_environment_then_the_default(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    assert find_cuda_path({"CUDA_PATH": str(first), "CUDA_HOME": str(second)}) == first
    assert find_cuda_path({"CUDA_PATH": str(tmp_path / "absent"), "CUDA_HOME": str(second)}) == second
    default = Path("/usr/local/cuda")
    assert find_cuda_path({}) == (default if default.is_dir() else None)


def test_cuda_headers_are_used_only_with_a_resource_dir(tmp_path: Path) -> None:
    """The wheel has no clang CUDA wrapper headers: without a resource dir, parse with -nocudainc."""
    without = clang_arguments(VerifyOptions(include_dirs=(FIXTURE,), cuda_path=tmp_path))
    assert "-nocudainc" in without
    assert not any(argument.startswith("--cuda-path") for argument in without)
    with_resources = clang_arguments(VerifyOptions(include_dirs=(FIXTURE,), cuda_path=tmp_path, resource_dir=tmp_path))
    assert f"--cuda-path={tmp_path}" in with_resources
    assert "-nocudainc" not in with_resources
    assert with_resources[with_resources.index("-resource-dir") + 1] == str(tmp_path)


def test_verify_raises_with_the_report_in_process(tmp_path: Path, pytorch_files: dict[str, GeneratedFile]) -> None:
    tree = copy_tree(tmp_path)
    edit(tree / FLASH_ATTN / "flash.h", "template<typename T, int Headdim> void run_mha_bwd_(",
         "template<typename T, int Headdim, int Arch> void run_mha_bwd_(")
    with pytest.raises(VerificationError) as raised:
        verify([pytorch_files["flash_bwd_hdim64_bf16_sm80.cu"]], VerifyOptions(include_dirs=(tree,)))
    assert raised.value.report.startswith("flash_bwd_hdim64_bf16_sm80.cu:")
    assert raised.value.exit_code == 3
