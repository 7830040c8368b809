"""The kernel-kind API in-process: kinds, constraints and their reasons, presets, the registry.

Registries here are fresh (`Registry()` or `Registry(builtins=False)`), so no test sees another's
kinds. The last test is the quality bar of the extension API: a string-template generator of the
flash-attention family, re-expressed through the public API, byte for byte, and verified by libclang.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flashast
from flashast import (
    BlankLine,
    ClassDeclaration,
    Configuration,
    Contract,
    FunctionTemplate,
    IfNotDefined,
    Include,
    Kind,
    LineComment,
    ModelError,
    PluginError,
    PragmaOnce,
    Preset,
    Registry,
    Style,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
    VerificationError,
    default_registry,
)
from flashast.axes import AxisValue
from flashast.generated import GeneratedFile
from flashast.presets.common import (
    CUTLASS_TYPES,
    NAMESPACE_CONFIG_HEADER,
    aggregator_kind,
    cuda_stream,
    cutlass_types,
    in_default_flash_namespace,
    in_flash_namespace,
    launcher_parameters,
    namespace_config,
)
from flashast.registry import Origin
from flashast.verify import verify


def comment_unit(config: Configuration) -> TranslationUnit:
    """A file whose only line names its configuration: enough for registry tests."""
    return TranslationUnit((LineComment(config.describe()),))


def simple_kind(
    name: str = "extra", head_dims: Sequence[int] = (64, 128), build: object = comment_unit, **options: object
) -> Kind:
    return Kind(name, axes={"head_dim": tuple(head_dims)}, build=build,  # type: ignore[arg-type]
                file_name=f"{name}_hdim{{head_dim}}.cu", **options)  # type: ignore[arg-type]


# The public API ---------------------------------------------------------------------------------------


def test_every_public_name_is_importable_from_flashast_and_defined_in_flashast() -> None:
    for name in flashast.__all__:
        value = getattr(flashast, name)
        exec(f"from flashast import {name}", {})  # the spelling users write must work
        if isinstance(value, type):
            assert value.__module__.split(".")[0] == "flashast", (name, value.__module__)
    assert len(set(flashast.__all__)) == len(flashast.__all__)
    assert {"Kind", "Preset", "Registry", "Configuration", "TranslationUnit", "render"} <= set(flashast.__all__)


def test_kind_and_preset_take_keyword_arguments_after_the_name() -> None:
    """0.1.0's positional arguments and `Preset.kind` still work until 0.3.0, each with a warning
    naming what to write instead (tests/compat/ runs a whole 0.1.0-style plugin)."""
    with pytest.warns(DeprecationWarning, match=r"Kind\(name, axes, build, file_name\) with positional arguments"
                      r" is deprecated since flashast 0\.2\.0 and stops working in 0\.3\.0; write Kind\(name,"
                      r" axes=\.\.\., build=\.\.\., file_name=\.\.\.\)"):
        old_kind = Kind("fwd", {"head_dim": (64,)}, comment_unit, "f{head_dim}.cu")  # type: ignore[call-arg]
    with pytest.warns(DeprecationWarning, match=r"write Preset\(name, style=\.\.\.\)$"):
        assert Preset("demo", Style()) == Preset("demo", style=Style())  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'style'"):
        Preset("demo", Style(), style=Style())  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="at most 3 deprecated positional ones"):
        Preset("demo", Style(), "a demo", (), "v1")  # type: ignore[call-arg]
    kind = Kind("fwd", axes={"head_dim": (64,)}, build=comment_unit, file_name="f{head_dim}.cu")
    assert old_kind == kind
    preset = Preset("demo", style=Style(), description="a demo", kinds=[kind])
    assert preset.kinds == (kind,)
    assert preset.kind_named("fwd") is kind
    with pytest.warns(DeprecationWarning, match=r"Preset.kind\(name\) is deprecated .*; write Preset.kind_named"):
        assert preset.kind("fwd") is kind
    with pytest.raises(ModelError) as missing:
        preset.kind_named("bwd")
    assert missing.value.problem == "no kind has this name (kinds: fwd)"


# Registries ------------------------------------------------------------------------------------------


def test_fresh_registries_do_not_share_kinds() -> None:
    first, second = Registry(), Registry()
    first.add_kind("pytorch", simple_kind())
    assert [kind.name for kind in first.preset("pytorch").kinds] == ["fwd", "bwd", "fwd_split", "extra"]
    assert [kind.name for kind in second.preset("pytorch").kinds] == ["fwd", "bwd", "fwd_split"]
    assert "extra" not in [kind.name for kind in default_registry.preset("pytorch").kinds]
    assert Registry(builtins=False).preset_names() == []
    assert second.preset_names() == ["flash-attn-2", "flash-attn-3", "llama.cpp", "pytorch", "pytorch-mem-eff"]


def test_preset_name_collision_names_who_registered_first() -> None:
    registry = Registry()
    with pytest.raises(PluginError) as built_in:
        registry.add_preset(Preset("pytorch"))
    # Another preset of that name is another revision of it, which needs a revision of its own.
    revision_hint = "; to add a revision of it, give the Preset a revision=..."
    assert str(built_in.value) == "preset 'pytorch' already exists (first registered: built-in)" + revision_hint
    with registry.origin(Origin("file a.py")):
        registry.add_preset(Preset("mine"))
    with registry.origin(Origin("file b.py")), pytest.raises(PluginError) as plugin:
        registry.add_preset(Preset("mine"))
    assert str(plugin.value) == "preset 'mine' already exists (first registered: file a.py)" + revision_hint


def test_kind_name_collision_names_who_registered_first() -> None:
    registry = Registry()
    with pytest.raises(PluginError) as built_in:
        registry.add_kind("pytorch", simple_kind("fwd"))
    assert str(built_in.value) == "kind 'fwd' of preset 'pytorch' already exists (first registered: built-in)"
    with registry.origin(Origin("distribution my-fork 1.0")):
        registry.add_kind("flash-attn-2", simple_kind())
    with pytest.raises(PluginError, match=r"first registered: distribution my-fork 1\.0\)$"):
        registry.add_kind("flash-attn-2", simple_kind())
    # The same kind name in another preset is no collision.
    registry.add_kind("pytorch", simple_kind())


def test_adding_to_an_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(PluginError) as error:
        Registry().add_kind("pytorh", simple_kind())
    assert str(error.value) == "unknown preset 'pytorh' (known: flash-attn-2, flash-attn-3, llama.cpp, pytorch, pytorch-mem-eff)"


def test_origins_are_recorded_per_preset_and_kind() -> None:
    registry = Registry()
    with registry.origin(Origin("file examples/paged_kv.py")):
        registry.add_kind("pytorch", simple_kind())
    registry.add_preset(Preset("loose", kinds=(simple_kind("one"),)))
    assert registry.origin_of("pytorch").description == "built-in"
    assert registry.origin_of("pytorch", "fwd").description == "built-in"
    assert registry.origin_of("pytorch", "extra").description == "file examples/paged_kv.py"
    assert registry.origin_of("loose", "one").description == "Python code"
    with pytest.raises(PluginError, match="has no kind 'two'"):
        registry.origin_of("loose", "two")


def test_a_failed_registration_leaves_the_registry_as_it_was() -> None:
    registry = Registry()
    with pytest.raises(PluginError), registry.transaction():
        registry.add_preset(Preset("half-done", kinds=(simple_kind(),)))
        registry.add_kind("pytorch", simple_kind("second"))
        registry.add_kind("pytorch", simple_kind("fwd"))
    assert "half-done" not in registry.preset_names()
    assert [kind.name for kind in registry.preset("pytorch").kinds] == ["fwd", "bwd", "fwd_split"]


def test_kind_decorator_names_the_kind_after_the_builder_and_returns_it() -> None:
    registry = Registry(builtins=False)
    registry.add_preset(Preset("fork", style=Style(insert_newline_at_eof=False)))

    @registry.kind("fork", axes={"dtype": ("fp16", "bf16")}, file_name="fwd_{dtype}.cu")
    def fwd(config: Configuration) -> TranslationUnit:
        """One comment per dtype.

        Only the first docstring line is the description."""
        return TranslationUnit((LineComment(config.dtype),))

    @registry.kind("fork", name="bwd", axes={"dtype": ("fp16",)}, file_name="bwd_{dtype}.cu", description="given")
    def anything(config: Configuration) -> TranslationUnit:
        return TranslationUnit((LineComment(config.dtype),))

    assert isinstance(fwd, Kind) and fwd.name == "fwd" and fwd.description == "One comment per dtype."
    assert anything.name == "bwd" and anything.description == "given"
    files = registry.preset("fork").generate()
    assert [(file.name, file.kind, file.text) for file in files] == [
        ("bwd_fp16.cu", "bwd", "// fp16"),
        ("fwd_bf16.cu", "fwd", "// bf16"),
        ("fwd_fp16.cu", "fwd", "// fp16"),
    ]
    with pytest.raises(PluginError, match="already exists"):
        registry.kind("fork", axes={"dtype": ("fp16",)}, file_name="x_{dtype}.cu")(fwd.build)


def test_kind_decorator_passes_the_architectures_and_whether_a_build_compiles_the_files() -> None:
    """What `Kind(...)` takes, the decorator takes: the device side parses each file for its kind's
    architectures, and an aggregator kind may be left out of the compiled list by default."""
    registry = Registry(builtins=False)
    registry.add_preset(Preset("fork"))

    @registry.kind("fork", axes={"sm": (80, 90)}, file_name="fwd_sm{sm}.cu",
                   architectures=lambda config: (f"sm_{config.sm}",), aggregator=True, compiled_by_default=False)
    def fwd(config: Configuration) -> TranslationUnit:
        return TranslationUnit((LineComment(str(config.sm)),))

    files = registry.preset("fork").generate()
    assert [(file.name, file.architectures) for file in files] == [("fwd_sm80.cu", ("sm_80",)),
                                                                    ("fwd_sm90.cu", ("sm_90",))]
    assert fwd.compiled_by_default is False


# Kinds and constraints -------------------------------------------------------------------------------

AXES: dict[str, Sequence[AxisValue]] = {
    "dtype": ("fp16", "bf16", "e4m3"), "head_dim": (64, 80, 128), "is_causal": (False, True)
}


def head_dim_rule(config: Configuration) -> str | None:
    if config.head_dim % 32:
        return "head_dim must be a multiple of 32"
    if config.dtype == "e4m3" and config.is_causal:
        return "e4m3 has no causal kernel"
    return None


def causal_name(config: Configuration) -> str:
    return f"fwd_hdim{config.head_dim}_{config.dtype}{'_causal' if config.is_causal else ''}.cu"


RULED = Kind("fwd", axes=AXES, build=comment_unit, file_name=causal_name, constraint=head_dim_rule)


def test_constraint_reasons_surface_through_configurations() -> None:
    reasons = {config.describe(): reason for config, reason in RULED.configurations()}
    assert len(reasons) == 18
    assert reasons["dtype=fp16 head_dim=80 is_causal=false"] == "head_dim must be a multiple of 32"
    assert reasons["dtype=e4m3 head_dim=64 is_causal=true"] == "e4m3 has no causal kernel"
    assert reasons["dtype=e4m3 head_dim=64 is_causal=false"] is None
    assert RULED.count() == 18 - 6 - 2
    assert [(config.describe(), reason) for config, reason in RULED.skipped()][:1] == [
        ("dtype=fp16 head_dim=80 is_causal=false", "head_dim must be a multiple of 32")
    ]
    assert RULED.skip_reason(dtype="e4m3", head_dim=128, is_causal=True) == "e4m3 has no causal kernel"
    assert RULED.skip_reason(dtype="bf16", head_dim=128, is_causal=True) is None
    generated = list(RULED.generate("demo", Style()))
    assert len(generated) == RULED.count()
    assert "fwd_hdim80_fp16.cu" not in {file.name for file in generated}


def test_configuration_checks_axes_and_values() -> None:
    config = RULED.configuration(dtype="bf16", head_dim=64, is_causal=True)
    assert config.head_dim == 64 and config["dtype"] == "bf16" and list(config) == ["dtype", "head_dim", "is_causal"]
    with pytest.raises(ModelError, match="missing axes \\['is_causal'\\]"):
        RULED.configuration(dtype="bf16", head_dim=64)
    with pytest.raises(ModelError, match="is not one of 64, 80, 128"):
        RULED.configuration(dtype="bf16", head_dim=256, is_causal=True)
    with pytest.raises(ModelError, match="is not one of false, true"):
        RULED.configuration(dtype="bf16", head_dim=64, is_causal=1)
    with pytest.raises(AttributeError, match="no axis 'sm'"):
        _ = config.sm


@pytest.mark.parametrize(
    ("reason", "problem"),
    [(False, "must return a non-empty reason str"), ("", "must return a non-empty reason str")],
)
def test_a_constraint_must_state_a_reason(reason: object, problem: str) -> None:
    kind = simple_kind(constraint=lambda config: reason)
    with pytest.raises(ModelError, match=problem):
        kind.count()


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"name": "fwd-paged"}, "an identifier holds only letters, digits and '_'"),
        ({"axes": {"kind": ("a",)}}, "is reserved for flashast's own filters"),
        ({"axes": {"head_dim": ()}}, "must be a non-empty sequence of values"),
        ({"axes": {"head_dim": "64"}}, "must be a non-empty sequence of values"),
        ({"axes": {"head_dim": (64, 64)}}, "axis values must be distinct"),
        ({"axes": {"flag": (True, "true")}}, "axis values must be distinct"),
        ({"axes": {"head_dim": (64.0,)}}, "an axis value is an int, bool or str"),
        ({"build": "not callable"}, "must be callable"),
        ({"file_name": 3}, "must be a pattern str or a callable"),
        ({"file_name": "{hdim}.cu"}, "names {hdim}, which is not an axis (head_dim)"),
        ({"file_name": "{}.cu"}, "names {}, which is not an axis (head_dim)"),
        ({"file_name": "{head_dim.cu"}, "cannot format: expected '}' before end of string"),
        ({"contract": {"flash.h": ()}}, "must be a Contract"),
        ({"constraint": "skip"}, "must be callable or None"),
        ({"aggregator": 1}, "must be a bool"),
        ({"style": "tight"}, "must be a Style"),
    ],
)
def test_invalid_kinds_are_refused(arguments: dict[str, object], problem: str) -> None:
    fields: dict[str, object] = {"name": "fwd", "axes": {"head_dim": (64,)}, "build": comment_unit,
                                 "file_name": "f{head_dim}.cu", **arguments}
    with pytest.raises(ModelError) as error:
        Kind(**fields)  # type: ignore[arg-type]
    assert error.value.problem == problem
    assert error.value.owner in ("Kind", "Kind(fwd)")


def test_builder_mistakes_name_the_kind_and_configuration() -> None:
    template = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "Headdim")), "void", "run_")

    def wrong_arity(config: Configuration) -> TranslationUnit:
        return TranslationUnit((template.instantiate("cutlass::half_t"),))

    with pytest.raises(ModelError) as error:
        list(simple_kind(build=wrong_arity).generate("demo", Style()))
    assert str(error.value).startswith("Kind(extra).build='head_dim=64': FunctionTemplate(run_).template_arguments=")
    assert str(error.value).endswith("expects 2 template arguments, got 1")

    with pytest.raises(ModelError, match=r"^Kind\(extra\)\.build='head_dim=64': build\.return='text'"):
        list(simple_kind(build=lambda config: "text").generate("demo", Style()))

    slashed = Kind("extra", axes={"head_dim": (64,)}, build=comment_unit,
                   file_name=lambda config: f"../{config.head_dim}.cu")
    with pytest.raises(ModelError, match=r"^Kind\(extra\)\.file_name='head_dim=64': FileName\.text='\.\./64\.cu'"):
        list(slashed.generate("demo", Style()))


# Presets ---------------------------------------------------------------------------------------------


def test_preset_generate_refuses_two_kinds_making_one_file() -> None:
    other = Kind("b", axes={"head_dim": (128,)}, build=comment_unit, file_name="a_hdim{head_dim}.cu")
    clash = Preset("demo", kinds=(simple_kind("a"), other))
    with pytest.raises(ModelError) as error:
        clash.generate()
    assert error.value.value == "a_hdim128.cu"
    assert error.value.problem == "made by both kind a (head_dim=128) and kind b (head_dim=128)"


def test_preset_refuses_two_kinds_with_one_name() -> None:
    with pytest.raises(ModelError, match="two kinds have this name"):
        Preset("demo", kinds=(simple_kind("a"), simple_kind("a", head_dims=(32,))))
    with pytest.raises(ModelError, match="is not a Kind"):
        Preset("demo", kinds=("a",))  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="a preset name is letters"):
        Preset("my preset")


def test_contracts_merge_only_when_shared_headers_agree() -> None:
    header = (PragmaOnce(), ClassDeclaration("Flash_fwd_params"))
    first = Contract({"flash.h": header, "a.h": (PragmaOnce(),)})
    merged = first.merge(Contract({"flash.h": header, "b.h": (PragmaOnce(),)}))
    assert [path.text for path, _ in merged.headers] == ["a.h", "b.h", "flash.h"]
    with pytest.raises(ModelError, match="declared differently by two kinds"):
        first.merge(Contract({"flash.h": (PragmaOnce(),)}))


def test_generated_file_knows_which_generated_files_it_includes() -> None:
    unit = TranslationUnit((Include("flash.h"), Include("a.cu"), Include("b.cpp"), Include("c.cu", angled=True)))
    kind = Kind("all", axes={"part": ("x",)}, build=lambda config: unit, file_name="all_{part}.cu", aggregator=True)
    (generated,) = kind.generate("demo", Style())
    assert generated.included_files() == ("a.cu", "b.cpp")
    assert generated.aggregator


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    head_dims=st.lists(st.integers(1, 512), min_size=1, max_size=6, unique=True),
    flags=st.lists(st.booleans(), min_size=1, max_size=2, unique=True),
    limit=st.integers(0, 512),
)
def test_every_configuration_is_either_generated_or_skipped_with_a_reason(
    head_dims: list[int], flags: list[bool], limit: int
) -> None:
    def over_limit(config: Configuration) -> str | None:
        return f"head_dim {config.head_dim} > {limit}" if config.head_dim > limit else None

    kind = Kind("k", axes={"head_dim": head_dims, "flag": flags}, build=comment_unit, file_name="k_{head_dim}_{flag}.cu",
                constraint=over_limit)
    files = list(kind.generate("p", Style()))
    skipped = kind.skipped()
    assert len(files) + len(skipped) == len(head_dims) * len(flags)
    assert len(files) == kind.count() == len({file.name for file in files})
    assert all(config.head_dim > limit and reason == f"head_dim {config.head_dim} > {limit}"
               for config, reason in skipped)


# The quality bar: a fork's string-template generator, through the public API, byte for byte ----------

# What a fork's generate_kernels.py typically looks like (written for this test): an extra boolean
# template axis, rules between axes, two archs per sm80 file, a guard, an angled and a quoted include,
# and a namespace spelled by a macro.
FORK_FILE = """\
// Copyright (c) 2025, a research fork.
// This file is auto-generated. See "generate_kernels.py"
#include <namespace_config.h>
#include "flash_fwd_launch_template.h"

