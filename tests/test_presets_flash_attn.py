"""The built-in presets: byte parity with the upstream manifests (the one parity test of each preset),
zero-diagnostic verification, no `Verbatim` in any built-in preset, aggregator integrity, and the
stated constraints of `flash-attn-2` and `flash-attn-3`."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace

import pytest
from conftest import read_golden

from flashast.contract import Contract
from flashast.errors import VerificationError
from flashast.generated import GeneratedFile
from flashast.kinds import Kind
from flashast.nodes import (
    BoolArg,
    Declaration,
    ExplicitInstantiation,
    ExplicitSpecialization,
    IfNotDefined,
    IntArg,
    Namespace,
    TranslationUnit,
    Verbatim,
)
from flashast.registry import Registry
from flashast.verify import verify

# Every built-in preset and how many files its upstream generator writes.
EXPECTED_FILE_COUNTS = {"pytorch": 48, "flash-attn-2": 96, "flash-attn-3": 450}
FLASH_ATTENTION_PRESETS = ("flash-attn-2", "flash-attn-3")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


@pytest.fixture(scope="module")
def generated(registry: Registry) -> dict[str, list[GeneratedFile]]:
    return {preset: registry.preset(preset).generate() for preset in EXPECTED_FILE_COUNTS}


def definitions_in(declarations: tuple[Declaration, ...], scope: tuple[str, ...] = ()) -> list[tuple[object, ...]]:
    """(scope, name, template arguments) of every specialization and instantiation definition."""
    found: list[tuple[object, ...]] = []
    for node in declarations:
        if isinstance(node, Namespace):
            found += definitions_in(node.body, (*scope, str(node.name)))
        elif isinstance(node, IfNotDefined):
            found += definitions_in(node.body, scope)
        elif isinstance(node, ExplicitSpecialization) or (isinstance(node, ExplicitInstantiation) and not node.extern):
            found.append((scope, str(node.signature.name), node.signature.template_arguments))
    return found


def signatures_in(unit: TranslationUnit) -> list[ExplicitInstantiation | ExplicitSpecialization]:
    return [node for node in unit.walk() if isinstance(node, (ExplicitInstantiation, ExplicitSpecialization))]


# Parity -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", EXPECTED_FILE_COUNTS)
def test_every_file_is_byte_identical_to_upstream(preset: str, generated: dict[str, list[GeneratedFile]]) -> None:
    """The same file names as the upstream generator, each with the same bytes (sha256 of its output)."""
    digests = {file.name: hashlib.sha256(file.text.encode("utf-8")).hexdigest() for file in generated[preset]}
    assert len(digests) == EXPECTED_FILE_COUNTS[preset]
    assert digests == read_golden(preset)


# Verification -------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", EXPECTED_FILE_COUNTS)
def test_every_file_verifies_without_diagnostics(preset: str, generated: dict[str, list[GeneratedFile]]) -> None:
    report = verify(generated[preset])
    assert report.files == EXPECTED_FILE_COUNTS[preset]
    assert report.errors == []
    assert report.warnings == []


def test_flash_attn_2_contract_catches_a_missing_namespace_macro(generated: dict[str, list[GeneratedFile]]) -> None:
    file = generated["flash-attn-2"][0]
    headers = {path.text: declarations for path, declarations in file.contract.headers}
    headers["namespace_config.h"] = ()
    with pytest.raises(VerificationError):
        verify([replace(file, contract=Contract(headers))])


def test_an_aggregator_without_its_members_fails_verification(generated: dict[str, list[GeneratedFile]]) -> None:
    aggregator = next(file for file in generated["flash-attn-3"] if file.aggregator)
    with pytest.raises(VerificationError) as raised:
        verify([aggregator])
    assert "which this run does not generate" in raised.value.report


# No escape hatch in built-in presets ----------------------------------------------------------------


def test_no_builtin_preset_uses_verbatim(registry: Registry) -> None:
    # llama.cpp's and pytorch-mem-eff's parity and verification are tested in their own modules
    # (test_llama_cpp.py, test_pytorch_mem_eff.py); their trees are walked here too.
    assert set(registry.preset_names()) == {*EXPECTED_FILE_COUNTS, "llama.cpp", "pytorch-mem-eff"}
    for preset_name in registry.preset_names():
        preset = registry.preset(preset_name)
        units = [file.unit for file in preset.generate()]
        units += list(preset.contract().header_units().values())
        for unit in units:
            assert not any(isinstance(node, Verbatim) for node in unit.walk()), preset_name


# Aggregators --------------------------------------------------------------------------------------


def test_flash_attn_3_aggregator_kinds_are_marked(registry: Registry) -> None:
    preset = registry.preset("flash-attn-3")
    aggregators = {kind.name for kind in preset.kinds if kind.aggregator}
    assert aggregators == {"fwd_hdimall", "fwd_hdimdiff", "fwd_softcapall", "bwd_softcapall"}
    assert not any(kind.aggregator for kind in registry.preset("flash-attn-2").kinds)


@pytest.mark.parametrize("preset", FLASH_ATTENTION_PRESETS)
def test_aggregators_include_only_files_of_their_preset(preset: str, generated: dict[str, list[GeneratedFile]]) -> None:
    files = generated[preset]
    kernel_files = {file.name for file in files if not file.aggregator}
    inclusions: Counter[str] = Counter()
    for file in files:
        included = file.included_files()
        if not file.aggregator:
            assert included == (), file.name
            continue
        assert included, file.name
        assert set(included) <= kernel_files, file.name
        assert not file.text.endswith("\n"), file.name
        inclusions.update(included)
    # A build that compiles the aggregators compiles each kernel file once.
    assert [name for name, count in inclusions.items() if count > 1] == []


@pytest.mark.parametrize("preset", FLASH_ATTENTION_PRESETS)
def test_no_kernel_definition_appears_twice(preset: str, generated: dict[str, list[GeneratedFile]]) -> None:
    definitions = Counter(
        definition
        for file in generated[preset]
        if not file.aggregator
        for definition in definitions_in(file.unit.declarations)
    )
    assert [definition for definition, count in definitions.items() if count > 1] == []


def test_flash_attn_3_hdimall_includes_every_head_dim_in_order(generated: dict[str, list[GeneratedFile]]) -> None:
    by_name = {file.name: file for file in generated["flash-attn-3"]}
    assert by_name["flash_fwd_hdimall_e4m3_softcap_packgqa_sm90.cu"].included_files() == tuple(
        f"flash_fwd_hdim{head_dim}_e4m3_softcap_packgqa_sm90.cu" for head_dim in (64, 96, 128, 192, 256)
    )
    assert by_name["flash_fwd_hdimdiff_fp16_sm90.cu"].included_files() == (
        "flash_fwd_hdim64_256_fp16_sm90.cu",
        "flash_fwd_hdim64_512_fp16_sm90.cu",
        "flash_fwd_hdim192_128_fp16_sm90.cu",
    )
    assert by_name["flash_fwd_hdimdiff_e4m3_sm90.cu"].included_files() == ("flash_fwd_hdim192_128_e4m3_sm90.cu",)
    assert by_name["flash_bwd_hdim64_fp16_softcapall_sm90.cu"].included_files() == (
        "flash_bwd_hdim64_fp16_sm90.cu",
        "flash_bwd_hdim64_fp16_softcap_sm90.cu",
    )


# Constraints and axes -----------------------------------------------------------------------------


def reasons_of(kind: Kind, **values: object) -> set[str | None]:
    """The constraint's reasons for every configuration of `kind` matching `values`."""
    return {
        reason
        for configuration, reason in kind.configurations()
        if all(configuration[axis] == value for axis, value in values.items())
    }


