"""`--conformance`: the kinds' contracts against real headers, on the fixture tree (real libclang).

The pytorch preset's contract conforms to tests/fixtures/pytorch_headers; each test changes one real
declaration in a copy of that tree and expects the mismatch at the contract's line, with a note at
the real header's line.

The conforming run (and its rerun) and a plugin's mismatch run as `python -m flashast`; the other
checks through `cli.main` in process (`run_in_process`), which prints the same.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "pytorch_headers"
FLASH_H = Path("ATen/native/transformers/cuda/flash_attn/flash.h")
CONTRACT_FLASH_H = f"<contract>/{FLASH_H}"


def tree(tmp_path: Path, old: str = "", new: str = "", header: Path = FLASH_H) -> Path:
    """A copy of the fixture tree with `old` replaced by `new` in `header` (exactly once)."""
    copy = tmp_path / "headers"
    shutil.copytree(FIXTURE, copy)
    if old:
        text = (copy / header).read_text()
        assert text.count(old) == 1, old
        (copy / header).write_text(text.replace(old, new))
    return copy


Run = Callable[..., tuple[int, str, str]]


def conformance(headers: Path, run: Run) -> tuple[int, str]:
    code, stdout, stderr = run("--conformance", "--include-dir", headers)
    assert stdout == ""
    return code, stderr


def test_the_pytorch_contract_conforms_to_the_fixture_tree_and_a_rerun_reads_the_verdict(tmp_path: Path) -> None:
    code, stderr = conformance(tree(tmp_path), run_cli)
    assert code == 0, stderr
    assert "flashast: the contracts of pytorch conform to the real headers" in stderr
    code, stderr = conformance(tmp_path / "headers", run_cli)
    assert code == 0, stderr
    assert "unchanged since they last conformed" in stderr


@pytest.mark.parametrize(
    ("old", "new", "declaration", "real"),
    [
        ("template<typename T, int Headdim> void run_mha_fwd_(",
         "template<typename T, int Headdim, bool Is_causal> void run_mha_fwd_(",
         "function template pytorch_flash::run_mha_fwd_ differs", "<typename, int, bool>"),
        ("template<typename T, int Headdim> void run_mha_bwd_(Flash_bwd_params &params",
         "template<typename T, bool Headdim> void run_mha_bwd_(Flash_bwd_params &params",
         "function template pytorch_flash::run_mha_bwd_ differs", "<typename, bool>"),
        ("void run_mha_bwd_(Flash_bwd_params &params, cudaStream_t stream)",
         "void run_mha_bwd_(Flash_bwd_params &params, int stream)",
         "function template pytorch_flash::run_mha_bwd_ differs", "pytorch_flash::Flash_bwd_params &, int)"),
        ("template<typename T, int Headdim> void run_mha_bwd_(",
         "template<typename T, int Headdim> void run_mha_bwd_renamed(",
         "function template pytorch_flash::run_mha_bwd_ is not declared by the real headers", None),
    ],
)
def test_a_changed_real_declaration_is_reported_at_the_contract_with_a_note_at_the_header(
    tmp_path: Path, old: str, new: str, declaration: str, real: str | None, run_in_process: Run
) -> None:
    headers = tree(tmp_path, old, new)
    code, stderr = conformance(headers, run_in_process)
    assert code == 3, stderr
    errors = [line for line in stderr.splitlines() if ": error: " in line and not line.startswith("flashast:")]
    assert any(declaration in line for line in errors), stderr
    blamed = next(line for line in errors if declaration in line)
    assert re.match(rf"{re.escape(CONTRACT_FLASH_H)}:\d+:\d+: error: ", blamed), blamed
    if real is not None:
        note = re.search(rf"^    {re.escape(str(headers / FLASH_H))}:(\d+):\d+: note: the real declaration: (.*)$",
                         stderr, re.MULTILINE)
        assert note is not None, stderr
        assert real in note.group(2)
        changed_line = next(number for number, line in enumerate((headers / FLASH_H).read_text().splitlines(), 1)
                            if new.split("(")[0] in line)
        assert int(note.group(1)) == changed_line


def test_a_changed_alias_is_reported(tmp_path: Path, run_in_process: Run) -> None:
    headers = tree(tmp_path, "typedef CUstream_st *cudaStream_t;", "typedef void *cudaStream_t;",
                   Path("cuda_runtime_stub.h"))
    code, stderr = conformance(headers, run_in_process)
    assert code == 3, stderr
    assert re.search(rf"^{re.escape(CONTRACT_FLASH_H)}:\d+:\d+: error: alias cudaStream_t differs from the real"
                     r" headers: the contract says `alias cudaStream_t = CUstream_st \*`, the headers `alias"
                     r" cudaStream_t = void \*`", stderr, re.MULTILINE), stderr


def test_headers_that_do_not_parse_are_reported_as_such(tmp_path: Path, run_in_process: Run) -> None:
    headers = tree(tmp_path, "struct Flash_bwd_params : public Flash_fwd_params {",
                   "struct Flash_bwd_parameters : public Flash_fwd_params {")
    code, stderr = conformance(headers, run_in_process)
    assert code == 3
    assert "error: the real headers do not parse: unknown type name 'Flash_bwd_params'" in stderr


def test_editing_a_header_after_a_conforming_run_checks_again(tmp_path: Path, run_in_process: Run) -> None:
    headers = tree(tmp_path)
    assert conformance(headers, run_in_process)[0] == 0
    path = headers / FLASH_H
    path.write_text(path.read_text().replace("template<typename T, int Headdim> void run_mha_fwd_(",
                                             "template<int Headdim> void run_mha_fwd_("))
    code, stderr = conformance(headers, run_in_process)
    assert code == 3
    assert "run_mha_fwd_ differs" in stderr


def test_conformance_needs_real_headers(tmp_path: Path, run_in_process: Run) -> None:
    code, _, stderr = run_in_process("--conformance")
    assert code == 2
    assert "flashast: error: --conformance: compares contracts with real headers; add --include-dir DIR" in stderr


PLUGIN = """
from flashast import Contract, FunctionTemplate, Include, Kind, Preset, TranslationUnit, TypeParameter, ValueParameter
from flashast.presets import pytorch

