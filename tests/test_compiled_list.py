"""Which generated files a build compiles: an aggregator or its members, never both.

flash-attention 3's aggregators `#include` kernel files of the same preset, so compiling every
written file compiles each of those twice; its `softcapall` backward aggregators repeat explicit
specializations, strong symbols, and the link fails (`tests/test_cmake.py` links one for real). The
default list is what upstream's `hopper/setup.py` compiles, stated here in upstream's terms (file
names from its `sources` lists at Dao-AILab/flash-attention 0251105a, every FLASH_ATTENTION_DISABLE_*
unset), independently of flashast's model. In-process through `flashast.cli.main`, plus the
public functions.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from flashast.cli import main
from flashast.errors import ModelError, UsageError
from flashast.generated import CompilePolicy, GeneratedFile, compiled_files
from flashast.kinds import Kind, Preset
from flashast.nodes import Include, TranslationUnit, Verbatim
from flashast.presets.common import aggregator_kind
from flashast.registry import Registry, default_registry


def upstream_setup_py_sources() -> set[str]:
    """The instantiation files `hopper/setup.py` (0251105a) compiles by default: sm90 forward files one
    by one, sm80 forward files through their `softcapall` aggregators (PackGQA is always on there),
    sm80 backward files one by one, sm90 backward files through their `softcapall` aggregators."""
    head_dims, flags = ("64", "96", "128", "192", "256"), ("", "_split", "_paged", "_paged_split")
    sources = {f"flash_fwd_hdim{head_dim}_{dtype}{flag}_softcapall_sm80.cu"
               for head_dim, dtype, flag in itertools.product(head_dims, ("bf16", "fp16"), flags)}
    sm90_head_dims: list[tuple[str, tuple[str, ...]]] = [
        (head_dim, ("bf16", "fp16", "e4m3")) for head_dim in (*head_dims, "192_128")]
    sm90_head_dims += [(head_dim, ("bf16", "fp16")) for head_dim in ("64_256", "64_512")]
    for (head_dim, dtypes), flag, softcap, packgqa in itertools.product(
            sm90_head_dims, flags, ("", "_softcap"), ("", "_packgqa")):
        if not (packgqa and flag):  # split or paged kernels pack GQA anyway
            sources |= {f"flash_fwd_hdim{head_dim}_{dtype}{flag}{softcap}{packgqa}_sm90.cu" for dtype in dtypes}
    for head_dim, dtype in itertools.product(head_dims, ("bf16", "fp16")):
        sources |= {f"flash_bwd_hdim{head_dim}_{dtype}{softcap}_sm80.cu" for softcap in ("", "_softcap")}
        sources.add(f"flash_bwd_hdim{head_dim}_{dtype}_softcapall_sm90.cu")
    return sources


def listed(output: str, directory: str = "out") -> list[str]:
    lines = output.splitlines()
    assert all(line.startswith(f"{directory}/") for line in lines), output
    return [line.removeprefix(f"{directory}/") for line in lines]


def list_files(capsys: pytest.CaptureFixture[str], *arguments: str) -> list[str]:
    code = main(["-o", "out", *arguments])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, ""), captured.err
    return listed(captured.out)


def covered(compiled: list[GeneratedFile], everything: list[GeneratedFile]) -> list[str]:
    """Every file a build of `compiled` compiles, once per time it is compiled (aggregators opened)."""
    by_name = {generated.name: generated for generated in everything}
    found: list[str] = []
    pending = list(compiled)
    while pending:
        generated = pending.pop()
        found.append(generated.name)
        pending += [by_name[name] for name in generated.included_files()]
    return found


@pytest.fixture(autouse=True)
def _no_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")


def test_the_default_list_is_what_upstream_setup_py_compiles(capsys: pytest.CaptureFixture[str]) -> None:
    compiled = list_files(capsys, "--preset", "flash-attn-3", "--list")
    assert set(compiled) == upstream_setup_py_sources()
    assert len(compiled) == 290 and compiled == sorted(compiled)
    assert len(list_files(capsys, "--preset", "flash-attn-3", "--list=written")) == 450


@pytest.mark.parametrize("policy", list(CompilePolicy))
@pytest.mark.parametrize("preset", default_registry.preset_names())
def test_every_file_is_compiled_exactly_once_whatever_the_policy(preset: str, policy: CompilePolicy) -> None:
    """Every kernel file is compiled once, on its own or inside one aggregator; an aggregator the
    policy leaves out is written, not compiled, and so is a generated header. Presets without
    aggregators (all but flash-attn-3) compile every source file they write."""
    everything = default_registry.preset(preset).generate()
    compiled = compiled_files(everything, policy)
    inside = covered(compiled, everything)
    sources = [generated for generated in everything if generated.name.endswith((".cu", ".cpp"))]
    kernels = sorted(generated.name for generated in sources if not generated.aggregator)
    assert sorted(name for name in inside if name in kernels) == kernels, "each kernel file once"
    assert len(set(inside)) == len(inside), "no aggregator twice either"
    if not any(generated.aggregator for generated in everything):
        assert compiled == sources


def test_the_policies_choose_the_members_or_the_aggregators(capsys: pytest.CaptureFixture[str]) -> None:
    members = list_files(capsys, "--preset", "flash-attn-3", "--list", "--compile", "members")
    assert members == list_files(capsys, "--preset", "flash-attn-3", "--list", "--exclude", "aggregator=true")
    aggregators = list_files(capsys, "--preset", "flash-attn-3", "--list", "--compile", "aggregators")
    assert len(members) == 340 and len(aggregators) == 130
    # The hdimall/hdimdiff aggregators upstream compiled from January to August 2025, with the rest as today.
    hdim_aggregators = {name for name in aggregators if "_hdimall_" in name or "_hdimdiff_" in name}
    assert len(hdim_aggregators) == 60
    assert hdim_aggregators <= set(aggregators) - upstream_setup_py_sources()
    upstream = set(list_files(capsys, "--preset", "flash-attn-3", "--list", "--compile", "upstream"))
    assert upstream == upstream_setup_py_sources()


def test_a_selection_of_aggregators_alone_compiles_them(capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever the policy: their members are not selected, so only the aggregators can compile them."""
    for policy in ("upstream", "members"):
        compiled = list_files(capsys, "--preset", "flash-attn-3", "--list", "--only", "kind=fwd_hdimall",
                              "--compile", policy)
        assert len(compiled) == 30 and all("_hdimall_" in name for name in compiled)


