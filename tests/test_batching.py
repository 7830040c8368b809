"""Batched verification: a clean shared parse stands for per-file parses only when it must give the
same verdict, and any problem is reported exactly as a per-file parse reports it.

The per-file verdict is `verify` of each file on its own (an aggregator with its members, whose own
findings are left out), one run per file: a run of one plain file has nothing to batch it with.
Everything here is real libclang.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import cli_environment

from flashast import (
    BlankLine,
    ClassDeclaration,
    Contract,
    Declaration,
    FunctionTemplate,
    IfDefined,
    Include,
    Kind,
    LineComment,
    Namespace,
    PragmaOnce,
    Preset,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
    Verbatim,
    VerificationError,
)
from flashast.generated import GeneratedFile
from flashast.printer import render
from flashast.registry import BUILTIN_PRESETS, BUILTIN_REVISIONS, Registry
from flashast.verify import CONTRACT_MODE, VerifyOptions, verify
from flashast.verify.batching import plan_batches
from flashast.verify.checks import find_clashes
from flashast.verify.preamble import INCLUDES_ONLY_BODY, includes_alone_text, prelude

KERNEL = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "N")), "void", "kernel", (), defined=True)
HELPER = FunctionTemplate((ValueParameter("int", "N"),), "void", "helper", ())
LAUNCH = FunctionTemplate((ValueParameter("int", "N"),), "void", "launch", ())
CONTRACT = Contract({"kernel.h": (Namespace("ns", (ClassDeclaration("half"), KERNEL, HELPER, LAUNCH)),)})
# With `#pragma once`, a parse of two files together (how a duplicate is located) sees the header once.
GUARDED_CONTRACT = Contract({"kernel.h": (PragmaOnce(), Namespace("ns", (ClassDeclaration("half"), KERNEL)))})
PRELUDE = (LineComment("generated"), Include("kernel.h"))


# Verdicts --------------------------------------------------------------------------------------------

_BLOCK_HEAD = re.compile(r"(?:<command line>|\S+): (error|warning): ")
_HEADER_REMARK = "\n    (in a header: reported once; "
_CLASH_MARK = "(a duplicate symbol at link time"


@dataclass(frozen=True)
class Verdict:
    """What a verification said, in the terms both paths must agree on.

    `findings`: each generated file's own diagnostics, rendered, in the order of the files (errors
    before warnings, as a report prints them); `header_problems`: the first line of each problem a
    header has (reported once per run, with a remark naming whichever parse saw it first).
    Duplicates between files are left out: the model finds them and a parse of the two files
    locates them, the same code whether or not files were batched; they still fail the run.
    """

    passed: bool
    findings: tuple[str, ...]
    header_problems: frozenset[str]
    remarks: frozenset[str] = frozenset()  # the report's own lines (a hint)

    def text(self) -> str:
        return "\n".join([f"passed={self.passed}", *self.findings, *sorted(self.header_problems), *sorted(self.remarks)])


def blocks(text: str) -> list[str]:
    """A report's text split into rendered diagnostics (a head line, then indented lines); a line of
    the report's own (a hint) is a block of its own."""
    found: list[str] = []
    for line in text.splitlines():
        if line.startswith("    ") and found and _BLOCK_HEAD.match(found[-1]):
            found[-1] += "\n" + line
        else:
            found.append(line)
    return found


def is_error(block: str) -> bool:
    match = _BLOCK_HEAD.match(block)
    return match is not None and match.group(1) == "error"


def outcome(files: Sequence[GeneratedFile], options: VerifyOptions = CONTRACT_MODE) -> tuple[bool, str]:
    """(passed, report text): the `VerificationError`'s report with every warning shown (`detailed`),
    or the returned report's text."""
    try:
        report = verify(files, options)
    except VerificationError as error:
        return False, getattr(error, "detailed", error.report)
    return True, report.text()


def batched_verdict(files: Sequence[GeneratedFile], options: VerifyOptions = CONTRACT_MODE) -> Verdict:
    """What `verify` says of all the files in one run (batching as it plans)."""
    passed, text = outcome(files, options)
    diagnostics = [block for block in blocks(text) if _BLOCK_HEAD.match(block)]
    findings = [block for block in diagnostics if _HEADER_REMARK not in block and _CLASH_MARK not in block]
    headers = frozenset(block.splitlines()[0] for block in diagnostics if _HEADER_REMARK in block)
    remarks = frozenset(block for block in blocks(text) if not _BLOCK_HEAD.match(block))
    return Verdict(passed, tuple(findings), headers, remarks)


