"""The `pytorch` preset: PyTorch ATen's flash_attn instantiation files (48 files, the default).

Byte for byte what `aten/src/ATen/native/transformers/cuda/flash_attn/kernels/generate_kernels.py`
writes: kinds `fwd`, `bwd` (explicit specializations forwarding to `run_mha_*_hdimD<T>`) and
`fwd_split` (an explicit instantiation of `run_mha_fwd_splitkv_dispatch<T, D>`), for fp16/bf16,
eight head dimensions, sm80. Every repeated value in a file (the element type, the head dimension in
the template argument and in the callee's name) is derived from one axis value.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    Namespace,
    PragmaOnce,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
)
from flashast.presets.common import CUTLASS_TYPES, cuda_stream, cutlass_types, launcher_parameters
from flashast.style import Style

DTYPES = ("fp16", "bf16")
HEAD_DIMS = (32, 64, 96, 128, 160, 192, 224, 256)
ARCHS = (80,)
NAMESPACE = "pytorch_flash"
HEADER_DIR = "ATen/native/transformers/cuda/flash_attn"
FLASH_HEADER = f"{HEADER_DIR}/flash.h"
FWD_LAUNCH_HEADER = f"{HEADER_DIR}/flash_fwd_launch_template.h"
BWD_LAUNCH_HEADER = f"{HEADER_DIR}/flash_bwd_launch_template.h"

# PyTorch's generator: `namespace pytorch_flash{` with no space, a commented close, a final newline.
STYLE = Style(space_before_namespace_brace=False)

FWD_PARAMETERS = launcher_parameters("Flash_fwd_params")
BWD_PARAMETERS = launcher_parameters("Flash_bwd_params")
ELEMENT_AND_HEAD_DIM = (TypeParameter("T"), ValueParameter("int", "Headdim"))

RUN_MHA_FWD = FunctionTemplate(ELEMENT_AND_HEAD_DIM, "void", "run_mha_fwd_", FWD_PARAMETERS)
RUN_MHA_BWD = FunctionTemplate(ELEMENT_AND_HEAD_DIM, "void", "run_mha_bwd_", BWD_PARAMETERS)
RUN_MHA_FWD_SPLITKV_DISPATCH = FunctionTemplate(
    ELEMENT_AND_HEAD_DIM, "void", "run_mha_fwd_splitkv_dispatch", FWD_PARAMETERS, defined=True
)


def run_mha_fwd_hdim(head_dim: int) -> FunctionTemplate:
    return FunctionTemplate((TypeParameter("T"),), "void", f"run_mha_fwd_hdim{head_dim}", FWD_PARAMETERS, defined=True)


def run_mha_bwd_hdim(head_dim: int) -> FunctionTemplate:
    return FunctionTemplate((TypeParameter("T"),), "void", f"run_mha_bwd_hdim{head_dim}", BWD_PARAMETERS, defined=True)


def _namespace(*declarations: Declaration) -> Namespace:
    return Namespace(NAMESPACE, declarations)


CONTRACT = Contract(
    {
        FLASH_HEADER: (
            PragmaOnce(),
            *cuda_stream(),
            cutlass_types(DTYPES),
            _namespace(
                ClassDeclaration("Flash_fwd_params"),
                ClassDeclaration("Flash_bwd_params"),
                RUN_MHA_FWD,
                RUN_MHA_BWD,
            ),
        ),
        FWD_LAUNCH_HEADER: (
            PragmaOnce(),
            Include(FLASH_HEADER, angled=True),
            _namespace(RUN_MHA_FWD_SPLITKV_DISPATCH, *(run_mha_fwd_hdim(head_dim) for head_dim in HEAD_DIMS)),
        ),
        BWD_LAUNCH_HEADER: (
            PragmaOnce(),
            Include(FLASH_HEADER, angled=True),
            _namespace(*(run_mha_bwd_hdim(head_dim) for head_dim in HEAD_DIMS)),
        ),
    }
)

PRELUDE = (
    BlankLine(),
    LineComment("Copyright (c) 2023, Tri Dao."),
    BlankLine(),
    LineComment("Splitting the different head dimensions to different files to speed up compilation."),
    LineComment('This file is auto-generated. See "generate_kernels.py"'),
    BlankLine(),
)

AXES: dict[str, Sequence[AxisValue]] = {"dtype": DTYPES, "head_dim": HEAD_DIMS, "sm": ARCHS}


def _file(launch_header: str, *body: Declaration) -> TranslationUnit:
    return TranslationUnit((*PRELUDE, Include(launch_header, angled=True), _namespace(*body)))


def build_fwd(config: Configuration) -> TranslationUnit:
    element = CUTLASS_TYPES[config.dtype]
    specialization = RUN_MHA_FWD.specialize(
        element, config.head_dim, body=[run_mha_fwd_hdim(config.head_dim).call(element)]
    )
    return _file(FWD_LAUNCH_HEADER, BlankLine(), specialization)


def build_bwd(config: Configuration) -> TranslationUnit:
    element = CUTLASS_TYPES[config.dtype]
    specialization = RUN_MHA_BWD.specialize(
        element, config.head_dim, body=[run_mha_bwd_hdim(config.head_dim).call(element)]
    )
    return _file(BWD_LAUNCH_HEADER, BlankLine(), specialization)


def build_fwd_split(config: Configuration) -> TranslationUnit:
    instantiation = RUN_MHA_FWD_SPLITKV_DISPATCH.instantiate(CUTLASS_TYPES[config.dtype], config.head_dim)
    # PyTorch's split template starts with two newlines where the others have one.
    return _file(FWD_LAUNCH_HEADER, BlankLine(), BlankLine(), instantiation)


# The GPU architecture the files are built for (their names say sm80); `--device-arch` uses it.
ARCHITECTURES = ("sm_80",)

KINDS = (
    Kind("fwd", axes=AXES, build=build_fwd, file_name="flash_fwd_hdim{head_dim}_{dtype}_sm{sm}.cu",
         contract=CONTRACT, architectures=ARCHITECTURES, description="run_mha_fwd_<T, D> specializations"),
    Kind("bwd", axes=AXES, build=build_bwd, file_name="flash_bwd_hdim{head_dim}_{dtype}_sm{sm}.cu",
         contract=CONTRACT, architectures=ARCHITECTURES, description="run_mha_bwd_<T, D> specializations"),
    Kind("fwd_split", axes=AXES, build=build_fwd_split, file_name="flash_fwd_split_hdim{head_dim}_{dtype}_sm{sm}.cu",
         contract=CONTRACT, architectures=ARCHITECTURES,
         description="run_mha_fwd_splitkv_dispatch<T, D> instantiations"),
)

PRESET = Preset(
    "pytorch",
    style=STYLE,
    description="PyTorch ATen flash_attn (aten/src/ATen/native/transformers/cuda/flash_attn)",
    kinds=KINDS,
    # The generator's last form (fwd, bwd, fwd_split over eight head dimensions) before its removal in 2025.
    revision="20c1e263",
    upstream="pytorch/pytorch aten/src/ATen/native/transformers/cuda/flash_attn/kernels/generate_kernels.py",
)