def test_the_manifest_says_per_file_whether_a_build_compiles_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    filters = ["--preset", "flash-attn-3", "--only", "head_dim=64", "--only", "dtype=bf16"]
    for policy in CompilePolicy:
        compiled = list_files(capsys, *filters, "--list", "--compile", policy.value, "--manifest", "files.json")
        listing = json.loads((tmp_path / "files.json").read_text())
        assert listing["compile"] == policy.value
        assert [entry["name"] for entry in listing["files"] if entry["compile"]] == compiled
        assert len(listing["files"]) == 47
    # A write with --manifest lists the same, and writes every file.
    assert main(["-o", "out", "-q", *filters, "--manifest", "files.json"]) == 0
    listing = json.loads((tmp_path / "files.json").read_text())
    assert listing["compile"] == "upstream"
    assert sorted(path.name for path in (tmp_path / "out").glob("*.cu")) == [entry["name"] for entry in listing["files"]]
    written_compiled = {entry["name"] for entry in listing["files"] if entry["compile"]}
    assert "flash_bwd_hdim64_bf16_softcapall_sm90.cu" in written_compiled
    assert not written_compiled & {"flash_bwd_hdim64_bf16_sm90.cu", "flash_bwd_hdim64_bf16_softcap_sm90.cu"}


def test_compile_without_a_listing_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for arguments in (["--compile", "members"], ["--check", "--compile", "members"],
                      ["--list=written", "--compile", "aggregators"]):
        assert main(["-o", str(tmp_path / "out"), *arguments]) == 2
        assert capsys.readouterr().err == (
            "flashast: error: --compile: says which files --list and --manifest name as compiled; add one of them\n")
    assert not (tmp_path / "out").exists()


def overlapping_preset(compiled_by_default: bool) -> Registry:
    """Two aggregators over one member file: compiling both would compile it twice."""
    registry = Registry()
    registry.add_preset(Preset("overlap"))
    member = Kind("run", axes={"n": (0, 1)}, build=lambda config: TranslationUnit((Verbatim("int x;"),)),
                  file_name="run_{n}.cu")
    registry.add_kind("overlap", member)
    for name in ("all", "again"):
        registry.add_kind("overlap", aggregator_kind(
            name, axes={"n": (name,)}, member=member, members=lambda config: [{"n": 0}, {"n": 1}],
            file_name=f"run_{name}.cu", compiled_by_default=compiled_by_default))
    return registry


def test_a_file_two_compiled_aggregators_include_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", "out", "--preset", "overlap", "--list"], registry=overlapping_preset(True)) == 2
    assert capsys.readouterr().err == (
        "flashast: error: run_0.cu: included by both run_again.cu and run_all.cu, so a build would compile it twice;"
        " choose --compile members, or leave one of the aggregators out\n")
    assert main(["-o", "out", "--preset", "overlap", "--list", "--compile", "members"],
                registry=overlapping_preset(True)) == 0
    assert listed(capsys.readouterr().out) == ["run_0.cu", "run_1.cu"]
    # Compiled by default only where the kinds say so: here neither is.
    assert main(["-o", "out", "--preset", "overlap", "--list"], registry=overlapping_preset(False)) == 0
    assert listed(capsys.readouterr().out) == ["run_0.cu", "run_1.cu"]


def test_an_aggregator_inside_a_compiled_aggregator_is_compiled_once_with_it() -> None:
    def unit(*includes: str) -> TranslationUnit:
        return TranslationUnit(tuple(Include(name) for name in includes) or (Verbatim("int x;"),))

    preset = Preset("nested", kinds=(
        Kind("leaf", axes={"n": (0, 1)}, build=lambda config: unit(), file_name="leaf_{n}.cu"),
        Kind("inner", axes={"n": (0,)}, build=lambda config: unit("leaf_0.cu", "leaf_1.cu"),
             file_name="inner.cu", aggregator=True),
        Kind("outer", axes={"n": (0,)}, build=lambda config: unit("inner.cu"), file_name="outer.cu", aggregator=True),
    ))
    files = preset.generate()
    assert [generated.name for generated in compiled_files(files, CompilePolicy.UPSTREAM)] == ["outer.cu"]
    assert [generated.name for generated in compiled_files(files, CompilePolicy.MEMBERS)] == ["leaf_0.cu", "leaf_1.cu"]
    without_outer = [generated for generated in files if generated.name != "outer.cu"]
    assert [generated.name for generated in compiled_files(without_outer, CompilePolicy.AGGREGATORS)] == ["inner.cu"]


def test_only_an_aggregator_may_leave_compiling_to_others() -> None:
    with pytest.raises(ModelError, match=r"compiled_by_default.*False only for an aggregator"):
        Kind("run", axes={"n": (0,)}, build=lambda config: TranslationUnit(()), file_name="run.cu",
             compiled_by_default=False)
    with pytest.raises(UsageError):
        compiled_files(overlapping_preset(True).preset("overlap").generate(), CompilePolicy.AGGREGATORS)