def per_file_verdict(files: Sequence[GeneratedFile], options: VerifyOptions = CONTRACT_MODE) -> Verdict:
    """What verification says when every file is parsed on its own: `verify` of each file alone
    (an aggregator with its members), keeping that file's own findings and every header problem."""
    run = {generated.name: generated for generated in files}
    passed = not find_clashes(files)
    errors: list[str] = []
    warnings: list[str] = []
    headers: set[str] = set()
    remarks: set[str] = set()
    for generated in files:
        members = [run[name] for name in generated.included_files()]
        origin = f"\n    from: preset {generated.preset}, {generated.describe()}"
        for block in blocks(outcome([generated, *members], options)[1]):
            if not _BLOCK_HEAD.match(block):
                remarks.add(block)
                continue
            if _HEADER_REMARK in block:
                headers.add(block.splitlines()[0])
            elif origin in block and _CLASH_MARK not in block:
                (errors if is_error(block) else warnings).append(block)
            else:
                continue
            passed = passed and not is_error(block)
    return Verdict(passed, (*errors, *warnings), frozenset(headers), frozenset(remarks))


def assert_same_verdict(files: Sequence[GeneratedFile], options: VerifyOptions = CONTRACT_MODE) -> Verdict:
    """Batched and per-file verification agree; returns the verdict."""
    batched, alone = batched_verdict(files, options), per_file_verdict(files, options)
    assert batched == alone, (
        ("FALSE PASS: batched verification passes, per-file verification fails\n"
         if batched.passed and not alone.passed else "batched and per-file verification differ\n")
        + f"batches: {batched_names(files)}\n--- batched:\n{batched.text()}\n--- per file:\n{alone.text()}"
    )
    return batched


def failing_files(verdict: Verdict) -> set[str]:
    return {block.split(":")[0] for block in verdict.findings if is_error(block)}


# Files -------------------------------------------------------------------------------------------------

Body = Callable[[], Sequence[Declaration]]


def make_files(builders: Sequence[Body], contract: Contract = CONTRACT,
               after: Callable[[int], Sequence[Declaration]] = lambda index: ()) -> list[GeneratedFile]:
    """One file per builder (each returns the namespace body), in order, all with one prelude;
    `after(index)`: top-level declarations after the namespace."""

    def build(config: object) -> TranslationUnit:
        index = config.index  # type: ignore[attr-defined]
        return TranslationUnit((*PRELUDE, Namespace("ns", tuple(builders[index]())), *after(index)))

    kind = Kind("k", axes={"index": tuple(range(len(builders)))}, build=build, file_name="f_{index}.cu",
                contract=contract)
    return Preset("batching", kinds=(kind,)).generate()


def batched_names(files: Sequence[GeneratedFile]) -> list[set[str]]:
    run = {generated.name: generated for generated in files}
    return [{generated.name for generated in batch.files} for batch in plan_batches(files, run)]


def instantiations(count: int) -> list[Body]:
    return [lambda index=index: [KERNEL.instantiate("half", index)] for index in range(count)]


# The built-in presets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pytorch", "flash-attn-2", "flash-attn-3"])
def test_every_file_of_a_built_in_preset_is_batched(name: str) -> None:
    """Every built-in file is batchable, flash-attn-3's 110 aggregators included (planning only:
    the presets' verification is test_presets_flash_attn's and test_verify's)."""
    files = Registry().preset(name).generate()
    assert set().union(*batched_names(files)) == {generated.name for generated in files}


# Faults in a batch are reported exactly as per-file parses report them -----------------------------

