"""The `llama.cpp` preset: byte parity with upstream's manifest, no `Verbatim`, contract verification of
all 120 files, a drifted macro arity caught by clang at the invoking line, the generator's rules as
constraints, and the model's meaning of each macro invocation."""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import read_golden, run_cli

from flashast.contract import Contract
from flashast.errors import ModelError, VerificationError
from flashast.generated import GeneratedFile
from flashast.names import Identifier
from flashast.nodes import EnumeratorArg, IntArg, MacroInvocation, TranslationUnit, Verbatim
from flashast.presets import llama_cpp
from flashast.printer import render
from flashast.registry import Registry
from flashast.selection import parse_filter, select
from flashast.verify import VerifyOptions, verify
from flashast.verify.dispatch import check_dispatch
from flashast.verify.dispatch.provided import provided

EXPECTED_COUNTS = {"fattn_tile": 12, "fattn_vec": 49, "fattn_mma_f16": 21, "mmq": 22, "mmf": 16}


@pytest.fixture(scope="module")
def generated() -> list[GeneratedFile]:
    return Registry().preset("llama.cpp").generate()


def test_every_file_is_byte_identical_to_upstream(generated: list[GeneratedFile]) -> None:
    digests = {file.name: hashlib.sha256(file.text.encode("utf-8")).hexdigest() for file in generated}
    assert len(digests) == 120
    assert digests == read_golden("llama.cpp")


def test_no_verbatim_in_files_or_contract(generated: list[GeneratedFile]) -> None:
    units: list[TranslationUnit] = [file.unit for file in generated]
    units += list(llama_cpp.CONTRACT.header_units().values())
    for unit in units:
        assert not any(isinstance(node, Verbatim) for node in unit.walk())
    # Every file says what it instantiates through typed macro invocations.
    assert all(any(isinstance(node, MacroInvocation) for node in file.unit.walk()) for file in generated)


def test_every_file_verifies_against_the_contract(generated: list[GeneratedFile]) -> None:
    report = verify(generated)
    assert report.files == 120
    assert (report.errors, report.warnings) == ([], [])


def test_kinds_make_what_upstream_makes_and_skip_the_rest_with_reasons() -> None:
    assert {kind.name: kind.count() for kind in llama_cpp.KINDS} == EXPECTED_COUNTS
    tile_skips = dict((config.dkq, reason) for config, reason in llama_cpp.FATTN_TILE.skipped() if config.dv == 40)
    assert tile_skips[64] == "the tile kernel for DKQ 64 has DV 64"
    assert llama_cpp.FATTN_TILE.skip_reason(dkq=576, dv=512) is None
    assert llama_cpp.FATTN_TILE.skip_reason(dkq=576, dv=256) == "the tile kernel for DKQ 576 has DV 512"
    assert llama_cpp.FATTN_MMA_F16.skip_reason(ncols1=8, ncols2=16) is not None
    assert llama_cpp.FATTN_MMA_F16.skip_reason(ncols1=2, ncols2=32) is None
    assert llama_cpp.mma_case_skip_reason(320, 1, 8) == (
        "head size 320 is compiled only for ncols2 in (32,) (Mistral Small 4)"
    )
    assert llama_cpp.mma_case_skip_reason(128, 1, 16) is None
    assert llama_cpp.mma_case_skip_reason(128, 2, 16) is not None


def test_an_invocation_means_the_instantiations_its_macro_expands_to() -> None:
    (vec,) = llama_cpp.DECL_FATTN_VEC_CASE.invoke(64, "GGML_TYPE_Q4_0", "GGML_TYPE_BF16").expansion()
    assert vec.signature.template_arguments == (
        IntArg(64), EnumeratorArg(llama_cpp.GGML_TYPE, "GGML_TYPE_Q4_0"), EnumeratorArg(llama_cpp.GGML_TYPE, "GGML_TYPE_BF16")
    )
    (w4a4,) = llama_cpp.DECL_MMQ_CASE_W4A4.invoke("GGML_TYPE_NVFP4").expansion()
    assert w4a4.signature.template_arguments[1] == llama_cpp.GGML_PREC["GGML_PREC_Q4"]
    mmf = llama_cpp.DECL_MMF_CASE.invoke(3).expansion()
    assert [str(node.signature.parameters[0].type.name) for node in mmf] == ["float", "half2", "nv_bfloat162"] * 2
    assert {node.signature.template_arguments[2] for node in mmf} == {IntArg(3)}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: llama_cpp.DECL_FATTN_VEC_CASE.invoke(64, "GGML_TYPE_F16"), "arguments"),
        (lambda: llama_cpp.DECL_FATTN_VEC_CASE.invoke(64, "GGML_PREC_Q8", "GGML_TYPE_F16"), "template_arguments[type_K]"),
        (lambda: llama_cpp.DECL_FATTN_VEC_CASE.invoke(64, llama_cpp.GGML_PREC["GGML_PREC_Q8"], "GGML_TYPE_F16"),
         "template_arguments[type_K]"),
        (lambda: llama_cpp.DECL_MMF_CASE.invoke(True), "template_arguments[cols_per_block]"),
        (lambda: llama_cpp.DECL_FATTN_VEC_CASE.invoke(64, "GGML_TYPE_F16", "GGML_TYPE_F16", widths=(3, 0, 0, 0)), "widths"),
    ],
)
def test_invalid_invocations_are_refused_by_the_model(build: object, field: str) -> None:
    with pytest.raises(ModelError) as raised:
        build()  # type: ignore[operator]
    assert raised.value.field == field


