"""The `flash-attn-2` preset: flash-attention 2's kernel instantiation files, in two revisions.

- `flash-attn-2` (`flash-attn-2@0251105a`, 96 files): byte for byte what Dao-AILab/flash-attention
  `csrc/flash_attn/src/generate_kernels.py` writes at commit 0251105a, the generator as of
  "Parallelize splitkv alignment templated kernels", which added `fwd_split_align`;
- `flash-attn-2@v2.8.3` (72 files): what the same generator wrote in the v2.8.3 release, the tree the
  flash-attn 2.8.3 source distribution ships and builds: no `fwd_split_align` kind, and `fwd_split`
  files without the `extern template` line, since 2.8.3's launch header has no
  `run_mha_fwd_splitkv_align`. Its contract says so, so a file naming that template fails
  verification against the 2.8.3 contract as it fails against the real 2.8.3 headers.

The kinds, over fp16/bf16, six head dimensions, causal or not, sm80:

- `fwd`, `bwd`: explicit specializations of `run_mha_fwd_<T, D, C>` / `run_mha_bwd_<T, D, C>` that
  forward to the per-head-dimension launcher `run_mha_{fwd,bwd}_hdimD<T, C>`;
- `fwd_split`: an explicit instantiation of `run_mha_fwd_splitkv_dispatch<T, D, C>`, preceded by an
  explicit instantiation *declaration* of `run_mha_fwd_splitkv_align<T, D, C>` so the dispatch does
  not instantiate the aligned tree again;
- `fwd_split_align`: the explicit instantiation of that aligned tree, in its own file so it compiles
  in parallel (not in v2.8.3).

Parity quirks of this generator: the files have no final newline (`Style(insert_newline_at_eof=False)`); the
namespace is spelled with the `FLASH_NAMESPACE` macro, which `namespace_config.h` defines (to `flash`
by default) and which every file includes first; `sm80` appears only in the file name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from flashast.axes import AxisValue, Configuration
from flashast.contract import Contract
from flashast.kinds import Kind, Preset
from flashast.nodes import (
    BlankLine,
    ClassDeclaration,
    Declaration,
    FunctionTemplate,
    Include,
    LineComment,
    PragmaOnce,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
)
from flashast.presets.common import (
    CUTLASS_TYPES,
    NAMESPACE_CONFIG_HEADER,
    cuda_stream,
    cutlass_types,
    in_default_flash_namespace,
    in_flash_namespace,
    launcher_parameters,
    namespace_config,
)
from flashast.style import Style

PRESET_NAME = "flash-attn-2"
DTYPES = ("fp16", "bf16")
HEAD_DIMS = (32, 64, 96, 128, 192, 256)
CAUSALITIES = (False, True)
ARCHS = (80,)
AXES: dict[str, Sequence[AxisValue]] = {"dtype": DTYPES, "head_dim": HEAD_DIMS, "is_causal": CAUSALITIES, "sm": ARCHS}

FLASH_HEADER = "flash.h"
FWD_LAUNCH_HEADER = "flash_fwd_launch_template.h"
BWD_LAUNCH_HEADER = "flash_bwd_launch_template.h"

# flash-attention 2's generator writes no newline after the namespace's closing line.
STYLE = Style(insert_newline_at_eof=False)

FWD_PARAMETERS = launcher_parameters("Flash_fwd_params")
BWD_PARAMETERS = launcher_parameters("Flash_bwd_params")
ELEMENT_HEAD_DIM_CAUSAL = (TypeParameter("T"), ValueParameter("int", "Headdim"), ValueParameter("bool", "Is_causal"))
ELEMENT_CAUSAL = (TypeParameter("T"), ValueParameter("bool", "Is_causal"))

# Declared in flash.h; only the generated files define (specialize) the first two.
RUN_MHA_FWD = FunctionTemplate(ELEMENT_HEAD_DIM_CAUSAL, "void", "run_mha_fwd_", FWD_PARAMETERS)
RUN_MHA_BWD = FunctionTemplate(ELEMENT_HEAD_DIM_CAUSAL, "void", "run_mha_bwd_", BWD_PARAMETERS)
RUN_MHA_FWD_SPLITKV_DISPATCH_DECLARATION = FunctionTemplate(
    ELEMENT_HEAD_DIM_CAUSAL, "void", "run_mha_fwd_splitkv_dispatch", FWD_PARAMETERS
)
# Defined in flash_fwd_launch_template.h, which is what lets the files instantiate them.
RUN_MHA_FWD_SPLITKV_DISPATCH = replace(RUN_MHA_FWD_SPLITKV_DISPATCH_DECLARATION, defined=True)
RUN_MHA_FWD_SPLITKV_ALIGN = FunctionTemplate(
    ELEMENT_HEAD_DIM_CAUSAL, "void", "run_mha_fwd_splitkv_align", FWD_PARAMETERS, defined=True
)


def run_mha_fwd_hdim(head_dim: int) -> FunctionTemplate:
    """`run_mha_fwd_hdimD<T, Is_causal>`, the forward launcher for one head dimension."""
    return FunctionTemplate(ELEMENT_CAUSAL, "void", f"run_mha_fwd_hdim{head_dim}", FWD_PARAMETERS, defined=True)


def run_mha_bwd_hdim(head_dim: int) -> FunctionTemplate:
    """`run_mha_bwd_hdimD<T, Is_causal>`, the backward launcher for one head dimension."""
    return FunctionTemplate(ELEMENT_CAUSAL, "void", f"run_mha_bwd_hdim{head_dim}", BWD_PARAMETERS, defined=True)


def contract(aligned_tree: bool) -> Contract:
    """What the files rely on; `aligned_tree`: whether the forward launch header defines
    `run_mha_fwd_splitkv_align` (upstream after the v2.8.3 release)."""
    aligned = (RUN_MHA_FWD_SPLITKV_ALIGN,) if aligned_tree else ()
    return Contract(
        {
            NAMESPACE_CONFIG_HEADER: namespace_config(),
            FLASH_HEADER: (
                PragmaOnce(),
                Include(NAMESPACE_CONFIG_HEADER),
                *cuda_stream(),
                cutlass_types(DTYPES),
                in_default_flash_namespace(
                    ClassDeclaration("Flash_fwd_params"),
                    ClassDeclaration("Flash_bwd_params"),
                    RUN_MHA_FWD,
                    RUN_MHA_FWD_SPLITKV_DISPATCH_DECLARATION,
                    RUN_MHA_BWD,
                ),
            ),
            FWD_LAUNCH_HEADER: (
                PragmaOnce(),
                Include(NAMESPACE_CONFIG_HEADER),
                Include(FLASH_HEADER),
                in_default_flash_namespace(
                    *aligned,
                    RUN_MHA_FWD_SPLITKV_DISPATCH,
                    *(run_mha_fwd_hdim(head_dim) for head_dim in HEAD_DIMS),
                ),
            ),
            BWD_LAUNCH_HEADER: (
                PragmaOnce(),
                Include(NAMESPACE_CONFIG_HEADER),
                Include(FLASH_HEADER),
                in_default_flash_namespace(*(run_mha_bwd_hdim(head_dim) for head_dim in HEAD_DIMS)),
            ),
        }
    )


CONTRACT = contract(aligned_tree=True)
RELEASE_2_8_3_CONTRACT = contract(aligned_tree=False)

PRELUDE = (
    LineComment("Copyright (c) 2024, Tri Dao."),
    LineComment("Splitting the different head dimensions to different files to speed up compilation."),
    LineComment('This file is auto-generated. See "generate_kernels.py"'),
    Include(NAMESPACE_CONFIG_HEADER),
)

# Why `fwd_split` declares the aligned instantiation extern, as the upstream files explain it.
EXTERN_ALIGN_EXPLANATION = (
    LineComment("The num_splits==1 blocksize-aligned tree is instantiated in its own translation unit"),
    LineComment("(flash_fwd_split_align_*.cu) so it compiles in parallel; declare it extern so"),
    LineComment("the dispatch below references it instead of re-instantiating."),
)


def _file(launch_header: str, *body: Declaration) -> TranslationUnit:
    """The prelude, the launch header, and `body` between blank lines in `namespace FLASH_NAMESPACE`."""
    namespace = in_flash_namespace(BlankLine(), *body, BlankLine())
    return TranslationUnit((*PRELUDE, Include(launch_header), BlankLine(), namespace))


def file_name_rule(direction: str) -> Callable[[Configuration], str]:
    """The file name rule of kind `direction`: `flash_fwd_hdim128_fp16_causal_sm80.cu`."""

    def file_name(config: Configuration) -> str:
        causal = "causal_" if config.is_causal else ""
        return f"flash_{direction}_hdim{config.head_dim}_{config.dtype}_{causal}sm{config.sm}.cu"

    return file_name


def specialization_builder(
    primary: FunctionTemplate, launcher_for: Callable[[int], FunctionTemplate], launch_header: str
) -> Callable[[Configuration], TranslationUnit]:
    """fwd and bwd files: `primary<T, D, causal>` specialized to call `launcher_for(D)<T, causal>`."""

    def build(config: Configuration) -> TranslationUnit:
        element = CUTLASS_TYPES[config.dtype]
        launcher = launcher_for(config.head_dim)
        specialization = primary.specialize(
            element, config.head_dim, config.is_causal, body=[launcher.call(element, config.is_causal)]
        )
        return _file(launch_header, specialization)

    return build


build_fwd = specialization_builder(RUN_MHA_FWD, run_mha_fwd_hdim, FWD_LAUNCH_HEADER)
build_bwd = specialization_builder(RUN_MHA_BWD, run_mha_bwd_hdim, BWD_LAUNCH_HEADER)


def build_fwd_split(config: Configuration) -> TranslationUnit:
    arguments = (CUTLASS_TYPES[config.dtype], config.head_dim, config.is_causal)
    return _file(
        FWD_LAUNCH_HEADER,
        *EXTERN_ALIGN_EXPLANATION,
        RUN_MHA_FWD_SPLITKV_ALIGN.instantiate(*arguments, extern=True),
        BlankLine(),
        RUN_MHA_FWD_SPLITKV_DISPATCH.instantiate(*arguments),
    )


def build_fwd_split_release_2_8_3(config: Configuration) -> TranslationUnit:
    """v2.8.3's `fwd_split` files: the dispatch instantiation alone (no aligned tree to declare)."""
    arguments = (CUTLASS_TYPES[config.dtype], config.head_dim, config.is_causal)
    return _file(FWD_LAUNCH_HEADER, RUN_MHA_FWD_SPLITKV_DISPATCH.instantiate(*arguments))


