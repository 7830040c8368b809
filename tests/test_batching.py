"""Batched verification: a clean shared parse stands for per-file parses only when it must give the
same verdict, and any problem is reported exactly as a per-file parse reports it.

The per-file verdicts come from `verify(..., progress=...)`, which never batches (it reports each
file's own time); everything here is real libclang.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import cli_environment

from flashast import (
    ClassDeclaration,
    Contract,
    FunctionTemplate,
    IfDefined,
    Include,
    Kind,
    LineComment,
    Namespace,
    Preset,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
    Verbatim,
    VerificationError,
)
from flashast.batching import plan_batches
from flashast.generated import GeneratedFile
from flashast.registry import Registry
from flashast.verify import Report, verify

KERNEL = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "N")), "void", "kernel", (), defined=True)
HELPER = FunctionTemplate((ValueParameter("int", "N"),), "void", "helper", ())
LAUNCH = FunctionTemplate((ValueParameter("int", "N"),), "void", "launch", ())
CONTRACT = Contract({"kernel.h": (Namespace("ns", (ClassDeclaration("half"), KERNEL, HELPER, LAUNCH)),)})


def make_files(builders: list, contract: Contract = CONTRACT) -> list[GeneratedFile]:
    """One file per builder (each returns the namespace body), in order, all with one prelude."""

    def build(config: object) -> TranslationUnit:
        body = builders[config.index]()  # type: ignore[attr-defined]
        return TranslationUnit((LineComment("generated"), Include("kernel.h"), Namespace("ns", tuple(body))))

    kind = Kind("k", {"index": tuple(range(len(builders)))}, build, "f_{index}.cu", contract)
    return Preset("batching", kinds=(kind,)).generate()


def per_file_report(files: list[GeneratedFile]) -> str | None:
    """What verification says with every file parsed on its own (None: it passes)."""
    try:
        verify(files, progress=lambda generated, seconds, failed: None)
    except VerificationError as error:
        return error.report
    return None


def batched_report(files: list[GeneratedFile]) -> tuple[str | None, int]:
    try:
        report = verify(files)
    except VerificationError as error:
        return error.report, -1
    return None, report.translation_units


def batched_names(files: list[GeneratedFile]) -> list[set[str]]:
    return [{generated.name for generated in batch.files} for batch in plan_batches(files, {f.name: f for f in files})]


def test_every_built_in_preset_verifies_in_a_handful_of_parses() -> None:
    """450 flash-attn-3 files, 110 of them aggregators: four parses instead of 450."""
    expected_units = {"pytorch": 2, "flash-attn-2": 3, "flash-attn-3": 4}
    for name, units in expected_units.items():
        files = Registry().preset(name).generate()
        report = verify(files)
        assert (report.errors, report.warnings, report.translation_units) == ([], [], units), name
        batched = set().union(*batched_names(files))
        assert batched == {generated.name for generated in files}, f"{name}: every file is in a batch"


# Faults in a batch are reported exactly as per-file parses report them -----------------------------

FAULTS = {
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
    builders = [lambda index=index: [KERNEL.instantiate("half", index)] for index in range(8)]
    builders[where] = lambda: FAULTS[fault](where)
    files = make_files(builders)
    expected = per_file_report(files)
    assert expected is not None and f"f_{where}.cu" in expected, "the fault is a real one"
    assert batched_report(files)[0] == expected


def test_clean_files_pass_in_one_parse() -> None:
    files = make_files([lambda index=index: [KERNEL.instantiate("half", index)] for index in range(50)])
    assert batched_report(files) == (None, 1)
    assert per_file_report(files) is None


# What would make a clean shared parse lie is never batched -----------------------------------------


def test_a_name_declared_in_one_file_does_not_let_another_pass() -> None:
    """f_0 declares `float4` and uses it; f_1 uses it without declaring it and must fail alone."""
    files = make_files([
        lambda: [ClassDeclaration("float4"), KERNEL.instantiate("float4", 0)],
        lambda: [KERNEL.instantiate("float4", 1)],
        lambda: [KERNEL.instantiate("half", 2)],
    ])
    assert all("f_0.cu" not in names for names in batched_names(files))
    report, _ = batched_report(files)
    assert report is not None and report == per_file_report(files)
    failing = {line.split(":")[0] for line in report.splitlines() if ": error: " in line}
    assert failing == {"f_1.cu"}


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
    files = specializing_files(VERBATIM_CONTRACT)
    report, _ = batched_report(files)
    assert report is not None and "helper<1> needs a specialization" in report
    assert report == per_file_report(files)
    assert {line.split(":")[0] for line in report.splitlines() if ": error: " in line} == {"f_1.cu"}


def test_text_that_does_not_close_what_it_opens_is_parsed_alone() -> None:
    """A printer defect that drops a brace in one file and doubles one in the next: together they
    balance, alone each fails; neither may be batched."""
    files = make_files([lambda index=index: [KERNEL.instantiate("half", index)] for index in range(4)])
    files[1] = replace(files[1], text=files[1].text.replace("} // namespace ns", ""))
    files[2] = replace(files[2], text=files[2].text + "}\n")
    assert all(not names & {"f_1.cu", "f_2.cu"} for names in batched_names(files))
    report, _ = batched_report(files)
    assert report is not None and report == per_file_report(files)
    assert {line.split(":")[0] for line in report.splitlines() if ": error: " in line} == {"f_1.cu", "f_2.cu"}


def test_late_includes_keep_their_own_parse_and_ifdef_macros_their_own_batch() -> None:
    files = make_files([
        lambda: [KERNEL.instantiate("half", 0)],
        lambda: [KERNEL.instantiate("half", 1)],
        lambda: [KERNEL.instantiate("half", 2)],
        lambda: [IfDefined("WITH_THREE", (KERNEL.instantiate("half", 3),))],
        lambda: [IfDefined("WITH_THREE", (KERNEL.instantiate("half", 4),))],
    ])
    files[0] = replace(files[0], text=files[0].text + '#include "kernel.h"\n')
    assert sorted(map(sorted, batched_names(files))) == [["f_1.cu", "f_2.cu"], ["f_3.cu", "f_4.cu"]]


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
    report, _ = batched_report(files)
    assert report is not None and "explicit instantiation of undefined function template" in report
    assert report == per_file_report(files)


def test_nothing_is_batched_against_a_contract_with_verbatim_text() -> None:
    builders = [lambda index=index: [KERNEL.instantiate("half", index)] for index in range(4)]
    assert batched_names(make_files(builders)) == [{"f_0.cu", "f_1.cu", "f_2.cu", "f_3.cu"}]
    assert batched_names(make_files(builders, VERBATIM_CONTRACT)) == []


def test_a_text_that_is_not_its_models_rendering_is_parsed_alone() -> None:
    """`struct float4 {};` in f_0's text (not in its model) must not let f_1 use float4."""
    files = make_files([lambda: [KERNEL.instantiate("half", 0)], lambda: [KERNEL.instantiate("float4", 1)],
                        lambda: [KERNEL.instantiate("half", 2)]])
    files[0] = replace(files[0], text=files[0].text.replace("namespace ns {", "namespace ns {\nstruct float4 {};"))
    assert all("f_0.cu" not in names for names in batched_names(files))
    report, _ = batched_report(files)
    assert report == per_file_report(files) and report is not None and "f_1.cu:" in report


