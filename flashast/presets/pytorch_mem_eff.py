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
The contract and the kernel list are in `flashast.presets.mem_eff_kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence

from flashast.axes import AxisValue, Configuration
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
    Declaration,
    FunctionDefinition,
    Include,
    LineComment,
    PragmaOnce,
    TranslationUnit,
    TypeParameter,
    UsingDirective,
)
from flashast.preprocessor import Defined
from flashast.presets.mem_eff_kernels import (
    ALIGNMENTS,
    ATTENTION_BACKWARD_KERNEL,
    ATTENTION_KERNEL,
    BACKWARD_HEADER,
    BACKWARD_MAX_K,
    CONTRACT,
    ELEMENT_TYPES,
    FORWARD_HEADER,
    IS_SAME_V,
    NAMESPACE,
    SM_RANGES,
    Kernel,
    backward_file,
    backward_kernels,
    contract_header,
    forward_file,
    forward_kernels,
)
from flashast.statements import (
    Block,
    ConditionalStatements,
    ExpressionStatement,
    IfStatement,
    ReturnStatement,
    Statement,
    StatementLayout,
)
from flashast.style import Style

# The contract and kernels, for readers of this module and for tests.
__all__ = [
    "ATTENTION_BACKWARD_KERNEL", "ATTENTION_KERNEL", "BACKWARD_HEADER", "BF16_UNALIGNED", "CONTRACT", "FORWARD_HEADER",
    "K96_ONLY", "KINDS",
    "PRESET", "SM_RANGES", "backward_kernels", "build_header", "build_source", "contract_header", "forward_kernels",
    "kernel_definition",
]

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
# Kernels: each launch bound on a line of its own, the name on the next line.
KERNEL_LAYOUT = DefinitionLayout(launch_bounds_one_per_line=True)
# Per-category dispatchers: `template <typename T> void …(…) {` on one line.
CATEGORY_DISPATCH_LAYOUT = DefinitionLayout(break_template_declarations=False)
# The `.cu` files indent kernel bodies by two; the headers write `template <` and indent by four.
SOURCE_STYLE = Style(indent_width=2)
HEADER_STYLE = Style(space_after_template_keyword=True)
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
    on_capabilities = (BinaryExpression("cc", "==", capability) for capability in kernel.only_on)
    return IfStatement(_joined("||", *on_capabilities), call)


def _joined(operator: str, *conditions: Expression) -> Expression:
    """`a op b op c`, grouped from the left as C++ reads it."""
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = BinaryExpression(combined, operator, condition)
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
        condition = _joined("&&", is_element, BinaryExpression(low, "<=", "cc"), BinaryExpression("cc", "<=", high))
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
    return forward_file(str(config.dtype), str(config.alignment))


def _backward_file(config: Configuration) -> str:
    return backward_file(str(config.dtype), str(config.alignment), config.max_k, config.dropout)


def _kernels_in(kernels: tuple[Kernel, ...], file_name: str) -> tuple[Kernel, ...]:
    return tuple(kernel for kernel in kernels if kernel.file_name == file_name)


# Why a file has no kernels: the generator's rules, as a maintainer would state them.
BF16_UNALIGNED = "bf16 kernels are built for sm80 and later only, which have no kernels for unaligned inputs"
K96_ONLY = "max_k 96 has only the sm86/sm89 kernels: f16 or bf16, aligned, without dropout"


def _no_kernels(kernels: tuple[Kernel, ...], config: Configuration, file_name: str) -> str | None:
    if _kernels_in(kernels, file_name):
        return None
    if config.dtype == "bf16" and config.alignment == "notaligned":
        return BF16_UNALIGNED
    if config.get("max_k", None) == 96:
        return K96_ONLY
    return "no kernel of this configuration is built"


def _architectures(kernels: tuple[Kernel, ...]) -> tuple[str, ...]:
    return tuple(f"sm_{low}" for low in sorted({kernel.sm_range[0] for kernel in kernels}))


FORWARD_AXES: dict[str, Sequence[AxisValue]] = {"dtype": tuple(ELEMENT_TYPES), "alignment": ALIGNMENTS}
BACKWARD_AXES: dict[str, Sequence[AxisValue]] = {**FORWARD_AXES, "max_k": BACKWARD_MAX_K, "dropout": (False, True)}

KINDS = (
    Kind(
        "fwd", axes=FORWARD_AXES, file_name=_forward_file, contract=CONTRACT, style=SOURCE_STYLE,
        build=lambda config: build_source(_kernels_in(forward_kernels(), _forward_file(config)), FORWARD_HEADER),
        constraint=lambda config: _no_kernels(forward_kernels(), config, _forward_file(config)),
        architectures=lambda config: _architectures(_kernels_in(forward_kernels(), _forward_file(config))),
        description="__global__ AttentionKernel<…> wrappers, one file per element type and alignment",
    ),
    Kind(
        "bwd", axes=BACKWARD_AXES, file_name=_backward_file, contract=CONTRACT, style=SOURCE_STYLE,
        build=lambda config: build_source(_kernels_in(backward_kernels(), _backward_file(config)), BACKWARD_HEADER),
        constraint=lambda config: _no_kernels(backward_kernels(), config, _backward_file(config)),
        architectures=lambda config: _architectures(_kernels_in(backward_kernels(), _backward_file(config))),
        description="__global__ AttentionBackwardKernel<…> wrappers, by element type, alignment, max_k, dropout",
    ),
    Kind(
        "header", axes={"family": ("cutlassF", "cutlassB")}, file_name="{family}.h", contract=CONTRACT,
        style=HEADER_STYLE,
        build=lambda config: build_header(str(config.family)),
        description="kernel declarations and dispatch function templates of each family",
    ),
)

PRESET = Preset(
    "pytorch-mem-eff",
    description="PyTorch ATen memory-efficient attention (aten/src/ATen/native/transformers/cuda/mem_eff_attention)",
    kinds=KINDS,
    # The generator after PR #176243, as torch 2.13.0 was built from it.
    revision="cf30153c",
    upstream="pytorch/pytorch aten/src/ATen/native/transformers/cuda/mem_eff_attention/kernels/generate_kernels.py",
)