def build_fwd_split_align(config: Configuration) -> TranslationUnit:
    arguments = (CUTLASS_TYPES[config.dtype], config.head_dim, config.is_causal)
    return _file(FWD_LAUNCH_HEADER, RUN_MHA_FWD_SPLITKV_ALIGN.instantiate(*arguments))


# The GPU architecture the files are built for (their names say sm80); `--device-arch` uses it.
ARCHITECTURES = ("sm_80",)

FWD_DESCRIPTION = "run_mha_fwd_<T, D, Is_causal> specializations"
BWD_DESCRIPTION = "run_mha_bwd_<T, D, Is_causal> specializations"
FWD_SPLIT_DESCRIPTION = "run_mha_fwd_splitkv_dispatch<T, D, Is_causal> instantiations"


def _kind(name: str, build: Callable[[Configuration], TranslationUnit], kind_contract: Contract,
          description: str) -> Kind:
    return Kind(name, axes=AXES, build=build, file_name=file_name_rule(name), contract=kind_contract,
                architectures=ARCHITECTURES, description=description)


KINDS = (
    _kind("fwd", build_fwd, CONTRACT, FWD_DESCRIPTION),
    _kind("fwd_split", build_fwd_split, CONTRACT, FWD_SPLIT_DESCRIPTION + " (aligned tree extern)"),
    _kind("fwd_split_align", build_fwd_split_align, CONTRACT,
          "run_mha_fwd_splitkv_align<T, D, Is_causal> instantiations"),
    _kind("bwd", build_bwd, CONTRACT, BWD_DESCRIPTION),
)
RELEASE_2_8_3_KINDS = (
    _kind("fwd", build_fwd, RELEASE_2_8_3_CONTRACT, FWD_DESCRIPTION),
    _kind("fwd_split", build_fwd_split_release_2_8_3, RELEASE_2_8_3_CONTRACT, FWD_SPLIT_DESCRIPTION),
    _kind("bwd", build_bwd, RELEASE_2_8_3_CONTRACT, BWD_DESCRIPTION),
)

UPSTREAM = "Dao-AILab/flash-attention csrc/flash_attn/src/generate_kernels.py"

PRESET = Preset(
    PRESET_NAME,
    style=STYLE,
    description="flash-attention 2 (Dao-AILab/flash-attention csrc/flash_attn/src)",
    kinds=KINDS,
    revision="0251105a",
    upstream=UPSTREAM,
)
RELEASE_2_8_3 = Preset(
    PRESET_NAME,
    style=STYLE,
    description="flash-attention 2 as released in flash-attn 2.8.3 (the tree its source distribution builds)",
    kinds=RELEASE_2_8_3_KINDS,
    revision="v2.8.3",
    upstream=UPSTREAM,
)
