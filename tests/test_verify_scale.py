"""Verification's fast paths give the verdicts of the plain path: files re-parsed over a shared
preamble, and files parsed in worker processes, are each judged on their own text."""

from __future__ import annotations

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
)
from flashast.verify import PARALLEL_FROM_FILES, verify

KERNEL = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "N")), "void", "kernel", (), defined=True)
CONTRACT = Contract({"kernel.h": (PragmaOnce(), Namespace("ns", (ClassDeclaration("half"), KERNEL)))})
OTHER = FunctionTemplate((ValueParameter("int", "N"),), "void", "other", (), defined=True)


def preset(count: int, broken: set[int]) -> Preset:
    """`count` files sharing one preamble; those in `broken` instantiate a template the contract
    lacks (`other`), on line 4."""

    def build(config: object) -> TranslationUnit:
        index = config.index  # type: ignore[attr-defined]
        body = OTHER.instantiate(index) if index in broken else KERNEL.instantiate("half", index)
        return TranslationUnit((LineComment("generated"), Include("kernel.h"), Namespace("ns", (body,))))

    kind = Kind("inst", {"index": tuple(range(count))}, build, "inst_{index:05d}.cu", CONTRACT)
    return Preset("scale", kinds=(kind,))


@pytest.mark.parametrize("count", [5, PARALLEL_FROM_FILES + 40])
def test_each_broken_file_is_reported_at_its_own_line_and_no_other(count: int) -> None:
    broken = {1, count // 2, count - 1}
    files = preset(count, broken).generate()
    with pytest.raises(VerificationError) as caught:
        verify(files)
    reported = sorted(line.split(":")[0] for line in caught.value.report.splitlines() if ": error: " in line)
    assert reported == sorted(f"inst_{index:05d}.cu" for index in broken)
    assert all(
        line.split(":")[1:3] == ["4", "15"] for line in caught.value.report.splitlines() if ": error: " in line
    )
    assert f"in {len(broken)} of {count} file(s)" in str(caught.value)


@pytest.mark.parametrize("count", [5, PARALLEL_FROM_FILES + 40])
def test_clean_files_share_translation_units(count: int) -> None:
    report = verify(preset(count, set()).generate())
    assert (report.files, report.errors, report.warnings) == (count, [], [])
    assert report.translation_units < count  # re-parsed over a preamble, not parsed afresh each time