STALE = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "Headdim"), ValueParameter("bool", "Is_causal")),
                         "void", "run_mha_fwd_", pytorch.FWD_PARAMETERS)


def register(registry):
    from flashast import Namespace
    contract = Contract({pytorch.FLASH_HEADER: (Namespace("pytorch_flash", (STALE,)),)})
    registry.add_preset(Preset("stale", kinds=(Kind("fwd", axes={"head_dim": (64,)}, build=lambda config: TranslationUnit(()),
                                                    file_name="f_{head_dim}.cu", contract=contract),)))
"""


def test_a_plugins_mismatch_names_the_line_that_built_its_contract(tmp_path: Path) -> None:
    plugin = tmp_path / "stale_plugin.py"
    plugin.write_text(PLUGIN)
    code, _, stderr = run_cli("--conformance", "--plugin", plugin, "--preset", "stale", "--include-dir", tree(tmp_path))
    assert code == 3, stderr
    assert "function template pytorch_flash::run_mha_fwd_ differs" in stderr
    line = next(number for number, text in enumerate(PLUGIN.splitlines(), 1) if "contract = Contract(" in text)
    assert f"(the contract is built at {plugin}:{line})" in stderr


NAMESPACE_PLUGIN = """
from flashast import Contract, FunctionTemplate, Include, Kind, MacroDefinition, Namespace, Preset, TranslationUnit
from flashast import TypeParameter

RUN = FunctionTemplate((TypeParameter("T"),), "void", "run", ())
CONTRACT = Contract({"ns.h": (MacroDefinition("FLASH_NAMESPACE", "flash"), Namespace("FLASH_NAMESPACE", (RUN,)))})


def register(registry):
    registry.add_preset(Preset("ns", kinds=(Kind("k", axes={"v": (1,)}, build=lambda config: TranslationUnit(()),
                                                 file_name="k_{v}.cu", contract=CONTRACT),)))
"""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("#define FLASH_NAMESPACE flash\nnamespace FLASH_NAMESPACE { template<typename T> void run(); }\n", None),
        ("#define FLASH_NAMESPACE flash2\nnamespace FLASH_NAMESPACE { template<typename T> void run(); }\n",
         "macro FLASH_NAMESPACE differs from the real headers: the contract says `macro FLASH_NAMESPACE = flash`,"
         " the headers `macro FLASH_NAMESPACE = flash2`"),
        ("#define FLASH_NAMESPACE flash\nnamespace other { template<typename T> void run(); }\n",
         "function template flash::run is not declared by the real headers"),
    ],
)
def test_macros_and_namespaces_are_compared_as_the_compiler_expands_them(
    tmp_path: Path, header: str, expected: str | None, run_in_process: Run
) -> None:
    plugin = tmp_path / "ns_plugin.py"
    plugin.write_text(NAMESPACE_PLUGIN)
    headers = tmp_path / "real"
    headers.mkdir()
    (headers / "ns.h").write_text(header)
    code, _, stderr = run_in_process("--conformance", "--plugin", plugin, "--preset", "ns", "--include-dir", headers)
    if expected is None:
        assert code == 0, stderr
    else:
        assert code == 3, stderr
        assert expected in stderr
