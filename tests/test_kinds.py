"""The kernel-kind API in-process: kinds, constraints and their reasons, presets, the registry.

Registries here are fresh (`Registry()` or `Registry(builtins=False)`), so no test sees another's
kinds. The last test is the quality bar of the extension API: a string-template generator of the
flash-attention family, re-expressed through the public API, byte for byte, and verified by libclang.
"""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    MacroDefinition,
    MacroName,
    ModelError,
    Namespace,
    PluginError,
    PragmaOnce,
    Preset,
    Registry,
    Style,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
    default_registry,
)
from flashast.axes import AxisValue
from flashast.generated import GeneratedFile
from flashast.registry import Origin
from flashast.presets.common import CUTLASS_TYPES, cuda_stream, cutlass_types, launcher_parameters
from flashast.verify import verify


def comment_unit(config: Configuration) -> TranslationUnit:
    """A file whose only line names its configuration: enough for registry tests."""
    return TranslationUnit((LineComment(config.describe()),))


def simple_kind(
    name: str = "extra", head_dims: Sequence[int] = (64, 128), build: object = comment_unit, **options: object
) -> Kind:
    return Kind(name, {"head_dim": tuple(head_dims)}, build, f"{name}_hdim{{head_dim}}.cu", **options)  # type: ignore[arg-type]


# Registries ------------------------------------------------------------------------------------------


def test_fresh_registries_do_not_share_kinds() -> None:
    first, second = Registry(), Registry()
    first.add_kind("pytorch", simple_kind())
    assert [kind.name for kind in first.preset("pytorch").kinds] == ["fwd", "bwd", "fwd_split", "extra"]
    assert [kind.name for kind in second.preset("pytorch").kinds] == ["fwd", "bwd", "fwd_split"]
    assert "extra" not in [kind.name for kind in default_registry.preset("pytorch").kinds]
    assert Registry(builtins=False).preset_names() == []
    assert second.preset_names() == ["flash-attn-2", "flash-attn-3", "pytorch"]


def test_import_of_flashast_builds_no_preset_and_loads_no_libclang() -> None:
    probe = (
        "import sys, flashast\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('flashast.presets', 'flashast.verify', 'clang')))\n"
        "print(loaded)\n"
        "print(flashast.default_registry.preset_names())\n"
        "print(sorted(m for m in sys.modules if m.startswith('flashast.presets.')))\n"
        "flashast.default_registry.preset('flash-attn-2')\n"
        "print(sorted(m for m in sys.modules if m.startswith('flashast.presets.')))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600, check=True)
    assert completed.stdout.splitlines() == [
        "[]",
        "['flash-attn-2', 'flash-attn-3', 'pytorch']",
        "[]",  # naming the presets loads none of them
        "['flashast.presets.common', 'flashast.presets.flash_attn_2']",  # asking for one loads only it
    ]


def test_preset_name_collision_names_who_registered_first() -> None:
    registry = Registry()
    with pytest.raises(PluginError) as built_in:
        registry.add_preset(Preset("pytorch"))
    assert str(built_in.value) == "preset 'pytorch' already exists (first registered: built-in)"
    with registry.origin(Origin("file a.py")):
        registry.add_preset(Preset("mine"))
    with registry.origin(Origin("file b.py")), pytest.raises(PluginError) as plugin:
        registry.add_preset(Preset("mine"))
    assert str(plugin.value) == "preset 'mine' already exists (first registered: file a.py)"


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
    assert str(error.value) == "unknown preset 'pytorh' (known: flash-attn-2, flash-attn-3, pytorch)"


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
    registry.add_preset(Preset("fork", Style(final_newline=False)))

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


# Kinds and constraints -------------------------------------------------------------------------------

AXES = {"dtype": ("fp16", "bf16", "e4m3"), "head_dim": (64, 80, 128), "is_causal": (False, True)}


def head_dim_rule(config: Configuration) -> str | None:
    if config.head_dim % 32:
        return "head_dim must be a multiple of 32"
    if config.dtype == "e4m3" and config.is_causal:
        return "e4m3 has no causal kernel"
    return None


def causal_name(config: Configuration) -> str:
    return f"fwd_hdim{config.head_dim}_{config.dtype}{'_causal' if config.is_causal else ''}.cu"


RULED = Kind("fwd", AXES, comment_unit, causal_name, constraint=head_dim_rule)


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
        ({"contract": {"flash.h": ()}}, "must be a Contract"),
    ],
)
def test_invalid_kinds_are_refused(arguments: dict[str, object], problem: str) -> None:
    fields: dict[str, object] = {"name": "fwd", "axes": {"head_dim": (64,)}, "build": comment_unit,
                                 "file_name": "f{head_dim}.cu", **arguments}
    with pytest.raises(ModelError) as error:
        Kind(**fields)  # type: ignore[arg-type]
    assert error.value.problem == problem


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

    slashed = Kind("extra", {"head_dim": (64,)}, comment_unit, lambda config: f"sub/{config.head_dim}.cu")
    with pytest.raises(ModelError, match=r"^Kind\(extra\)\.file_name='head_dim=64': FileName\.text='sub/64\.cu'"):
        list(slashed.generate("demo", Style()))
    with pytest.raises(ModelError, match="cannot format"):
        list(Kind("extra", {"head_dim": (64,)}, comment_unit, "{hdim}.cu").generate("demo", Style()))