def test_flash_attn_3_has_no_e4m3_file_for_sm80_or_backward(generated: dict[str, list[GeneratedFile]]) -> None:
    for file in generated["flash-attn-3"]:
        if file.axes["dtype"] == "e4m3":
            assert file.axes["sm"] == 90 and file.name.startswith("flash_fwd_"), file.name


def test_flash_attn_3_constraints_state_their_reasons(registry: Registry) -> None:
    preset = registry.preset("flash-attn-3")
    forward, backward = preset.kind_named("fwd"), preset.kind_named("bwd")
    assert reasons_of(forward, dtype="e4m3", sm=80) == {"e4m3 has no sm80 kernels"}
    assert reasons_of(backward, dtype="e4m3") == {"e4m3 has no backward kernels"}
    assert reasons_of(forward, dtype="fp16", head_dim=128, head_dim_v=128, split=True, packgqa=True, sm=90) == {
        "packgqa is forced on for split/paged, so there is no separate packgqa file"
    }
    assert reasons_of(forward, dtype="bf16", head_dim=96, head_dim_v=96, packgqa=False) == {None}
    assert reasons_of(preset.kind_named("fwd_softcapall"), dtype="e4m3") == {"e4m3 has no sm80 kernels"}


def test_flash_attn_3_kind_counts(registry: Registry) -> None:
    counts = {kind.name: kind.count() for kind in registry.preset("flash-attn-3").kinds}
    assert counts == {
        "fwd": 300, "bwd": 40, "fwd_hdimall": 30, "fwd_hdimdiff": 30, "fwd_softcapall": 40, "bwd_softcapall": 10,
    }
    assert sum(counts.values()) == 450


def test_flash_attn_3_sm80_files_instantiate_sm80_and_sm86(generated: dict[str, list[GeneratedFile]]) -> None:
    for file in generated["flash-attn-3"]:
        if file.aggregator:
            continue
        archs = [node.signature.template_arguments[0] for node in signatures_in(file.unit)]
        expected = [IntArg(80), IntArg(86)] if file.axes["sm"] == 80 else [IntArg(90)]
        assert archs == expected, file.name


def test_flash_attn_3_packgqa_is_forced_on_for_split_paged_and_sm80(generated: dict[str, list[GeneratedFile]]) -> None:
    for file in generated["flash-attn-3"]:
        if file.kind != "fwd":
            continue
        axes = file.axes
        forced = axes["sm"] == 80 or bool(axes["packgqa"] or axes["split"] or axes["paged"])
        for node in signatures_in(file.unit):
            assert node.signature.template_arguments[-1] == BoolArg(forced), file.name


def test_flash_attn_2_kinds_cover_every_configuration(registry: Registry) -> None:
    preset = registry.preset("flash-attn-2")
    assert {kind.name: kind.count() for kind in preset.kinds} == {
        "fwd": 24, "fwd_split": 24, "fwd_split_align": 24, "bwd": 24,
    }
    assert preset.kind_named("bwd").name_for(dtype="bf16", head_dim=64, is_causal=True, sm=80) == (
        "flash_bwd_hdim64_bf16_causal_sm80.cu"
    )