#ifndef FLASHATTENTION_DISABLE_HDIM{head_dim}
namespace FLASH_NAMESPACE {{

{instantiations}
}} // namespace FLASH_NAMESPACE
#endif
"""
FORK_INSTANTIATION = (
    "template void run_mha_fwd_<{arch}, {element}, {head_dim}, {causal}, {local}>"
    "(Flash_fwd_params &params, cudaStream_t stream);\n"
)


def fork_generator_with_strings() -> dict[str, str]:
    files = {}
    for dtype, head_dim, causal, local, sm in itertools.product(("fp16", "bf16"), (64, 128, 256), ("false", "true"),
                                                                ("false", "true"), (80, 90)):
        if causal == "true" and local == "true":
            continue  # a local window already masks the future
        if local == "true" and head_dim == 256:
            continue  # no local kernel for hdim 256
        instantiations = "".join(
            FORK_INSTANTIATION.format(arch=arch, element=CUTLASS_TYPES[dtype], head_dim=head_dim, causal=causal,
                                      local=local)
            for arch in ((80, 86) if sm == 80 else (90,))
        )
        name = f"flash_fwd_hdim{head_dim}_{dtype}{'_causal' * (causal == 'true')}{'_local' * (local == 'true')}_sm{sm}.cu"
        files[name] = FORK_FILE.format(head_dim=head_dim, instantiations=instantiations)
    return files


def fork_preset_with_the_api() -> Preset:
    parameters = launcher_parameters("Flash_fwd_params")
    run_mha_fwd = FunctionTemplate(
        (ValueParameter("int", "Arch"), TypeParameter("T"), ValueParameter("int", "Headdim"),
         ValueParameter("bool", "Is_causal"), ValueParameter("bool", "Is_local")),
        "void", "run_mha_fwd_", parameters, defined=True,
    )
    # The public FLASH_NAMESPACE pieces the built-in flash-attn-2 preset uses too.
    contract = Contract({
        NAMESPACE_CONFIG_HEADER: namespace_config(),
        "flash_fwd_launch_template.h": (PragmaOnce(), *cuda_stream(), cutlass_types(("fp16", "bf16")),
                                        in_default_flash_namespace(ClassDeclaration("Flash_fwd_params"), run_mha_fwd)),
    })

    def constraint(config: Configuration) -> str | None:
        if config.is_causal and config.is_local:
            return "a local window already masks the future"
        if config.is_local and config.head_dim == 256:
            return "no local kernel for hdim 256"
        return None

    def file_name(config: Configuration) -> str:
        flags = "_causal" * config.is_causal + "_local" * config.is_local
        return f"flash_fwd_hdim{config.head_dim}_{config.dtype}{flags}_sm{config.sm}.cu"

    def build(config: Configuration) -> TranslationUnit:
        instantiations = [
            run_mha_fwd.instantiate(arch, CUTLASS_TYPES[config.dtype], config.head_dim, config.is_causal,
                                    config.is_local)
            for arch in ((80, 86) if config.sm == 80 else (90,))
        ]
        namespace = in_flash_namespace(BlankLine(), *instantiations, BlankLine())
        return TranslationUnit((
            LineComment("Copyright (c) 2025, a research fork."),
            LineComment('This file is auto-generated. See "generate_kernels.py"'),
            Include(NAMESPACE_CONFIG_HEADER, angled=True),
            Include("flash_fwd_launch_template.h"),
            BlankLine(),
            IfNotDefined(f"FLASHATTENTION_DISABLE_HDIM{config.head_dim}", (namespace,)),
        ))

    axes: dict[str, Sequence[AxisValue]] = {"dtype": ("fp16", "bf16"), "head_dim": (64, 128, 256),
                                            "is_causal": (False, True), "is_local": (False, True), "sm": (80, 90)}
    kind = Kind("fwd", axes=axes, build=build, file_name=file_name, contract=contract, constraint=constraint)
    return Preset("fork", kinds=(kind,))


def test_a_string_template_fork_generator_is_expressible_byte_for_byte_and_verifies() -> None:
    expected = fork_generator_with_strings()
    files: list[GeneratedFile] = fork_preset_with_the_api().generate()
    assert {file.name: file.text for file in files} == expected
    assert len(expected) == 32
    report = verify(files)
    assert report.files == 32 and not report.errors and not report.warnings


def test_a_file_forgetting_namespace_config_fails_verification() -> None:
    """The FLASH_NAMESPACE pieces are declared so that forgetting `namespace_config.h` is caught."""
    (good,) = [file for file in fork_preset_with_the_api().generate() if file.name == "flash_fwd_hdim64_fp16_sm90.cu"]
    forgetful = dataclasses.replace(good, unit=TranslationUnit(
        node for node in good.unit.declarations if node != Include(NAMESPACE_CONFIG_HEADER, angled=True)))
    assert verify([good]).errors == []
    with pytest.raises(VerificationError):
        verify([forgetful])


# Configurations -----------------------------------------------------------------------------------------


def test_axes_never_hide_the_configurations_own_methods() -> None:
    """An axis named like a method is read with `config[name]`; the attribute stays the method."""
    pairs = (("head_dim", 64), ("get", 1), ("items", 2), ("keys", 3), ("pairs", 4))
    config = Configuration(pairs)
    assert (config.head_dim, config["get"], config["items"], config["keys"], config["pairs"]) == (64, 1, 2, 3, 4)
    assert config.get("get", None) == 1 and config.get("head_dim_v", 128) == 128
    assert list(config.keys()) == ["head_dim", "get", "items", "keys", "pairs"] == list(config)
    assert config.items() == pairs == config.pairs
    assert {**config} == dict(pairs) and "get" in config and "sm" not in config and len(config) == 5
    assert config == Configuration(pairs) and len({config, Configuration(pairs)}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pairs = ()  # type: ignore[misc]
    with pytest.raises(ModelError, match="an axis appears twice"):
        Configuration((("head_dim", 64), ("head_dim", 128)))


def test_reading_an_axis_the_kind_does_not_have_is_an_error_naming_its_axes() -> None:
    config = RULED.configuration(dtype="bf16", head_dim=64, is_causal=True)
    with pytest.raises(AttributeError) as attribute:
        _ = config.head_dim_v
    assert str(attribute.value) == "configuration has no axis 'head_dim_v' (its axes: dtype, head_dim, is_causal)"
    with pytest.raises(KeyError, match="no axis 'sm' \\(its axes: dtype, head_dim, is_causal\\)"):
        _ = config["sm"]
    # The default is required, so a missing axis is never silently None; 0.1.0's `get(axis)` still
    # returns None until 0.3.0, with a warning.
    with pytest.warns(DeprecationWarning, match=r"Configuration.get\(axis\) without a default is deprecated"
                      r" .*; write config.get\(axis, None\)"):
        assert config.get("sm") is None
    with pytest.warns(DeprecationWarning):
        assert config.get("dtype") == "bf16"
    assert config.get("sm", 80) == 80


def test_a_bool_axis_in_a_file_name_pattern_is_spelled_as_filters_spell_it() -> None:
    kind = Kind("k", axes={"is_causal": (False, True), "head_dim": (64,), "dtype": ("bf16",)}, build=comment_unit,
                file_name="f_{head_dim:03d}_{dtype}_{is_causal}.cu")
    assert [file.name for file in kind.generate("demo", Style())] == ["f_064_bf16_false.cu", "f_064_bf16_true.cu"]
    assert kind.name_for(is_causal=True, head_dim=128, dtype="fp16") == "f_128_fp16_true.cu"


# Aggregators --------------------------------------------------------------------------------------------


def test_an_aggregator_includes_only_the_member_files_that_exist() -> None:
    member = Kind("fwd", axes={"head_dim": (64, 128, 256), "dtype": ("fp16", "bf16")}, build=comment_unit,
                  file_name="fwd_{head_dim}_{dtype}.cu",
                  constraint=lambda config: "no bf16 at 256" if (config.dtype, config.head_dim) == ("bf16", 256) else
                  "no 128 kernels" if config.head_dim == 128 else None)
    everything = aggregator_kind(
        "fwd_all", axes={"group": ("all", "wide"), "dtype": ("fp16", "bf16")}, member=member,
        file_name="fwd_{group}_{dtype}.cu", prelude=(LineComment("aggregated"),),
        members=lambda config: [{"head_dim": head_dim, "dtype": config.dtype}
                                for head_dim in ((64, 128, 256) if config.group == "all" else (128, 256))],
    )
    assert everything.aggregator and everything.contract == member.contract
    files = {file.name: file for file in Preset("demo", kinds=(member, everything)).generate()}
    assert files["fwd_all_fp16.cu"].included_files() == ("fwd_64_fp16.cu", "fwd_256_fp16.cu")
    assert files["fwd_all_fp16.cu"].text == '// aggregated\n#include "fwd_64_fp16.cu"\n#include "fwd_256_fp16.cu"\n'
    assert files["fwd_all_bf16.cu"].included_files() == ("fwd_64_bf16.cu",)
    assert files["fwd_wide_fp16.cu"].included_files() == ("fwd_256_fp16.cu",)
    # No member exists: the aggregator is skipped for the first candidate's reason.
    assert everything.skip_reason(group="wide", dtype="bf16") == "no 128 kernels"
    assert "fwd_wide_bf16.cu" not in files
