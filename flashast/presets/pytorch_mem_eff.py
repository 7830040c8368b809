"""The `pytorch-mem-eff` preset: PyTorch's memory-efficient attention kernels (49 files).

Byte for byte what `aten/src/ATen/native/transformers/cuda/mem_eff_attention/kernels/generate_kernels.py`
writes (inherited from xformers) with its four SM ranges (sm50-69, sm70-74, sm75-79, sm80-121):

- kind `fwd`: `cutlassF_{dtype}_{alignment}.cu`, one `__global__` kernel per forward configuration,
  each with `__launch_bounds__` from its `AttentionKernel<…>` and a body guarded by
  `#if __CUDA_ARCH__` range checks, with a `printf` for an architecture outside its range;
- kind `bwd`: `cutlassB_{dtype}_{alignment}_k{max_k}[_dropout].cu`, the same for
  `AttentionBackwardKernel<…>`;
- kind `header`: `cutlassF.h` and `cutlassB.h`, which declare every kernel of their family and define
  the dispatch function templates that pick kernels by element type and compute capability.

Kernels are ordered as the upstream dispatch prefers them (the first that fits the inputs wins), and
the headers group them by element type and SM range in that order. Everything is built from typed
nodes (no `Verbatim`); names of kernel classes and their members go through the contract's class
templates, so a template argument or member the contract does not have is refused when the node is made.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from flashast.axes import AxisValue, Configuration
from flashast.classes import StaticDataMember
from flashast.contract import Contract
from flashast.definitions import (
    CudaSpecifier,
    DefinitionLayout,
    FunctionHead,
    LaunchBounds,
    ParameterDeclaration,
    TypenameSpecifier,
)
from flashast.expressions import (
    BinaryExpression,
    CallExpression,
    Expression,
    FunctionalCast,
    MemberAccess,
    Name,
    StringLiteral,
    UnaryExpression,
)
from flashast.kinds import Kind, Preset
from flashast.nodes import (
    BlankLine,
    BlockComment,
    ClassDeclaration,
    ClassDefinition,
    ClassTemplate,
    CudaStandIns,
    Declaration,
    Declarator,
    FunctionDeclaration,
    FunctionDefinition,
    Include,
    LineComment,
    Namespace,
    PragmaOnce,
    TranslationUnit,
    Type,
    TypeParameter,
    UsingDirective,
    ValueParameter,
    VariableTemplate,
)
from flashast.preprocessor import Defined
from flashast.statements import (
    Block,
    ConditionalStatements,
    ExpressionStatement,
    IfStatement,
    ReturnStatement,
    Statement,
    StatementLayout,
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


def _forward(aligned: bool, dtype: str, sm_range: tuple[int, int], queries: int, keys: int, max_k: int) -> Kernel:
    low = sm_range[0]
    accumulator = "rf" if max_k <= keys else "gmem"
    arguments = (ELEMENT_TYPES[dtype], f"cutlass::arch::Sm{low}", aligned, queries, keys, max_k, True, True)
    return Kernel(
        ATTENTION_KERNEL, arguments,
        f"fmha_cutlassF_{dtype}_{_alignment(aligned)}_{queries}x{keys}_{accumulator}_sm{low}",
        sm_range, dtype,
        # Aligned first, then the smallest max_k and key block (the output stays in registers).
        ((0 if aligned else 1, max_k, keys, 1, 1), aligned, dtype, sm_range, queries, keys, max_k),
        f"cutlassF_{dtype}_{_alignment(aligned)}.cu",
    )


@cache
def forward_kernels() -> tuple[Kernel, ...]:
    kernels = []
    for aligned, dtype, sm_range in itertools.product((True, False), ELEMENT_TYPES, SM_RANGES):
        if _is_built(aligned, dtype, sm_range[0]):
            wide_queries = 64 if sm_range[0] > 75 else 32
            for queries, keys, max_k in ((64, 64, 64), (wide_queries, 128, 128), (32, 128, 65536)):
                kernels.append(_forward(aligned, dtype, sm_range, queries, keys, max_k))
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
        f"cutlassB_{shape.dtype}_{alignment}_k{shape.max_k}{dropout}.cu",
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


# Files --------------------------------------------------------------------------------------------

PRELUDE = (
    BlockComment.starred(
        [
            "Copyright (c) Meta Platforms, Inc. and affiliates.",
            "All rights reserved.",
            "",
            "This source code is licensed under the BSD-style license found in the",
            "LICENSE file in the root directory of this source tree.",
        ]
    ),
    LineComment('This file is auto-generated. See "generate_kernels.py"'),
)
# Kernels: two-space bodies, each launch bound on a line of its own, the name on the next line.
KERNEL_LAYOUT = DefinitionLayout(indent_width=2, launch_bounds_one_per_line=True)
# Per-category dispatchers: `template <typename T> void …(…) {` on one line; four-space bodies.
CATEGORY_DISPATCH_LAYOUT = DefinitionLayout(break_template_declarations=False)
# The `printf` sits two columns deeper than the statements beside it, its arguments one per line.
PRINTF_LAYOUT = StatementLayout(arguments_one_per_line=True, indent_offset=2)
CUDA_ARCH = Name("__CUDA_ARCH__")


def kernel_definition(kernel: Kernel) -> FunctionDefinition:
    low, high = kernel.sm_range
    head = FunctionHead(
        "void", kernel.name, [ParameterDeclaration(TypenameSpecifier(kernel.member("Params")), "p")],
        specifiers=[CudaSpecifier.GLOBAL],
        launch_bounds=LaunchBounds(kernel.member("kNumThreads"), kernel.member("kMinBlocksPerSm")),
        layout=KERNEL_LAYOUT,
    )
    run: list[Statement] = [
        IfStatement(
            UnaryExpression("!", CallExpression(MemberAccess("p", "advance_to_block"))), Block([ReturnStatement()])
        ),
        ExpressionStatement(CallExpression(kernel.member("attention_kernel"), ["p"])),
        ReturnStatement(),
    ]
    in_range = ConditionalStatements(
        BinaryExpression(CUDA_ARCH, ">=", low * 10),
        [ConditionalStatements(BinaryExpression(CUDA_ARCH, "<=", high * 10), run)],
    )
    message = f"FATAL: kernel `{kernel.name}` is for sm{low}-sm{high}, but was built for sm%d\n"
    # `int(__CUDA_ARCH__ + 0) / 10`: the architecture the file was built for, as upstream prints it.
    built_for = BinaryExpression(FunctionalCast("int", [BinaryExpression(CUDA_ARCH, "+", 0)]), "/", 10)
    complain = ExpressionStatement(CallExpression("printf", [StringLiteral(message), built_for]), PRINTF_LAYOUT)
    return FunctionDefinition(head, [ConditionalStatements(Defined("__CUDA_ARCH__"), [in_range, complain])])


def _file_start(header: str) -> tuple[Declaration, ...]:
    return (Include(header, angled=True), UsingDirective(NAMESPACE))


def _family(family: str) -> tuple[tuple[Kernel, ...], str]:
    return (forward_kernels(), FORWARD_HEADER) if family == "cutlassF" else (backward_kernels(), BACKWARD_HEADER)


def build_source(kernels: Sequence[Kernel], header: str) -> TranslationUnit:
    return TranslationUnit((*PRELUDE, *_file_start(header), *(kernel_definition(kernel) for kernel in kernels)))


def _dispatch_call(kernel: Kernel) -> Statement:
    """`cb(Kernel<…>(), kernel_name);`, under `if (cc == 86 || cc == 89)` for a kernel offered on some
    compute capabilities only."""
    call = ExpressionStatement(
        CallExpression(
            "cb", [FunctionalCast(Name(kernel.kernel_class.template_id(*kernel.arguments))), Name(kernel.name)]
        )
    )
    if not kernel.only_on:
        return call
    conditions = [BinaryExpression("cc", "==", capability) for capability in kernel.only_on]
    condition: Expression = conditions[0]
    for other in conditions[1:]:
        condition = BinaryExpression(condition, "||", other)
    return IfStatement(condition, call)


def _all_of(*conditions: Expression) -> Expression:
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = BinaryExpression(combined, "&&", condition)
    return combined


def build_header(family: str) -> TranslationUnit:
    kernels, header = _family(family)
    categories: dict[tuple[str, tuple[int, int]], list[Kernel]] = {}
    for kernel in kernels:
        categories.setdefault((kernel.dtype, kernel.sm_range), []).append(kernel)
    declarations: list[Declaration] = [*PRELUDE, PragmaOnce(), *_file_start(header)]
    choices: list[Statement] = [BlankLine()]
    for number, ((dtype, (low, high)), members) in enumerate(categories.items()):
        dispatcher = FunctionHead(
            "void", f"dispatch_{family}_{dtype}_sm{low}",
            [ParameterDeclaration("T", "cb"), ParameterDeclaration("int", "cc")],
            template_parameters=[TypeParameter("T")], layout=CATEGORY_DISPATCH_LAYOUT,
        )
        declarations += [
            *([BlankLine()] if number else []),
            LineComment(f"======== {dtype} / sm{low} ========"),
            *(kernel_definition(kernel).declaration() for kernel in members),
            BlankLine(),
            FunctionDefinition(dispatcher, [_dispatch_call(kernel) for kernel in members]),
        ]
        is_element = Name("std", IS_SAME_V.template_id("DT", ELEMENT_TYPES[dtype]))
        condition = _all_of(is_element, BinaryExpression(low, "<=", "cc"), BinaryExpression("cc", "<=", high))
        call = CallExpression(dispatcher.reference(), ["cb", "cc"])
        choices.append(IfStatement(condition, Block([ExpressionStatement(call)])))
    dispatch = FunctionHead(
        "void", f"dispatch_{family}", [ParameterDeclaration("T", "cb"), ParameterDeclaration("int", "cc", 0)],
        template_parameters=[TypeParameter("DT"), TypeParameter("T")],
    )
    declarations += [BlankLine(), BlankLine(), FunctionDefinition(dispatch, choices)]
    return TranslationUnit(declarations)


# Kinds --------------------------------------------------------------------------------------------


def _forward_file(config: Configuration) -> str:
    return f"cutlassF_{config.dtype}_{config.alignment}.cu"


def _backward_file(config: Configuration) -> str:
    return f"cutlassB_{config.dtype}_{config.alignment}_k{config.max_k}{'_dropout' if config.dropout else ''}.cu"


def _kernels_in(kernels: tuple[Kernel, ...], file_name: str) -> tuple[Kernel, ...]:
    return tuple(kernel for kernel in kernels if kernel.file_name == file_name)


def _no_kernels(kernels: tuple[Kernel, ...], file_name: str) -> str | None:
    return None if _kernels_in(kernels, file_name) else "no kernel of this configuration is built"


def _architectures(kernels: tuple[Kernel, ...]) -> tuple[str, ...]:
    return tuple(f"sm_{low}" for low in sorted({kernel.sm_range[0] for kernel in kernels}))


FORWARD_AXES: dict[str, Sequence[AxisValue]] = {"dtype": tuple(ELEMENT_TYPES), "alignment": ALIGNMENTS}
BACKWARD_AXES: dict[str, Sequence[AxisValue]] = {**FORWARD_AXES, "max_k": BACKWARD_MAX_K, "dropout": (False, True)}

KINDS = (
    Kind(
        "fwd", axes=FORWARD_AXES, file_name=_forward_file, contract=CONTRACT,
        build=lambda config: build_source(_kernels_in(forward_kernels(), _forward_file(config)), FORWARD_HEADER),
        constraint=lambda config: _no_kernels(forward_kernels(), _forward_file(config)),
        architectures=lambda config: _architectures(_kernels_in(forward_kernels(), _forward_file(config))),
        description="__global__ AttentionKernel<…> wrappers, one file per element type and alignment",
    ),
    Kind(
        "bwd", axes=BACKWARD_AXES, file_name=_backward_file, contract=CONTRACT,
        build=lambda config: build_source(_kernels_in(backward_kernels(), _backward_file(config)), BACKWARD_HEADER),
        constraint=lambda config: _no_kernels(backward_kernels(), _backward_file(config)),
        architectures=lambda config: _architectures(_kernels_in(backward_kernels(), _backward_file(config))),
        description="__global__ AttentionBackwardKernel<…> wrappers, by element type, alignment, max_k, dropout",
    ),
    Kind(
        "header", axes={"family": ("cutlassF", "cutlassB")}, file_name="{family}.h", contract=CONTRACT,
        build=lambda config: build_header(str(config.family)),
        description="kernel declarations and dispatch function templates of each family",
    ),
)

PRESET = Preset(
    "pytorch-mem-eff",
    description="PyTorch ATen memory-efficient attention (aten/src/ATen/native/transformers/cuda/mem_eff_attention)",
    kinds=KINDS,
)
