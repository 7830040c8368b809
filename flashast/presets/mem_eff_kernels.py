"""The contract and the kernels of the `pytorch-mem-eff` preset (the files are `pytorch_mem_eff`'s).

The contract declares what the generated kernels use of PyTorch's headers: the `AttentionKernel` and
`AttentionBackwardKernel` class templates with `Params` (and its `advance_to_block`), `kNumThreads`,
`kMinBlocksPerSm` and `attention_kernel`, plus the cutlass tags and `std::is_same_v`. The kernels are
every configuration the upstream generator builds, in its dispatch order (the first kernel that fits
the inputs wins): each is a template-id of one of those class templates and the kernel's name.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from flashast.axes import AxisValue
from flashast.classes import ClassDefinition, ClassTemplate, StaticDataMember, VariableTemplate
from flashast.contract import Contract
from flashast.definitions import FunctionDeclaration, FunctionHead, ParameterDeclaration
from flashast.expressions import Name
from flashast.nodes import (
    ClassDeclaration,
    CudaStandIns,
    Declaration,
    Declarator,
    Namespace,
    PragmaOnce,
    Type,
    TypeParameter,
    ValueParameter,
)

# The inclusive compute-capability ranges kernels are built for, as upstream lists them.
SM_RANGES = ((50, 69), (70, 74), (75, 79), (80, 121))
ELEMENT_TYPES = {"f32": "float", "f16": "cutlass::half_t", "bf16": "cutlass::bfloat16_t"}
ALIGNMENTS = ("aligned", "notaligned")
BACKWARD_MAX_K = (32, 64, 96, 128, 65536)
HEADER_DIR = "ATen/native/transformers/cuda/mem_eff_attention"
FORWARD_HEADER = f"{HEADER_DIR}/kernel_forward.h"
BACKWARD_HEADER = f"{HEADER_DIR}/kernel_backward.h"
NAMESPACE = "PyTorchMemEffAttention"

# Contract -----------------------------------------------------------------------------------------


def _kernel_class_members() -> tuple[ClassDefinition | StaticDataMember | FunctionDeclaration, ...]:
    """What a kernel wrapper uses of a kernel class: its `Params` (with `advance_to_block`), its launch
    bounds and its static entry point."""
    params = ClassDefinition("Params", [FunctionDeclaration(FunctionHead("bool", "advance_to_block"))])
    entry = FunctionHead(
        "void", "attention_kernel", [ParameterDeclaration(Type("Params", declarator=Declarator.REFERENCE), "p")],
        static=True,
    )
    return (
        params,
        StaticDataMember("int", "kNumThreads", 128),
        StaticDataMember("int", "kMinBlocksPerSm", 1),
        FunctionDeclaration(entry),
    )


ATTENTION_KERNEL = ClassTemplate(
    (
        TypeParameter("scalar_t_"), TypeParameter("ArchTag"), ValueParameter("bool", "isAligned_"),
        ValueParameter("int", "kQueriesPerBlock_"), ValueParameter("int", "kKeysPerBlock_"),
        ValueParameter("int", "kMaxK_"), ValueParameter("bool", "kSupportsDropout_", True),
        ValueParameter("bool", "kSupportsBias_", True),
    ),
    "AttentionKernel",
    _kernel_class_members(),
)
ATTENTION_BACKWARD_KERNEL = ClassTemplate(
    (
        TypeParameter("ArchTag_"), TypeParameter("scalar_t_"), ValueParameter("bool", "kIsAligned_"),
        ValueParameter("bool", "kApplyDropout_"), ValueParameter("bool", "kPreload_"),
        ValueParameter("int", "kBlockSizeI_"), ValueParameter("int", "kBlockSizeJ_"), ValueParameter("int", "kMaxK_"),
        ValueParameter("bool", "kKeysQueriesAlignedToBlockSize_", False),
    ),
    "AttentionBackwardKernel",
    _kernel_class_members(),
)
# `std::is_same_v`, which the real headers get from `<type_traits>`.
IS_SAME_V = VariableTemplate((TypeParameter("A"), TypeParameter("B")), "bool", "is_same_v", False)
# The one architecture whose `#if __CUDA_ARCH__` branches a contract parse checks: sm80 kernels are
# in every aligned file, so each kernel body shape is checked against the contract.
CONTRACT_ARCHITECTURE = 800


def contract_header(kernel_class: ClassTemplate) -> tuple[Declaration, ...]:
    architectures = tuple(ClassDeclaration(f"Sm{low}") for low, _ in SM_RANGES)
    return (
        PragmaOnce(),
        CudaStandIns(CONTRACT_ARCHITECTURE),
        Namespace("std", [IS_SAME_V]),
        Namespace(
            "cutlass", [ClassDeclaration("half_t"), ClassDeclaration("bfloat16_t"), Namespace("arch", architectures)]
        ),
        Namespace(NAMESPACE, [kernel_class]),
    )


CONTRACT = Contract(
    {FORWARD_HEADER: contract_header(ATTENTION_KERNEL), BACKWARD_HEADER: contract_header(ATTENTION_BACKWARD_KERNEL)}
)

# Kernels ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kernel:
    """One kernel: its family's class and template arguments, its name, its SM range, and what the
    dispatch order and file grouping read from it."""

    kernel_class: ClassTemplate
    arguments: tuple[AxisValue, ...]
    name: str
    sm_range: tuple[int, int]
    dtype: str
    order: tuple[object, ...]
    file_name: str
    # Compute capabilities the dispatcher offers the kernel on (all of its range when empty).
    only_on: tuple[int, ...] = ()

    def member(self, member: str) -> Name:
        return self.kernel_class.member(member, *self.arguments)


def _is_built(aligned: bool, dtype: str, low: int) -> bool:
    # bf16 needs sm80; unaligned inputs are served by kernels below sm80 only.
    return not (dtype == "bf16" and low < 80) and not (not aligned and low >= 80)


def _alignment(aligned: bool) -> str:
    return "aligned" if aligned else "notaligned"


def forward_file(dtype: str, alignment: str) -> str:
    """The `.cu` file that defines a family's forward kernels of one element type and alignment."""
    return f"cutlassF_{dtype}_{alignment}.cu"


