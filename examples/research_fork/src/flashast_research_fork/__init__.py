"""flashast plugin: the `research-fork` preset, a flash-attention 2 fork with a column-sparse mask.

The fork adds one boolean template parameter, `Has_mask`, after FA2's `Is_causal`, to its launchers
`run_mha_{fwd,bwd}_<T, Headdim, Is_causal, Has_mask>`. What its generator used to do with `if`s and
f-strings is stated here as data:

- the extra axis `has_mask` is a template argument like any other (`BoolArg`, printed `true`/`false`);
- the constraint between axes, with its reason: a column mask already encodes causality, so no kernel
  is both causal and masked; and the masked backward kernel has no head_dim 256 tile;
- the file-name rule depends on both flags: `..._causal_sm80.cu`, `..._mask_sm80.cu`, or neither;
- masked files are guarded by `#ifndef FLASHATTENTION_DISABLE_MASK`, so a build can switch them off;
- the namespace is the `FLASH_NAMESPACE` macro from `namespace_config.h`, as in flash-attention 2,
  built with the public helpers the built-in `flash-attn-2` preset uses (`flashast.presets.common`).

Installed, it is found through the `flashast.plugins` entry point (see pyproject.toml):

    python -m pip install examples/research_fork
    python -m flashast --list-kinds
    python -m flashast -o kernels --preset research-fork
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flashast import (
    AxisValue,
    BlankLine,
    ClassDeclaration,
    Configuration,
    Contract,
    Declaration,
    FunctionTemplate,
    IfNotDefined,
    Include,
    LineComment,
    PragmaOnce,
    Preset,
    Registry,
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

PRESET_NAME = "research-fork"
DTYPES = ("fp16", "bf16")
HEAD_DIMS = (64, 128, 256)
AXES: dict[str, Sequence[AxisValue]] = {
    "dtype": DTYPES, "head_dim": HEAD_DIMS, "is_causal": (False, True), "has_mask": (False, True), "sm": (80,)
}

FLASH_HEADER = "flash.h"
LAUNCH_HEADERS = {"fwd": "flash_fwd_launch_template.h", "bwd": "flash_bwd_launch_template.h"}
DISABLE_MASK_MACRO = "FLASHATTENTION_DISABLE_MASK"

PARAMETERS = {"fwd": launcher_parameters("Flash_fwd_params"), "bwd": launcher_parameters("Flash_bwd_params")}
ELEMENT_CAUSAL_MASK = (TypeParameter("T"), ValueParameter("bool", "Is_causal"), ValueParameter("bool", "Has_mask"))


def run_mha(direction: str) -> FunctionTemplate:
    """`run_mha_fwd_<T, Headdim, Is_causal, Has_mask>`: declared in flash.h, defined by the files."""
    template_parameters = (ELEMENT_CAUSAL_MASK[0], ValueParameter("int", "Headdim"), *ELEMENT_CAUSAL_MASK[1:])
    return FunctionTemplate(template_parameters, "void", f"run_mha_{direction}_", PARAMETERS[direction])


def run_mha_hdim(direction: str, head_dim: int) -> FunctionTemplate:
    """`run_mha_fwd_hdimD<T, Is_causal, Has_mask>`: one launcher per head dimension, in the launch header."""
    return FunctionTemplate(
        ELEMENT_CAUSAL_MASK, "void", f"run_mha_{direction}_hdim{head_dim}", PARAMETERS[direction], defined=True
    )


# The fork's headers as far as the generated files rely on them. The interface is declared in the
# namespace FLASH_NAMESPACE expands to by default, so a file that forgets namespace_config.h fails.
CONTRACT = Contract(
    {
        NAMESPACE_CONFIG_HEADER: namespace_config(),
        FLASH_HEADER: (
            PragmaOnce(),
            *cuda_stream(),
            cutlass_types(DTYPES),
            in_default_flash_namespace(
                ClassDeclaration("Flash_fwd_params"),
                ClassDeclaration("Flash_bwd_params"),
                run_mha("fwd"),
                run_mha("bwd"),
            ),
        ),
        **{
            header: (
                PragmaOnce(),
                Include(NAMESPACE_CONFIG_HEADER),
                Include(FLASH_HEADER),
                in_default_flash_namespace(*(run_mha_hdim(direction, head_dim) for head_dim in HEAD_DIMS)),
            )
            for direction, header in LAUNCH_HEADERS.items()
        },
    }
)


def fwd_constraint(config: Configuration) -> str | None:
    """Why the fork has no forward kernel for `config` (None: it has one)."""
    if config.is_causal and config.has_mask:
        return "a column mask already encodes causality: has_mask=true needs is_causal=false"
    return None


def bwd_constraint(config: Configuration) -> str | None:
    """The forward rule, and the backward kernel's own limit."""
    if config.has_mask and config.head_dim == 256:
        return "the masked backward kernel has no head_dim 256 tile (it does not fit in shared memory)"
    return fwd_constraint(config)


def file_name_rule(direction: str) -> Callable[[Configuration], str]:
    """`flash_fwd_hdim128_bf16_causal_sm80.cu`, `..._mask_sm80.cu`, or `..._bf16_sm80.cu`."""

    def file_name(config: Configuration) -> str:
        variant = "_causal" if config.is_causal else "_mask" if config.has_mask else ""
        return f"flash_{direction}_hdim{config.head_dim}_{config.dtype}{variant}_sm{config.sm}.cu"

    return file_name


def build(direction: str, config: Configuration) -> TranslationUnit:
    """One file of kind `direction`: a specialization forwarding to the head dimension's launcher."""
    element = CUTLASS_TYPES[config.dtype]
    flags = (config.is_causal, config.has_mask)
    launcher = run_mha_hdim(direction, config.head_dim)
    definition: Declaration = run_mha(direction).specialize(
        element, config.head_dim, *flags, body=[launcher.call(element, *flags)]
    )
    if config.has_mask:
        definition = IfNotDefined(DISABLE_MASK_MACRO, (definition,))
    return TranslationUnit(
        (
            LineComment("Research fork: column-sparse masks. One head dimension per file."),
            LineComment("This file is auto-generated by flashast (flashast-research-fork); do not edit."),
            Include(NAMESPACE_CONFIG_HEADER),
            Include(LAUNCH_HEADERS[direction]),
            BlankLine(),
            in_flash_namespace(BlankLine(), definition, BlankLine()),
        )
    )


def register(registry: Registry) -> None:
    """The entry point: flashast calls it with the run's registry."""
    registry.add_preset(Preset(PRESET_NAME, description="flash-attention 2 research fork with column-sparse masks"))

    @registry.kind(PRESET_NAME, axes=AXES, file_name=file_name_rule("fwd"), contract=CONTRACT,
                   constraint=fwd_constraint)
    def fwd(config: Configuration) -> TranslationUnit:
        """run_mha_fwd_<T, D, Is_causal, Has_mask> specializations"""
        return build("fwd", config)

    @registry.kind(PRESET_NAME, axes=AXES, file_name=file_name_rule("bwd"), contract=CONTRACT,
                   constraint=bwd_constraint)
    def bwd(config: Configuration) -> TranslationUnit:
        """run_mha_bwd_<T, D, Is_causal, Has_mask> specializations"""
        return build("bwd", config)