DRIFT_PLUGIN = textwrap.dedent(
    """
    from dataclasses import replace

    from flashast import Contract, Preset
    from flashast.nodes import FunctionMacro, FunctionTemplate, MacroInstantiation, MacroParameter, ValueParameter
    from flashast.presets import llama_cpp

    # The header dropped type_V: its template and macro now take two parameters.
    TEMPLATE = FunctionTemplate(
        (ValueParameter("int", "D"), ValueParameter(llama_cpp.GGML_TYPE, "type_K")), "void",
        "ggml_cuda_flash_attn_ext_vec_case", (llama_cpp.CUDA_CONTEXT, llama_cpp.DESTINATION), defined=True,
    )
    MACRO = FunctionMacro(
        "DECL_FATTN_VEC_CASE", ("D", "type_K"), MacroInstantiation(TEMPLATE, (MacroParameter("D"), MacroParameter("type_K")))
    )
    HEADERS = {path.text: declarations for path, declarations in llama_cpp.CONTRACT.headers}
    HEADERS["../fattn-vec.cuh"] = llama_cpp._family_header(TEMPLATE, MACRO)


    def register(registry):
        kind = replace(llama_cpp.FATTN_VEC, contract=Contract(HEADERS))
        registry.add_preset(Preset("drifted", kinds=(kind,)))
    """
)


def test_a_drifted_macro_arity_fails_verification_at_the_invocation(tmp_path: Path) -> None:
    plugin = tmp_path / "drifted.py"
    plugin.write_text(DRIFT_PLUGIN)
    output = tmp_path / "out"
    code, _, stderr = run_cli("-o", output, "--plugin", plugin, "--preset", "drifted", "--only", "type_k=q8_0",
                              "--only", "type_v=f16")
    assert code == 3, stderr
    # Line 5 is the first `DECL_FATTN_VEC_CASE( 64, GGML_TYPE_Q8_0, GGML_TYPE_F16);`, column 42 its third argument.
    assert "fattn-vec-instance-q8_0-f16.cu:5:42: error: too many arguments provided to function-like macro invocation" in stderr
    assert "fattn-vec-instance-q8_0-f16.cu:7:42:" in stderr
    assert not output.exists() or not any(output.iterdir())


def test_an_enumerator_the_contract_no_longer_declares_fails_where_a_file_names_it(
    generated: list[GeneratedFile],
) -> None:
    """Arguments naming enumerators are checked against the contract's enumeration: ggml.h without
    GGML_TYPE_BF16 fails the vec files naming it, at each naming line, and passes the others."""
    ggml_type = replace(llama_cpp.GGML_TYPE, enumerators=tuple(
        enumerator for enumerator in llama_cpp.GGML_TYPE.enumerators if enumerator.name.text != "GGML_TYPE_BF16"))
    headers = {path.text: declarations for path, declarations in llama_cpp.CONTRACT.headers}
    headers["ggml.h"] = tuple(ggml_type if node == llama_cpp.GGML_TYPE else node for node in headers["ggml.h"])
    contract = Contract(headers)
    files = [replace(file, contract=contract) for file in generated if file.name.startswith("fattn-vec-instance-f16-")]
    with pytest.raises(VerificationError) as raised:
        verify(files)
    report = raised.value.report
    assert "fattn-vec-instance-f16-bf16.cu:5:" in report and "fattn-vec-instance-f16-bf16.cu:7:" in report
    assert "use of undeclared identifier 'GGML_TYPE_BF16'" in report
    assert "fattn-vec-instance-f16-q8_0.cu" not in report


def test_unlike_upstream_a_run_never_deletes_cu_files_it_did_not_write(tmp_path: Path) -> None:
    """Upstream's script removes every `*.cu` in its directory first; flashast leaves a foreign file alone."""
    foreign = tmp_path / "my-own-kernel.cu"
    foreign.write_text("// not flashast's\n")
    code, _, stderr = run_cli("-o", tmp_path, "--preset", "llama.cpp", "--only", "kind=mmf")
    assert code == 0, stderr
    assert foreign.read_text() == "// not flashast's\n"
    assert len(list(tmp_path.glob("mmf-instance-*.cu"))) == 16