def backward_file(dtype: str, alignment: str, max_k: int, dropout: bool) -> str:
    """The `.cu` file that defines the backward kernels of one element type, alignment, max_k and dropout."""
    return f"cutlassB_{dtype}_{alignment}_k{max_k}{'_dropout' if dropout else ''}.cu"


def forward_kernel(
    aligned: bool, dtype: str, sm_range: tuple[int, int], queries: int, keys: int, max_k: int
) -> Kernel:
    """One forward kernel: `queries` x `keys` blocks, head dimensions up to `max_k`."""
    low = sm_range[0]
    accumulator = "rf" if max_k <= keys else "gmem"
    arguments = (ELEMENT_TYPES[dtype], f"cutlass::arch::Sm{low}", aligned, queries, keys, max_k, True, True)
    return Kernel(
        ATTENTION_KERNEL, arguments,
        f"fmha_cutlassF_{dtype}_{_alignment(aligned)}_{queries}x{keys}_{accumulator}_sm{low}",
        sm_range, dtype,
        # Aligned first, then the smallest max_k and key block (the output stays in registers).
        ((0 if aligned else 1, max_k, keys, 1, 1), aligned, dtype, sm_range, queries, keys, max_k),
        forward_file(dtype, _alignment(aligned)),
    )


@cache
def forward_kernels() -> tuple[Kernel, ...]:
    kernels = []
    for aligned, dtype, sm_range in itertools.product((True, False), ELEMENT_TYPES, SM_RANGES):
        if _is_built(aligned, dtype, sm_range[0]):
            wide_queries = 64 if sm_range[0] > 75 else 32
            for queries, keys, max_k in ((64, 64, 64), (wide_queries, 128, 128), (32, 128, 65536)):
                kernels.append(forward_kernel(aligned, dtype, sm_range, queries, keys, max_k))
    return tuple(sorted(kernels, key=lambda kernel: kernel.order))


@dataclass(frozen=True)
class _BackwardShape:
    aligned: bool
    dtype: str
    sm_range: tuple[int, int]
    dropout: bool
    preload: bool
    block_i: int
    block_j: int
    max_k: int
    sequences_aligned: bool = False
    only_on: tuple[int, ...] = ()


def _backward(shape: _BackwardShape) -> Kernel:
    low = shape.sm_range[0]
    dropout = "_dropout" if shape.dropout else ""
    aligned_suffix = "_seqaligned" if shape.sequences_aligned else ""
    arguments: tuple[AxisValue, ...] = (
        f"cutlass::arch::Sm{low}", ELEMENT_TYPES[shape.dtype], shape.aligned, shape.dropout, shape.preload,
        shape.block_i, shape.block_j, shape.max_k, *((True,) if shape.sequences_aligned else ()),
    )
    alignment = _alignment(shape.aligned)
    return Kernel(
        ATTENTION_BACKWARD_KERNEL, arguments,
        f"fmha_cutlassB_{shape.dtype}_{alignment}_{shape.block_i}x{shape.block_j}_k{shape.max_k}{dropout}{aligned_suffix}_sm{low}",
        shape.sm_range, shape.dtype,
        # Aligned first, then no dropout, the smallest max_k, the largest query block, no bounds checks.
        (
            (0 if shape.aligned else 1, 1 if shape.dropout else 0, shape.max_k, -shape.block_i,
             0 if shape.sequences_aligned else 1),
            shape.sm_range, shape.dtype, shape.aligned, shape.dropout, shape.preload, shape.block_i, shape.block_j,
            shape.max_k, bool(shape.only_on), shape.sequences_aligned,
        ),
        backward_file(shape.dtype, alignment, shape.max_k, shape.dropout),
        shape.only_on,
    )


def _backward_shapes() -> Iterator[_BackwardShape]:
    product = itertools.product((True, False), ELEMENT_TYPES, SM_RANGES, (True, False), (32, 64, 128, 65536))
    for aligned, dtype, sm_range, dropout, max_k in product:
        low = sm_range[0]
        if not _is_built(aligned, dtype, low):
            continue
        half = dtype != "f32"
        # A 128-query block needs the shared memory of sm80 (or sm70 in half precision).
        query_blocks = (64, 128) if max_k > 64 and (low >= 80 or (low >= 70 and half)) else (64,)
        for block_i in query_blocks:
            preload = half and low >= 80 and max_k <= block_i
            block_j = 128 if preload and max_k > 64 else 64
            shape = _BackwardShape(aligned, dtype, sm_range, dropout, preload, block_i, block_j, max_k)
            yield shape
            # Faster kernels for sequence lengths that are multiples of the block sizes.
            if not dropout and max_k <= 128 and half and aligned and low in (70, 80):
                yield _BackwardShape(aligned, dtype, sm_range, dropout, preload, block_i, block_j, max_k, True)
    # head dim 80 (stable diffusion's backward) keeps its output in registers on sm86/sm89 only.
    sm80 = next(sm_range for sm_range in SM_RANGES if sm_range[0] == 80)
    for dtype in ("f16", "bf16"):
        yield _BackwardShape(True, dtype, sm80, False, True, 128, 64, 96, only_on=(86, 89))


@cache
def backward_kernels() -> tuple[Kernel, ...]:
    return tuple(sorted((_backward(shape) for shape in _backward_shapes()), key=lambda kernel: kernel.order))
