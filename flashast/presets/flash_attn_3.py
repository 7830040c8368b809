"""The `flash-attn-3` preset: flash-attention 3's kernel instantiation files (450 files).

Byte for byte what Dao-AILab/flash-attention `hopper/generate_kernels.py` writes (the generator as of
"Support hdim 64,256", which added the 64/256 and 64/512 head-dimension pairs), in two families:

- kernel files: `fwd` explicitly instantiates `run_mha_fwd_<Arch, T, D, Dv, Split, PagedKV, Softcap,
  PackGQA>` (defined in the forward launch header); `bwd` explicitly specializes `run_mha_bwd_<Arch,
  T, D, Softcap>` to forward to `run_mha_bwd_hdimD<Arch, T, Softcap>`. Each file is guarded by
  `#ifndef FLASHATTENTION_DISABLE_HDIM{D}`; an `sm80` file serves both Ampere archs, so it holds two
  instantiations (arch 80, then 86) inside an outer `#ifndef FLASHATTENTION_DISABLE_SM8x`;
- aggregators (`fwd_hdimall`, `fwd_hdimdiff`, `fwd_softcapall`, `bwd_softcapall`): files that only
  `#include` kernel files of this preset, so a build can compile fewer, larger translation units.
  Build systems compile either the aggregators or their members, never both. By default flashast
  lists what upstream's `hopper/setup.py` compiles (at 0251105a, as since 199401d3, August 2025): the
  `softcapall` aggregators (sm80 forward, sm90 backward) and, for the sm90 forward pass, the members
  (from January to August 2025 it compiled the `hdimall`/`hdimdiff` aggregators instead, which
  `--compile aggregators` still does).

The rules upstream encodes in `if`s are the kinds' constraints, each with its reason: e4m3 exists only
for the sm90 forward pass; sm80 kernels always pack GQA and split/paged sm90 kernels force it on, so
only unsplit, unpaged sm90 files have a `_packgqa` variant; head_dim_v differs from head_dim only for
the sm90 pairs 64/256, 64/512 (fp16, bf16) and 192/128 (every dtype).

Parity quirks of this generator: no namespace; the file name puts `_paged` before `_split` while the
template puts Split before PagedKV; the guard names the QK head dimension only (`192_128` is guarded
by `..._HDIM192`); the PackGQA template argument is forced on where the name says nothing; kernel
files end with a newline, aggregators do not (`Style(insert_newline_at_eof=False)` on the aggregator kinds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from flashast.axes import AxisValue, Configuration
from flashast.contract import Contract
from flashast.kinds import Kind, Preset
from flashast.nodes import (
    BlankLine,
    ClassDeclaration,
    Declaration,
    FunctionTemplate,
    IfNotDefined,
    Include,
    LineComment,
    PragmaOnce,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
)
from flashast.presets.common import (
    CUTLASS_TYPES,
    MemberValues,
    aggregator_kind,
    cuda_stream,
    cutlass_types,
    launcher_parameters,
)
from flashast.style import Style

PRESET_NAME = "flash-attn-3"
DTYPES = ("fp16", "bf16", "e4m3")
HEAD_DIMS = (64, 96, 128, 192, 256)
HEAD_DIMS_V = (64, 96, 128, 192, 256, 512)
# The (head_dim, head_dim_v) pairs with head_dim_v != head_dim, in the order `fwd_hdimdiff` includes them.
DIFFERENT_HEAD_DIM_PAIRS = ((64, 256), (64, 512), (192, 128))
FP8_HEAD_DIM_PAIRS = ((192, 128),)
FLAGS = (False, True)
SMS = (80, 90)
# The archs one file instantiates: an sm80 file serves sm80 and sm86.
ARCHS_OF_SM: Mapping[int, tuple[int, ...]] = {80: (80, 86), 90: (90,)}

FLASH_HEADER = "flash.h"
FWD_LAUNCH_HEADER = "flash_fwd_launch_template.h"
BWD_LAUNCH_HEADER = "flash_bwd_launch_template.h"
DISABLE_SM8X_MACRO = "FLASHATTENTION_DISABLE_SM8x"

STYLE = Style()
# flash-attention 3's generator joins an aggregator's includes with newlines and adds none at the end.
AGGREGATOR_STYLE = Style(insert_newline_at_eof=False)

FWD_PARAMETERS = launcher_parameters("Flash_fwd_params")
BWD_PARAMETERS = launcher_parameters("Flash_bwd_params")

RUN_MHA_FWD_DECLARATION = FunctionTemplate(
    (
        ValueParameter("int", "Arch"),
        TypeParameter("T"),
        ValueParameter("int", "kHeadDim"),
        ValueParameter("int", "kHeadDimV"),
        ValueParameter("bool", "Split"),
        ValueParameter("bool", "PagedKVNonTMA"),
        ValueParameter("bool", "Has_softcap"),
        ValueParameter("bool", "PackGQA"),
    ),
    "void",
    "run_mha_fwd_",
    FWD_PARAMETERS,
)
# flash_fwd_launch_template.h defines the primary, which is what lets the fwd files instantiate it.
RUN_MHA_FWD = replace(RUN_MHA_FWD_DECLARATION, defined=True)
# Declared in flash.h and never defined: every definition is a specialization in a bwd file.
RUN_MHA_BWD = FunctionTemplate(
    (
        ValueParameter("int", "Arch"),
        TypeParameter("T"),
        ValueParameter("int", "kHeadDim"),
        ValueParameter("bool", "Has_softcap"),
    ),
    "void",
    "run_mha_bwd_",
    BWD_PARAMETERS,
)


def run_mha_bwd_hdim(head_dim: int) -> FunctionTemplate:
    """`run_mha_bwd_hdimD<Arch, T, Has_softcap>`, the backward launcher for one head dimension."""
    return FunctionTemplate(
        (ValueParameter("int", "Arch"), TypeParameter("T"), ValueParameter("bool", "Has_softcap")),
        "void",
        f"run_mha_bwd_hdim{head_dim}",
        BWD_PARAMETERS,
        defined=True,
    )


CONTRACT = Contract(
    {
        FLASH_HEADER: (
            PragmaOnce(),
            *cuda_stream(),
            cutlass_types(DTYPES),
            ClassDeclaration("Flash_fwd_params"),
            ClassDeclaration("Flash_bwd_params"),
            RUN_MHA_FWD_DECLARATION,
            RUN_MHA_BWD,
        ),
        FWD_LAUNCH_HEADER: (PragmaOnce(), Include(FLASH_HEADER), RUN_MHA_FWD),
        BWD_LAUNCH_HEADER: (
            PragmaOnce(),
            Include(FLASH_HEADER),
            *(run_mha_bwd_hdim(head_dim) for head_dim in HEAD_DIMS),
        ),
    }
)

PRELUDE = (
    LineComment(
        "Copyright (c) 2024, Jay Shah, Ganesh Bikshandi, Ying Zhang, Vijay Thakkar, Pradeep Ramani, Tri Dao."
    ),
    LineComment("Splitting the different template instantiations to different files to speed up compilation."),
    LineComment('This file is auto-generated. See "generate_kernels.py"'),
    BlankLine(),
)


# File names -------------------------------------------------------------------------------------

# The flags a file name spells, in file-name order (paged before split, unlike the template's order).
FILE_NAME_FLAGS = ("paged", "split", "softcap", "packgqa")


def _flag_suffix(config: Configuration, axis: str) -> str:
    """`_softcap` for a set flag, `_softcapall` for an aggregator over it, nothing otherwise."""
    value = config.get(axis, False)
    if value is True:
        return f"_{axis}"
    if value == "all":
        return f"_{axis}all"
    return ""


def file_name_rule(direction: str) -> Callable[[Configuration], str]:
    """The names of kind `direction`: `flash_fwd_hdim192_128_e4m3_paged_split_softcap_sm90.cu`,
    `flash_fwd_hdimall_bf16_sm90.cu`, `flash_bwd_hdim64_fp16_softcapall_sm90.cu`."""

    def file_name(config: Configuration) -> str:
        head_dims = f"hdim{config.head_dim}"
        head_dim_v = config.get("head_dim_v", config.head_dim)
        if head_dim_v != config.head_dim:
            head_dims += f"_{head_dim_v}"
        flags = "".join(_flag_suffix(config, axis) for axis in FILE_NAME_FLAGS)
        return f"flash_{direction}_{head_dims}_{config.dtype}{flags}_sm{config.sm}.cu"

    return file_name


# Kernel files -----------------------------------------------------------------------------------


def fwd_constraint(config: Configuration) -> str | None:
    """Why upstream has no forward kernel for `config`, or None when it has one."""
    if config.sm == 80 and config.dtype == "e4m3":
        return "e4m3 has no sm80 kernels"
    pair = (config.head_dim, config.head_dim_v)
    if config.head_dim_v != config.head_dim and pair not in DIFFERENT_HEAD_DIM_PAIRS:
        return f"head_dim_v {config.head_dim_v} pairs with head_dim {config.head_dim} in no kernel"
    if config.sm == 80:
        if config.head_dim_v != config.head_dim:
            return "sm80 has no kernels with head_dim_v != head_dim"
        if config.packgqa:
            return "sm80 kernels always pack GQA, so there is no separate packgqa file"
    elif config.packgqa and (config.split or config.paged):
        return "packgqa is forced on for split/paged, so there is no separate packgqa file"
    if config.dtype == "e4m3" and config.head_dim_v != config.head_dim and pair not in FP8_HEAD_DIM_PAIRS:
        return f"e4m3 has no head_dim {config.head_dim} / head_dim_v {config.head_dim_v} kernels"
    return None


def bwd_constraint(config: Configuration) -> str | None:
    """Why upstream has no backward kernel for `config`, or None when it has one."""
    if config.dtype == "e4m3":
        return "e4m3 has no backward kernels"
    return None


def packgqa_template_argument(config: Configuration) -> bool:
    """The PackGQA template argument: forced on for sm80, and for split or paged sm90 kernels."""
    if config.sm == 80:
        return True
    return bool(config.packgqa or config.paged or config.split)


def _kernel_file(launch_header: str, config: Configuration, definitions: Sequence[Declaration]) -> TranslationUnit:
    """The prelude, the launch header, and `definitions` guarded by the head-dimension (and sm8x) switch."""
    guarded = IfNotDefined(f"FLASHATTENTION_DISABLE_HDIM{config.head_dim}", tuple(definitions))
    if config.sm == 80:
        guarded = IfNotDefined(DISABLE_SM8X_MACRO, (guarded,))
    return TranslationUnit((*PRELUDE, Include(launch_header), BlankLine(), guarded))


def build_fwd(config: Configuration) -> TranslationUnit:
    element = CUTLASS_TYPES[config.dtype]
    instantiations = [
        RUN_MHA_FWD.instantiate(
            arch,
            element,
            config.head_dim,
            config.head_dim_v,
            config.split,
            config.paged,
            config.softcap,
            packgqa_template_argument(config),
        )
        for arch in ARCHS_OF_SM[config.sm]
    ]
    return _kernel_file(FWD_LAUNCH_HEADER, config, instantiations)


def build_bwd(config: Configuration) -> TranslationUnit:
    element = CUTLASS_TYPES[config.dtype]
    launcher = run_mha_bwd_hdim(config.head_dim)
    specializations = [
        RUN_MHA_BWD.specialize(
            arch, element, config.head_dim, config.softcap, body=[launcher.call(arch, element, config.softcap)]
        )
        for arch in ARCHS_OF_SM[config.sm]
    ]
    return _kernel_file(BWD_LAUNCH_HEADER, config, specializations)


FWD_AXES: dict[str, Sequence[AxisValue]] = {
    "dtype": DTYPES,
    "head_dim": HEAD_DIMS,
    "head_dim_v": HEAD_DIMS_V,
    "split": FLAGS,
    "paged": FLAGS,
    "softcap": FLAGS,
    "packgqa": FLAGS,
    "sm": SMS,
}
BWD_AXES: dict[str, Sequence[AxisValue]] = {"dtype": DTYPES, "head_dim": HEAD_DIMS, "softcap": FLAGS, "sm": SMS}

def architectures(config: Configuration) -> tuple[str, ...]:
    """What a file is built for: sm80 files for sm_80 and sm_86, sm90 files for sm_90a (the
    architecture-specific features the Hopper kernels use)."""
    return tuple(f"sm_{arch}a" if arch == 90 else f"sm_{arch}" for arch in ARCHS_OF_SM[config.sm])


FWD = Kind(
    "fwd", axes=FWD_AXES, build=build_fwd, file_name=file_name_rule("fwd"), contract=CONTRACT,
    constraint=fwd_constraint, architectures=architectures,
    description="run_mha_fwd_<Arch, T, D, Dv, Split, PagedKV, Softcap, PackGQA> instantiations",
)
BWD = Kind(
    "bwd", axes=BWD_AXES, build=build_bwd, file_name=file_name_rule("bwd"), contract=CONTRACT,
    constraint=bwd_constraint, architectures=architectures,
    description="run_mha_bwd_<Arch, T, D, Softcap> specializations",
)


# Aggregators ------------------------------------------------------------------------------------

def aggregator(
    name: str, axes: Mapping[str, Sequence[AxisValue]], member: Kind, members: MemberValues, description: str,
    *, compiled_by_default: bool,
) -> Kind:
    """An aggregator over `member`'s files, named like them, in the prelude and style upstream gives it;
    `compiled_by_default`: whether upstream's setup.py compiles it rather than its members."""
    return aggregator_kind(
        name, axes=axes, member=member, members=members, file_name=file_name_rule(member.name),
        prelude=PRELUDE, style=AGGREGATOR_STYLE, description=description, compiled_by_default=compiled_by_default,
    )


