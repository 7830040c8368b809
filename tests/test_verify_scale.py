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


def test_parallel_work_cuts_large_groups_per_thread_and_keeps_small_ones_whole() -> None:
    """A large preamble group is cut into one piece per thread (its files' own parses can cost far
    more than a preamble); a small one goes whole to one thread. Every file is parsed exactly once."""
    from flashast import Registry
    from flashast.verify.parallel import plan_work
    from flashast.verify.parsing import group_by_preamble

    files = Registry().preset("pytorch").generate()
    groups = group_by_preamble(files)
    assert len(groups) == 2 and all(len(group) >= 8 for group in groups)
    plans = plan_work(groups, 2)
    assert len(plans) == 2 and all(len(plan) == 2 for plan in plans)  # each thread: half of each group
    parsed = [generated.name for plan in plans for unit in plan for generated in unit]
    assert sorted(parsed) == sorted(generated.name for generated in files)
    small = [group[:3] for group in groups]
    assert sorted(len(unit) for plan in plan_work(small, 2) for unit in plan) == [3, 3]  # whole
    assert len(plan_work(small[:1], 2)) == 1
    assert plan_work(groups, 1) == [sorted(groups, key=len, reverse=True)]