def test_a_contract_header_may_climb_with_dot_dot_and_is_found_from_the_generated_file() -> None:
    (file,) = [file for file in Registry().preset("llama.cpp").generate() if file.name == "mmf-instance-ncols_1.cu"]
    assert '#include "../mmf.cuh"' in file.text
    headers = {path.text: declarations for path, declarations in file.contract.headers}
    del headers["../mmf.cuh"]
    with pytest.raises(VerificationError) as raised:
        verify([replace(file, contract=Contract(headers))])
    assert "'../mmf.cuh' file not found" in raised.value.report


def test_a_macro_invocation_repeated_in_another_file_is_a_duplicate_symbol(generated: list[GeneratedFile]) -> None:
    """Two files invoking `DECL_FATTN_VEC_CASE` with the same arguments both define its expansion:
    a duplicate symbol at link time, which no single-file parse sees."""
    original = next(generated_file for generated_file in generated if generated_file.name.startswith("fattn-vec"))
    copy = replace(original, name="fattn-vec-copy.cu")
    with pytest.raises(VerificationError) as raised:
        verify([original, copy])
    report = raised.value.report
    assert "3 error(s) in 1 of 2 file(s)" in str(raised.value)
    assert "fattn-vec-copy.cu:5:1: error: duplicate explicit instantiation of" in report
    assert f"(a duplicate symbol at link time: {original.name} defines it too)" in report


def test_a_dispatcher_sees_what_a_macro_invocation_instantiates_at_its_line(generated: list[GeneratedFile]) -> None:
    """What the dispatch check reads from the model: each invocation provides its expansion, found
    at the invocation's own line (an enumerator argument by its value, as libclang reads a call)."""
    original = next(file for file in generated if file.name == "fattn-vec-instance-bf16-bf16.cu")
    found = {str(specialization): str(provision.location())
             for specialization, provision in provided([original]).provisions.items()}
    bf16 = llama_cpp.GGML_TYPE.value_of(Identifier("GGML_TYPE_BF16"))
    assert found == {
        f"ggml_cuda_flash_attn_ext_vec_case<{head_dim}, {bf16}, {bf16}>": f"{original.name}:{line}:1"
        for head_dim, line in ((64, 5), (128, 6), (256, 7))
    }


def headers_on_disk(root: Path) -> Path:
    """The contract's headers written where upstream keeps them (`ggml-cuda/fattn-vec.cuh`, ...,
    the files in `ggml-cuda/template-instances/`); the include directory to pass."""
    instances = root / "ggml-cuda" / "template-instances"
    instances.mkdir(parents=True)
    for path, unit in llama_cpp.CONTRACT.header_units().items():
        target = (instances / path).resolve()
        target.write_text(render(unit))
    return instances


# As upstream's fattn-vec.cuh does, the dispatcher declares the instances `extern`: they are
# instantiated in the generated files, not here.
DISPATCHER = """#include "../fattn-vec.cuh"

extern DECL_FATTN_VEC_CASE( 64, GGML_TYPE_F16, GGML_TYPE_F16);
extern DECL_FATTN_VEC_CASE(128, GGML_TYPE_Q4_0, GGML_TYPE_Q4_0);

void launch(ggml_backend_cuda_context & ctx, ggml_tensor * dst, int head_dim) {
    if (head_dim == 64) {
        ggml_cuda_flash_attn_ext_vec_case<64, GGML_TYPE_F16, GGML_TYPE_F16>(ctx, dst);
    } else {
        ggml_cuda_flash_attn_ext_vec_case<128, GGML_TYPE_Q4_0, GGML_TYPE_Q4_0>(ctx, dst);
    }
}
"""


def test_the_dispatch_check_finds_a_call_whose_decl_line_is_left_out(tmp_path: Path) -> None:
    """A llama.cpp-shaped dispatcher read with libclang against what the `DECL_*` lines provide:
    everything selected, nothing is missing; leave out the q4_0 file and its call is an undefined
    symbol, whose provider is named at its `DECL_FATTN_VEC_CASE` line."""
    include = headers_on_disk(tmp_path)
    dispatcher = include / "launch.cpp"
    dispatcher.write_text(DISPATCHER)
    preset = Registry().preset("llama.cpp")
    every = preset.generate()
    options = VerifyOptions(include_dirs=(include,))
    assert not check_dispatch([dispatcher], every, every, options).missing
    chosen = select(every, preset, (), ["type_k=q4_0"])
    filters = [parse_filter("type_k=q4_0", "--exclude", preset)]
    report = check_dispatch([dispatcher], chosen, every, options, filters)
    (missing,) = report.missing
    q4_0 = llama_cpp.GGML_TYPE.value_of(Identifier("GGML_TYPE_Q4_0"))
    assert str(missing.specialization) == f"ggml_cuda_flash_attn_ext_vec_case<128, {q4_0}, {q4_0}>"
    assert missing.provider is not None
    assert str(missing.provider.location()) == "fattn-vec-instance-q4_0-q4_0.cu:6:1"
    assert missing.provider.file.text.splitlines()[5] == "DECL_FATTN_VEC_CASE(128, GGML_TYPE_Q4_0, GGML_TYPE_Q4_0);"