# Presets ---------------------------------------------------------------------------------------------


def test_preset_generate_refuses_two_kinds_making_one_file() -> None:
    clash = Preset("demo", kinds=(simple_kind("a"), Kind("b", {"head_dim": (128,)}, comment_unit, "a_hdim{head_dim}.cu")))
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
    kind = Kind("all", {"part": ("x",)}, lambda config: unit, "all_{part}.cu", aggregator=True)
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

    kind = Kind("k", {"head_dim": head_dims, "flag": flags}, comment_unit, "k_{head_dim}_{flag:d}.cu",
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
    contract = Contract({
        "namespace_config.h": (PragmaOnce(), MacroDefinition("FLASH_NAMESPACE", "flash")),
        "flash_fwd_launch_template.h": (PragmaOnce(), *cuda_stream(), cutlass_types(("fp16", "bf16")),
                                        Namespace("flash", (ClassDeclaration("Flash_fwd_params"), run_mha_fwd))),
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
        namespace = Namespace(MacroName("FLASH_NAMESPACE"), (BlankLine(), *instantiations, BlankLine()))
        return TranslationUnit((
            LineComment("Copyright (c) 2025, a research fork."),
            LineComment('This file is auto-generated. See "generate_kernels.py"'),
            Include("namespace_config.h", angled=True),
            Include("flash_fwd_launch_template.h"),
            BlankLine(),
            IfNotDefined(f"FLASHATTENTION_DISABLE_HDIM{config.head_dim}", (namespace,)),
        ))

    axes: dict[str, Sequence[AxisValue]] = {"dtype": ("fp16", "bf16"), "head_dim": (64, 128, 256),
                                            "is_causal": (False, True), "is_local": (False, True), "sm": (80, 90)}
    return Preset("fork", Style(), kinds=(Kind("fwd", axes, build, file_name, contract, constraint),))


def test_a_string_template_fork_generator_is_expressible_byte_for_byte_and_verifies() -> None:
    expected = fork_generator_with_strings()
    files: list[GeneratedFile] = fork_preset_with_the_api().generate()
    assert {file.name: file.text for file in files} == expected
    assert len(expected) == 32
    report = verify(files)
    assert report.files == 32 and not report.errors and not report.warnings


def test_axes_read_as_attributes_never_hide_the_mapping_or_its_fields() -> None:
    """Axes are also attributes, except those named like the mapping's own methods and fields."""
    config = Configuration((("head_dim", 64), ("get", 1), ("items_", 2), ("keys", 3)))
    assert (config.head_dim, config["get"], config["items_"], config["keys"]) == (64, 1, 2, 3)
    assert config.get("head_dim") == 64 and list(config.keys()) == ["head_dim", "get", "items_", "keys"]
    assert config.items_ == (("head_dim", 64), ("get", 1), ("items_", 2), ("keys", 3))
    assert config == Configuration((("head_dim", 64), ("get", 1), ("items_", 2), ("keys", 3)))
    assert len({config, Configuration((("head_dim", 64), ("get", 1), ("items_", 2), ("keys", 3)))}) == 1
    with pytest.raises(AttributeError, match="no axis 'head_dim_v'"):
        _ = config.head_dim_v
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.head_dim = 128  # type: ignore[misc]