FAULTS: dict[str, Callable[[int], list[Declaration]]] = {
    "undeclared template": lambda index: [FunctionTemplate((ValueParameter("int", "N"),), "void", "other",
                                                           ()).instantiate(index)],
    "undeclared type": lambda index: [KERNEL.instantiate("float4", index)],
    "same definition as another file": lambda index: [KERNEL.instantiate("half", (index + 1) % 8)],
    "instantiation after specialization": lambda index: [KERNEL.specialize("half", 900 + index),
                                                          KERNEL.instantiate("half", 900 + index)],
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("where", [0, 3, 7])
def test_a_fault_in_a_batch_is_reported_as_a_per_file_parse_reports_it(fault: str, where: int) -> None:
    builders = instantiations(8)
    builders[where] = lambda: FAULTS[fault](where)
    files = make_files(builders)
    if fault != "instantiation after specialization":  # that file alone specializes what it uses
        assert {f"f_{where}.cu"} <= set().union(*batched_names(files)), "the faulty file is planned into a batch"
    verdict = assert_same_verdict(files)
    assert not verdict.passed
    if fault != "same definition as another file":  # a duplicate is located by the pair's parse
        assert failing_files(verdict) == {f"f_{where}.cu"}


def test_clean_files_pass_in_one_batch() -> None:
    files = make_files(instantiations(50))
    assert batched_names(files) == [{generated.name for generated in files}]
    report = verify(files)
    assert (report.errors, report.warnings, report.parsed) == ([], [], 50)
    assert per_file_verdict(files) == Verdict(True, (), frozenset())


def test_a_batch_reports_nothing_itself() -> None:
    """Two files with the same instantiation are batched; their shared parse fails ("duplicate
    explicit instantiation"), yet each is clean alone: the only finding is the duplicate, located by
    a parse of the two files, once."""
    files = make_files([lambda: [KERNEL.instantiate("half", 0)], lambda: [KERNEL.instantiate("half", 0)]],
                       GUARDED_CONTRACT)
    assert batched_names(files) == [{"f_0.cu", "f_1.cu"}]
    passed, text = outcome(files)
    assert not passed
    assert [block.splitlines()[:3] for block in blocks(text)] == [[
        "f_1.cu:4:15: error: duplicate explicit instantiation of 'kernel<ns::half, 0>'",
        "    f_0.cu:4:15: note: previous explicit instantiation is here",
        "    (a duplicate symbol at link time: f_0.cu defines it too)",
    ]]


# What would make a clean shared parse lie is never batched -----------------------------------------


def test_a_name_declared_in_one_file_does_not_let_another_pass() -> None:
    """f_0 declares `float4` and uses it; f_1 uses it without declaring it and must fail alone."""
    files = make_files([
        lambda: [ClassDeclaration("float4"), KERNEL.instantiate("float4", 0)],
        lambda: [KERNEL.instantiate("float4", 1)],
        lambda: [KERNEL.instantiate("half", 2)],
    ])
    assert all("f_0.cu" not in names for names in batched_names(files))
    assert failing_files(assert_same_verdict(files)) == {"f_1.cu"}


# The primary template's body rejects N == 1; a specialization for 1 in one file would make another
# file's call to helper<1> pass, though alone it instantiates the primary and fails.
STRICT_HELPER = Verbatim("template <int N> void helper() { static_assert(N != 1, \"helper<1> needs a specialization\"); }")
VERBATIM_CONTRACT = Contract({"kernel.h": (Namespace("ns", (ClassDeclaration("half"), KERNEL, STRICT_HELPER,
                                                             LAUNCH)),)})


def specializing_files(contract: Contract) -> list[GeneratedFile]:
    return make_files([
        lambda: [HELPER.specialize(1)],
        lambda: [LAUNCH.specialize(1, body=[HELPER.call(1)])],
        lambda: [KERNEL.instantiate("half", 2)],
    ], contract)


def test_a_specialization_another_file_uses_is_never_in_its_batch() -> None:
    for contract in (CONTRACT, VERBATIM_CONTRACT):
        assert not any({"f_0.cu", "f_1.cu"} <= names for names in batched_names(specializing_files(contract)))


def test_a_call_that_fails_alone_fails_though_another_file_specializes_it() -> None:
    verdict = assert_same_verdict(specializing_files(VERBATIM_CONTRACT))
    assert "helper<1> needs a specialization" in verdict.text()
    assert failing_files(verdict) == {"f_1.cu"}


def test_text_that_does_not_close_what_it_opens_is_parsed_alone() -> None:
    """A `Verbatim` brace too many in one file and too few in the next: together they balance, alone
    each fails; neither may be batched, and the others still are."""
    builders = instantiations(4)
    builders[1] = lambda: [KERNEL.instantiate("half", 1), Verbatim("} // closes the namespace early")]
    builders[2] = lambda: [Verbatim("namespace inner {"), KERNEL.instantiate("half", 2)]
    files = make_files(builders)
    assert batched_names(files) == [{"f_0.cu", "f_3.cu"}]
    assert failing_files(assert_same_verdict(files)) == {"f_1.cu", "f_2.cu"}


def test_late_includes_keep_their_own_parse_and_ifdef_macros_their_own_batch() -> None:
    files = make_files([
        lambda: [KERNEL.instantiate("half", 0)],
        lambda: [KERNEL.instantiate("half", 1)],
        lambda: [KERNEL.instantiate("half", 2)],
        lambda: [IfDefined("WITH_THREE", (KERNEL.instantiate("half", 3),))],
        lambda: [IfDefined("WITH_THREE", (KERNEL.instantiate("half", 4),))],
    ], GUARDED_CONTRACT, after=lambda index: (BlankLine(), Include("kernel.h")) if index == 0 else ())
    assert files[0].text.rstrip().endswith('#include "kernel.h"')
    assert sorted(map(sorted, batched_names(files))) == [["f_1.cu", "f_2.cu"], ["f_3.cu", "f_4.cu"]]
    assert assert_same_verdict(files).passed


def test_an_extern_template_never_shares_a_parse_with_a_file_that_instantiates_or_calls_it() -> None:
    """Alone, `template void helper<1>();` of a template with no definition is an error; after an
    `extern template void helper<1>();` in the same unit, clang says nothing."""
    files = make_files([
        lambda: [HELPER.instantiate(1)],
        lambda: [HELPER.instantiate(1, extern=True)],
        lambda: [LAUNCH.specialize(2, body=[HELPER.call(2)])],
        lambda: [KERNEL.instantiate("half", 3)],
        lambda: [KERNEL.instantiate("half", 4)],
    ])
    assert batched_names(files) == [{"f_0.cu", "f_2.cu", "f_3.cu", "f_4.cu"}], "f_1 parses alone"
    compatible = make_files([lambda: [HELPER.instantiate(1, extern=True)], lambda: [KERNEL.instantiate("half", 3)]])
    assert batched_names(compatible) == [{"f_0.cu", "f_1.cu"}], "an extern others do not use is batched"
    verdict = assert_same_verdict(files)
    assert "explicit instantiation of undefined function template" in verdict.text()
    assert failing_files(verdict) == {"f_0.cu"}


def test_nothing_is_batched_against_a_contract_with_verbatim_text() -> None:
    assert batched_names(make_files(instantiations(4))) == [{"f_0.cu", "f_1.cu", "f_2.cu", "f_3.cu"}]
    assert batched_names(make_files(instantiations(4), VERBATIM_CONTRACT)) == []


# A file with `Verbatim` is never batched, and is verified as it is ---------------------------------


def test_a_declaration_in_verbatim_does_not_let_another_file_pass() -> None:
    """`struct float4 {};` in f_0's `Verbatim` must not let f_1 use float4."""
    files = make_files([lambda: [Verbatim("struct float4 {};"), KERNEL.instantiate("half", 0)],
                        lambda: [KERNEL.instantiate("float4", 1)], lambda: [KERNEL.instantiate("half", 2)]])
    assert all("f_0.cu" not in names for names in batched_names(files))
    assert failing_files(assert_same_verdict(files)) == {"f_1.cu"}


def test_a_digraph_directive_in_verbatim_is_seen_by_its_own_file_only() -> None:
    """`%:define` is `#define`: it defines float4 for the rest of f_0 (which passes), never for f_1."""
    files = make_files([lambda: [Verbatim("%:define float4 half"), KERNEL.instantiate("float4", 0)],
                        lambda: [KERNEL.instantiate("float4", 1)], lambda: [KERNEL.instantiate("half", 2)]])
    assert all("f_0.cu" not in names for names in batched_names(files))
    verdict = assert_same_verdict(files)
    assert failing_files(verdict) == {"f_1.cu"}
    assert "f_1.cu:4:22: error: use of undeclared identifier 'float4'" in verdict.text()


def test_a_block_comment_opened_in_verbatim_fails_its_file_and_no_other() -> None:
    """f_0 opens a block comment it never closes; `// */` in f_1 would close it if they shared a
    parse, swallowing f_0's closing brace and f_1's `namespace ns {`. Alone, f_0 fails."""
    files = make_files([lambda: [KERNEL.instantiate("half", 0), Verbatim("/* opened, never closed")],
                        lambda: [LineComment("*/"), KERNEL.instantiate("half", 1)],
                        lambda: [KERNEL.instantiate("half", 2)]])
    assert all("f_0.cu" not in names for names in batched_names(files))
    verdict = assert_same_verdict(files)
    assert failing_files(verdict) == {"f_0.cu"}
    assert "unterminated /* comment" in verdict.text()


def test_a_verbatim_file_with_a_block_comment_or_a_digraph_that_is_valid_verifies() -> None:
    files = make_files([lambda: [Verbatim("/* a closed block comment */"), KERNEL.instantiate("half", 0)],
                        lambda: [Verbatim("%:define HALF half"), KERNEL.instantiate("HALF", 1)],
                        lambda: [KERNEL.instantiate("half", 2)], lambda: [KERNEL.instantiate("half", 3)]])
    assert batched_names(files) == [{"f_2.cu", "f_3.cu"}]
    assert assert_same_verdict(files) == Verdict(True, (), frozenset())
    assert verify(files).parsed == 4


# Aggregators --------------------------------------------------------------------------------------------


def test_aggregators_share_a_parse_only_when_their_members_share_a_prelude() -> None:
    """b_0 includes only other.h yet uses `kernel`, declared in kernel.h: alone it fails, and so does
    the aggregator of it. After an aggregator whose member includes kernel.h, both would pass."""
    contract = Contract({"kernel.h": (Namespace("ns", (ClassDeclaration("half"), KERNEL)),),
                         "other.h": (Namespace("ns", (HELPER,)),)})

    def member(header: str) -> Kind:
        def build(config: object) -> TranslationUnit:
            return TranslationUnit((Include(header), Namespace("ns", (KERNEL.instantiate("half", config.n),))))  # type: ignore[attr-defined]

        return Kind(header.split(".")[0], axes={"n": (0, 1)}, build=build, file_name=header[0] + "_{n}.cu",
                    contract=contract)

    def aggregator(name: str, members: tuple[str, ...]) -> Kind:
        def build(config: object) -> TranslationUnit:
            return TranslationUnit(tuple(Include(member) for member in members))

        return Kind(name, axes={"n": (0,)}, build=build, file_name=name + ".cu", contract=contract, aggregator=True)

    files = Preset("mixed", kinds=(member("kernel.h"), member("other.h"), aggregator("x", ("k_0.cu", "k_1.cu")),
                                   aggregator("y", ("o_0.cu", "o_1.cu")), aggregator("z", ("k_1.cu",)))).generate()
    for names in batched_names(files):
        assert not ({"x.cu", "z.cu"} & names and "y.cu" in names), names
    assert {"x.cu", "z.cu"} in batched_names(files)
    verdict = assert_same_verdict(files)
    assert failing_files(verdict) >= {"o_0.cu", "o_1.cu"}
    assert "    included from: y.cu" in verdict.text()


# Through the CLI -----------------------------------------------------------------------------------------


def test_the_cli_fails_a_file_that_fails_alone(tmp_path: Path) -> None:
    plugin = tmp_path / "specializing.py"
    plugin.write_text(
        "from flashast import *\n"
        "KERNEL = FunctionTemplate((TypeParameter('T'), ValueParameter('int', 'N')), 'void', 'kernel', (), defined=True)\n"
        "HELPER = FunctionTemplate((ValueParameter('int', 'N'),), 'void', 'helper', ())\n"
        "LAUNCH = FunctionTemplate((ValueParameter('int', 'N'),), 'void', 'launch', ())\n"
        f"STRICT = Verbatim({STRICT_HELPER.text!r})\n"
        "CONTRACT = Contract({'kernel.h': (Namespace('ns', (ClassDeclaration('half'), KERNEL, STRICT, LAUNCH)),)})\n"
        "BODIES = [[HELPER.specialize(1)], [LAUNCH.specialize(1, body=[HELPER.call(1)])], [KERNEL.instantiate('half', 2)]]\n"
        "def build(config):\n"
        "    return TranslationUnit((LineComment('generated'), Include('kernel.h'), Namespace('ns', tuple(BODIES[config.index]))))\n"
        "def register(registry):\n"
        "    kind = Kind('k', axes={'index': (0, 1, 2)}, build=build, file_name='f_{index}.cu', contract=CONTRACT)\n"
        "    registry.add_preset(Preset('spec', kinds=(kind,)))\n"
    )
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "flashast", "--plugin", str(plugin), "--preset", "spec", "-o", str(out)],
        capture_output=True, text=True, env=cli_environment(), check=False, timeout=600,
    )
    assert completed.returncode == 3, completed.stderr
    assert "f_1.cu:" in completed.stderr and "helper<1> needs a specialization" in completed.stderr
    assert not out.exists()


def test_preludes_and_preambles_read_from_the_model_are_the_files_own_first_lines() -> None:
    """For every built-in file, the prelude the model names renders as the file's first lines, and
    the includes-alone text (a group's preamble) is the file's text up to its first declaration, byte
    for byte (guards that open before it included): libclang reuses a preamble only then."""
    for preset in (*BUILTIN_PRESETS, *BUILTIN_REVISIONS):
        for generated in preset.generate():
            assert generated.text.startswith(render(TranslationUnit(prelude(generated.unit)), generated.style))
            if generated.included_files():
                continue
            alone = includes_alone_text(generated)
            opening = alone[:alone.index(INCLUDES_ONLY_BODY.strip())]
            assert generated.text.startswith(opening), generated.name
            assert "#include" not in generated.text[len(opening):], generated.name