def test_a_batch_reports_nothing_itself() -> None:
    """A shared parse that is not clean adds no message of its own: only per-file findings are shown."""
    files = make_files([lambda: [KERNEL.instantiate("half", 0)], lambda: [KERNEL.instantiate("half", 0)]])
    from clang import cindex

    from flashast.verify import VerifyOptions, _Session

    session = _Session(cindex, files, VerifyOptions())
    report = Report()
    [batch] = plan_batches(files, {generated.name: generated for generated in files})
    assert session.verify_batch(batch, report) is False
    assert (report.errors, report.warnings, report.failing_files) == ([], [], set())


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
        "    registry.add_preset(Preset('spec', kinds=(Kind('k', {'index': (0, 1, 2)}, build, 'f_{index}.cu', CONTRACT),)))\n"
    )
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "flashast", "--plugin", str(plugin), "--preset", "spec", "-o", str(out)],
        capture_output=True, text=True, env=cli_environment(), check=False,
    )
    assert completed.returncode == 3, completed.stderr
    assert "f_1.cu:" in completed.stderr and "helper<1> needs a specialization" in completed.stderr
    assert not out.exists()


def test_aggregators_share_a_parse_only_when_their_members_share_a_prelude() -> None:
    """b_0 includes only other.h yet uses `kernel`, declared in kernel.h: alone it fails, and so does
    the aggregator of it. After an aggregator whose member includes kernel.h, both would pass."""
    contract = Contract({"kernel.h": (Namespace("ns", (ClassDeclaration("half"), KERNEL)),),
                         "other.h": (Namespace("ns", (HELPER,)),)})

    def member(header: str) -> Kind:
        def build(config: object) -> TranslationUnit:
            return TranslationUnit((Include(header), Namespace("ns", (KERNEL.instantiate("half", config.n),))))  # type: ignore[attr-defined]

        return Kind(header.split(".")[0], {"n": (0, 1)}, build, header[0] + "_{n}.cu", contract)

    def aggregator(name: str, members: tuple[str, ...]) -> Kind:
        build = lambda config: TranslationUnit(tuple(Include(member) for member in members))  # noqa: E731
        return Kind(name, {"n": (0,)}, build, name + ".cu", contract, aggregator=True)

    files = Preset("mixed", kinds=(member("kernel.h"), member("other.h"), aggregator("x", ("k_0.cu", "k_1.cu")),
                                   aggregator("y", ("o_0.cu", "o_1.cu")), aggregator("z", ("k_1.cu",)))).generate()
    for names in batched_names(files):
        assert not ({"x.cu", "z.cu"} & names and "y.cu" in names), names
    assert {"x.cu", "z.cu"} in batched_names(files)
    report, _ = batched_report(files)
    assert report is not None and report == per_file_report(files)
    assert {line.split(":")[0] for line in report.splitlines() if ": error: " in line} >= {"o_0.cu", "o_1.cu"}