def fwd_members_over_head_dims(pairs: Sequence[tuple[int, int]]) -> MemberValues:
    """The sm90 forward files of one (dtype, split, paged, softcap, packgqa) for each of `pairs`."""

    def members(config: Configuration) -> list[dict[str, AxisValue]]:
        return [{**config, "head_dim": head_dim, "head_dim_v": head_dim_v} for head_dim, head_dim_v in pairs]

    return members


def fwd_members_over_softcap(config: Configuration) -> list[dict[str, AxisValue]]:
    """The sm80 forward files of one (dtype, head_dim, split, paged), without then with softcap."""
    return [{**config, "head_dim_v": config.head_dim, "softcap": softcap} for softcap in FLAGS]


def bwd_members_over_softcap(config: Configuration) -> list[dict[str, AxisValue]]:
    """The backward files of one (dtype, head_dim, sm), without then with softcap."""
    return [{**config, "softcap": softcap} for softcap in FLAGS]


def _fwd_aggregate_axes(**aggregated: Sequence[AxisValue]) -> dict[str, Sequence[AxisValue]]:
    """The forward axes without head_dim_v, with the aggregated axes' values replaced."""
    return {axis: aggregated.get(axis, values) for axis, values in FWD_AXES.items() if axis != "head_dim_v"}


