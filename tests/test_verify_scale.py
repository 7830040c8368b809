"""Verification at scale gives each file its own verdict: hundreds of files sharing one prelude
(batched in contract mode, re-parsed over one precompiled preamble with real headers), a few of
them broken, are each reported at their own line, and no other file is."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashast import (
    ClassDeclaration,
    Contract,
    FunctionTemplate,
    Include,
    Kind,
    LineComment,
    Namespace,
    PragmaOnce,
    Preset,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
    VerificationError,
    render,
)
from flashast.verify import CONTRACT_MODE, VerifyOptions, verify

KERNEL = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "N")), "void", "kernel", (), defined=True)
CONTRACT = Contract({"kernel.h": (PragmaOnce(), Namespace("ns", (ClassDeclaration("half"), KERNEL)))})
OTHER = FunctionTemplate((ValueParameter("int", "N"),), "void", "other", (), defined=True)
MANY = 150


def preset(count: int, broken: set[int]) -> Preset:
    """`count` files sharing one prelude; those in `broken` instantiate a template the contract
    lacks (`other`), on line 4."""

    def build(config: object) -> TranslationUnit:
        index = config.index  # type: ignore[attr-defined]
        body = OTHER.instantiate(index) if index in broken else KERNEL.instantiate("half", index)
        return TranslationUnit((LineComment("generated"), Include("kernel.h"), Namespace("ns", (body,))))

    kind = Kind("inst", axes={"index": tuple(range(count))}, build=build, file_name="inst_{index:05d}.cu",
                contract=CONTRACT)
    return Preset("scale", kinds=(kind,))


def real_headers(tmp_path: Path) -> VerifyOptions:
    """The contract's header written to disk, to verify against as a real include directory."""
    include = tmp_path / "include"
    include.mkdir()
    (include / "kernel.h").write_text(render(CONTRACT.header_units()["kernel.h"]))
    return VerifyOptions(include_dirs=(include,))


@pytest.fixture(params=["contract", "real headers"])
def options(request: pytest.FixtureRequest, tmp_path: Path) -> VerifyOptions:
    return CONTRACT_MODE if request.param == "contract" else real_headers(tmp_path)


@pytest.mark.parametrize("count", [5, MANY])
def test_each_broken_file_is_reported_at_its_own_line_and_no_other(count: int, options: VerifyOptions) -> None:
    broken = {1, count // 2, count - 1}
    files = preset(count, broken).generate()
    with pytest.raises(VerificationError) as caught:
        verify(files, options)
    heads = [line for line in caught.value.report.splitlines() if ": error: " in line]
    assert sorted(line.split(":")[0] for line in heads) == sorted(f"inst_{index:05d}.cu" for index in broken)
    assert all(line.split(":")[1:3] == ["4", "15"] for line in heads), heads
    assert all("no function template matches" in line or "'other'" in line for line in heads), heads
    assert str(caught.value) == (
        f"verification failed: {len(broken)} error(s) in {len(broken)} of {count} file(s); nothing was written"
    )


@pytest.mark.parametrize("count", [5, MANY])
def test_clean_files_each_pass(count: int, options: VerifyOptions) -> None:
    report = verify(preset(count, set()).generate(), options)
    assert (report.files, report.parsed, report.reused, report.errors, report.warnings) == (count, count, 0, [], [])


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_threads_parse_each_file_once_and_report_in_file_order(jobs: int, tmp_path: Path) -> None:
    """Real headers on threads that take files as they get to them: each file is parsed exactly
    once, and the diagnostics come in file order whichever thread found them."""
    count, broken = 40, {3, 17, 31}
    files = preset(count, broken).generate()
    parsed: list[str] = []
    with pytest.raises(VerificationError) as caught:
        verify(files, real_headers(tmp_path), progress=lambda told: parsed.append(told.file.name), jobs=jobs)
    assert sorted(parsed) == sorted(generated.name for generated in files)
    heads = [line.split(":")[0] for line in caught.value.report.splitlines() if ": error: " in line]
    assert heads == [f"inst_{index:05d}.cu" for index in sorted(broken)]
