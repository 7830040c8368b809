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


def test_parallel_work_keeps_groups_whole_and_splits_only_large_ones() -> None:
    """A preamble group goes whole to one thread (a second preamble would cost more than it
    spreads), unless there are fewer groups than threads and the group is large."""
    from flashast import Registry
    from flashast.verify.parallel import plan_work
    from flashast.verify.parsing import group_by_preamble

    files = Registry().preset("pytorch").generate()
    groups = group_by_preamble(files)
    assert len(groups) == 2
    plans = plan_work(groups, 2)
    assert sorted(len(plan) for plan in plans) == [1, 1]
    assert sorted(len(plan[0]) for plan in plans) == sorted(len(group) for group in groups)
    small = [group[:3] for group in groups]
    assert [len(unit) for plan in plan_work(small[:1], 2) for unit in plan] == [3]  # too small to split
    split = plan_work(groups[:1], 2)
    assert len(split) == 2 and sum(len(plan[0]) for plan in split) == len(groups[0])
    assert plan_work(groups, 1) == [sorted(groups, key=len, reverse=True)]