FWD_HDIMALL = aggregator(
    "fwd_hdimall",
    _fwd_aggregate_axes(head_dim=("all",), sm=(90,)),
    FWD,
    fwd_members_over_head_dims([(head_dim, head_dim) for head_dim in HEAD_DIMS]),
    "sm90 forward files with head_dim_v == head_dim, every head_dim in one file",
    # setup.py compiles the members since 199401d3: these translation units grew too large to build.
    compiled_by_default=False,
)
FWD_HDIMDIFF = aggregator(
    "fwd_hdimdiff",
    _fwd_aggregate_axes(head_dim=("diff",), sm=(90,)),
    FWD,
    fwd_members_over_head_dims(DIFFERENT_HEAD_DIM_PAIRS),
    "sm90 forward files with head_dim_v != head_dim, every pair in one file",
    compiled_by_default=False,
)
FWD_SOFTCAPALL = aggregator(
    "fwd_softcapall",
    _fwd_aggregate_axes(softcap=("all",), packgqa=(False,), sm=(80,)),
    FWD,
    fwd_members_over_softcap,
    "sm80 forward files, with and without softcap in one file",
    compiled_by_default=True,
)
BWD_SOFTCAPALL = aggregator(
    "bwd_softcapall",
    {**BWD_AXES, "softcap": ("all",), "sm": (90,)},
    BWD,
    bwd_members_over_softcap,
    "sm90 backward files, with and without softcap in one file",
    compiled_by_default=True,
)

KINDS = (FWD, BWD, FWD_HDIMALL, FWD_HDIMDIFF, FWD_SOFTCAPALL, BWD_SOFTCAPALL)


PRESET = Preset(
    PRESET_NAME, style=STYLE, description="flash-attention 3 (Dao-AILab/flash-attention hopper)", kinds=KINDS,
    revision="0251105a", upstream="Dao-AILab/flash-attention hopper/generate_kernels.py",
)
