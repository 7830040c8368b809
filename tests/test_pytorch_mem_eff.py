"""The `pytorch-mem-eff` preset: byte parity with the upstream manifest (headers beside `.cu` files),
contract verification of all 49 files, a drifted contract caught by clang at the generated line, the
kinds' files and skips, and a run through the CLI that writes the tree once."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import digest_files, read_golden

from flashast.classes import ClassTemplate, Member
from flashast.cli import main
from flashast.contract import Contract
from flashast.definitions import FunctionDeclaration, FunctionDefinition
from flashast.errors import ModelError, VerificationError
from flashast.generated import GeneratedFile
from flashast.nodes import TranslationUnit, Verbatim
from flashast.presets import pytorch_mem_eff
from flashast.registry import Registry
from flashast.verify import verify


@pytest.fixture(scope="module")
def generated() -> dict[str, GeneratedFile]:
    return {file.name: file for file in Registry().preset("pytorch-mem-eff").generate()}


def test_every_file_is_byte_identical_to_upstream(generated: dict[str, GeneratedFile]) -> None:
    digests = {name: hashlib.sha256(file.text.encode("utf-8")).hexdigest() for name, file in generated.items()}
    assert len(digests) == 49
    assert digests == read_golden("pytorch-mem-eff")


def test_files_are_definitions_without_verbatim(generated: dict[str, GeneratedFile]) -> None:
    units: list[TranslationUnit] = [file.unit for file in generated.values()]
    units += list(pytorch_mem_eff.CONTRACT.header_units().values())
    for unit in units:
        assert not any(isinstance(node, Verbatim) for node in unit.walk())
    kernels = [node for node in generated["cutlassB_f16_aligned_k96.cu"].unit.walk() if isinstance(node, FunctionDefinition)]
    assert [str(kernel.head.name) for kernel in kernels] == [
        "fmha_cutlassB_f16_aligned_128x64_k96_sm80"
    ]
    declared = [node for node in generated["cutlassB.h"].unit.walk() if isinstance(node, FunctionDeclaration)]
    assert len(declared) == len(pytorch_mem_eff.backward_kernels())


def test_kinds_make_what_upstream_makes_and_skip_the_rest_with_reasons() -> None:
    assert {kind.name: kind.count() for kind in pytorch_mem_eff.KINDS} == {"fwd": 5, "bwd": 42, "header": 2}
    assert len(pytorch_mem_eff.forward_kernels()) + len(pytorch_mem_eff.backward_kernels()) == 207
    skipped = {config.describe(): reason for config, reason in pytorch_mem_eff.KINDS[0].skipped()}
    assert skipped == {"dtype=bf16 alignment=notaligned": pytorch_mem_eff.BF16_UNALIGNED}
    reasons = Counter(reason for _, reason in pytorch_mem_eff.KINDS[1].skipped())
    # 10 bf16 unaligned files, and max_k 96 in every other configuration but f16/bf16 aligned without dropout.
    assert reasons == {pytorch_mem_eff.BF16_UNALIGNED: 10, pytorch_mem_eff.K96_ONLY: 8}


def test_every_file_verifies_against_the_contract(generated: dict[str, GeneratedFile]) -> None:
    report = verify(list(generated.values()))
    assert report.files == 49
    assert (report.errors, report.warnings) == ([], [])


def _without_member(kernel_class: ClassTemplate, name: str) -> ClassTemplate:
    def keep(member: Member) -> bool:
        return (member.head.name if isinstance(member, FunctionDeclaration) else member.name).text != name

    return replace(kernel_class, members=tuple(member for member in kernel_class.members if keep(member)))


@pytest.mark.parametrize(
    ("member", "file_name", "line", "spelled_there"),
    [
        # The entry point is used in kernel bodies, which the contract parse checks for sm80.
        ("attention_kernel", "cutlassF_f16_aligned.cu", 78, "attention_kernel(p);"),
        # The launch bounds are checked in every kernel, whatever its architecture; clang places an
        # error in a macro's arguments at the macro's name.
        ("kNumThreads", "cutlassF_f16_notaligned.cu", 11, "__launch_bounds__("),
    ],
)
def test_a_drifted_contract_fails_at_the_generated_line(
    generated: dict[str, GeneratedFile], member: str, file_name: str, line: int, spelled_there: str
) -> None:
    headers = {path.text: declarations for path, declarations in pytorch_mem_eff.CONTRACT.headers}
    drifted = _without_member(pytorch_mem_eff.ATTENTION_KERNEL, member)
    headers[pytorch_mem_eff.FORWARD_HEADER] = pytorch_mem_eff.contract_header(drifted)
    file = generated[file_name]
    assert spelled_there in file.text.splitlines()[line - 1]
    with pytest.raises(VerificationError) as raised:
        verify([replace(file, contract=Contract(headers))])
    assert f"{file_name}:{line}:" in raised.value.report
    assert member in raised.value.report


def test_the_contract_refuses_a_member_or_argument_it_does_not_declare() -> None:
    kernel_class = pytorch_mem_eff.ATTENTION_KERNEL
    arguments = ("float", "cutlass::arch::Sm80", True, 64, 64, 64)
    assert str(kernel_class.member("kNumThreads", *arguments).parts[-1]) == "kNumThreads"
    with pytest.raises(ModelError, match="declares no such member"):
        kernel_class.member("kNumThread", *arguments)
    with pytest.raises(ModelError, match="expects an int"):
        kernel_class.template_id("float", "cutlass::arch::Sm80", True, 64, True, 64)


def test_the_cli_writes_headers_beside_sources_once(tmp_path: Path) -> None:
    directory = tmp_path / "kernels"
    assert main(["-o", str(directory), "--preset", "pytorch-mem-eff", "-q"]) == 0
    assert digest_files(directory) == read_golden("pytorch-mem-eff")
    stamps = {path.name: path.stat().st_mtime_ns for path in directory.iterdir()}
    assert main(["-o", str(directory), "--preset", "pytorch-mem-eff", "--check", "-q"]) == 0
    assert main(["-o", str(directory), "--preset", "pytorch-mem-eff", "-q"]) == 0
    assert {path.name: path.stat().st_mtime_ns for path in directory.iterdir()} == stamps
