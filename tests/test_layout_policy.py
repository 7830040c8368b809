"""The layout policy: each `Style` option moves only spaces and line breaks, exactly as its clang-format
namesake does, and together they reproduce the layouts of generators flash-attention's own do not share.

The expected texts are written here from what each family's files look like (ScaleLLM's generated
instantiations, ONNX Runtime's clang-formatted tree), not copied from them. A last test parses every
rendering with libclang: under every option value the token stream is the same as under `Style()`.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flashast.errors import ModelError
from flashast.expressions import Name
from flashast.names import InlineComment, TrailingComment
from flashast.nodes import (
    BlankLine,
    BoolArg,
    ClassDeclaration,
    Declaration,
    Declarator,
    EnumDeclaration,
    ExplicitInstantiation,
    FunctionSignature,
    FunctionTemplate,
    IfNotDefined,
    Include,
    Namespace,
    Parameter,
    TranslationUnit,
    Type,
    TypeAlias,
    TypeArg,
    TypeParameter,
    ValueParameter,
)
from flashast.preprocessor import IfSection
from flashast.printer import render
from flashast.style import (
    ArgumentLayout,
    BracketAlignment,
    Layout,
    NamespaceIndentation,
    ParameterLayout,
    PointerAlignment,
    Style,
)
from flashast.verify.toolchain import load_cindex

PARAMS = Type("Params", const=True, declarator=Declarator.REFERENCE)
STREAM_ALIAS = TypeAlias("cudaStream_t", Type("CUstream_st", declarator=Declarator.POINTER))
LAUNCH = FunctionTemplate(
    (TypeParameter("Traits"), TypeParameter("Params"), ValueParameter("bool", "EVEN_K"), ValueParameter("bool", "ALIBI")),
    "void", "launch_attention_sm80", (Parameter(PARAMS, "params"), Parameter("cudaStream_t", "stream")), defined=True,
)
BROKEN = Layout(ArgumentLayout.ONE_PER_LINE, ParameterLayout.ALIGNED)
# Only the bool arguments carry their parameter's name, as ScaleLLM's generator writes them.
SIGNATURE = FunctionSignature(
    "void", "launch_attention_sm80", (TypeArg("AttentionTraits"), TypeArg("Params"), BoolArg(True), BoolArg(False)),
    (Parameter(PARAMS, "params"), Parameter("cudaStream_t", "stream")),
    (None, None, InlineComment("EVEN_K="), InlineComment("ALIBI=")),
)
SCALELLM = Style(
    pointer_alignment=PointerAlignment.LEFT,
    spaces_before_trailing_comments=2,
    align_after_open_bracket=BracketAlignment.ALIGN,
)


def test_scalellm_shape_reference_bound_to_type_two_spaces_before_the_close_and_arguments_aligned() -> None:
    unit = TranslationUnit((
        Include("attention_kernel_sm80.cuh", comment=TrailingComment("IWYU pragma: export")),
        Include("attention_params.h", comment=TrailingComment("IWYU pragma: export", spaces=9)),
        BlankLine(),
        Namespace("llm", (
            BlankLine(),
            TypeAlias("Params", "PagedAttentionParams"),
            BlankLine(),
            ExplicitInstantiation(SIGNATURE, layout=BROKEN),
        )),
    ))
    assert render(unit, SCALELLM) == (
        '#include "attention_kernel_sm80.cuh"  // IWYU pragma: export\n'
        '#include "attention_params.h"         // IWYU pragma: export\n'
        "\n"
        "namespace llm {\n"
        "\n"
        "using Params = PagedAttentionParams;\n"
        "\n"
        "template void launch_attention_sm80<AttentionTraits,\n"
        "                                    Params,\n"
        "                                    /*EVEN_K=*/true,\n"
        "                                    /*ALIBI=*/false>(const Params& params,\n"
        "                                                     cudaStream_t stream);\n"
        "}  // namespace llm\n"
    )


def test_onnx_runtime_shape_google_style_specialization() -> None:
    """ONNX Runtime's tree is clang-formatted Google style: `template <>`, `Flash_fwd_params& params`,
    two-space bodies, two spaces before the namespace comments."""
    run = FunctionTemplate(
        (TypeParameter("T"), ValueParameter("int", "Headdim")), "void", "run_mha_fwd_",
        (Parameter(Type("Flash_fwd_params", declarator=Declarator.REFERENCE), "params"), Parameter("cudaStream_t", "stream")),
    )
    hdim = FunctionTemplate((TypeParameter("T"),), "void", "run_mha_fwd_hdim128", run.parameters)
    unit = TranslationUnit((IfSection(Name("USE_FLASH_ATTENTION"), (
        BlankLine(),
        Include("contrib_ops/cuda/bert/flash_attention/flash_fwd_launch_template.h"),
        BlankLine(),
        Namespace("onnxruntime", (Namespace("flash", (
            BlankLine(),
            run.specialize("cutlass::half_t", 128, body=(hdim.call("cutlass::half_t"),)),
            BlankLine(),
        )),)),
    )),))
    google = Style(pointer_alignment=PointerAlignment.LEFT, spaces_before_trailing_comments=2, indent_width=2,
                   space_after_template_keyword=True)
    assert render(unit, google) == (
        "#if USE_FLASH_ATTENTION\n"
        "\n"
        '#include "contrib_ops/cuda/bert/flash_attention/flash_fwd_launch_template.h"\n'
        "\n"
        "namespace onnxruntime {\n"
        "namespace flash {\n"
        "\n"
        "template <>\n"
        "void run_mha_fwd_<cutlass::half_t, 128>(Flash_fwd_params& params, cudaStream_t stream) {\n"
        "  run_mha_fwd_hdim128<cutlass::half_t>(params, stream);\n"
        "}\n"
        "\n"
        "}  // namespace flash\n"
        "}  // namespace onnxruntime\n"
        "#endif\n"
    )


# One row per option value: the style, a declaration, and its text under that style.
ALIAS = STREAM_ALIAS
INSTANCE = LAUNCH.instantiate("AttentionTraits", "Params", True, False)
NAMESPACE = Namespace("llm", (BlankLine(), ClassDeclaration("Tile"), Namespace("detail", (ClassDeclaration("Row"),))))
ENUM = EnumDeclaration("mask_kind", ("none", "causal"))
GUARD = IfNotDefined("FLASHATTENTION_DISABLE_ALIBI", (ClassDeclaration("Alibi"),))
INCLUDE = Include("kernel.h", comment=TrailingComment("IWYU pragma: export"))
WIDE_INCLUDE = Include("kernel.h", comment=TrailingComment("IWYU pragma: export", spaces=5))
SHORT = FunctionTemplate((TypeParameter("T"),), "void", "f", (Parameter(PARAMS, "params"), Parameter("int", "n")))
BROKEN_INSTANCE = SHORT.instantiate("float", layout=BROKEN)
ARGUMENTS_ONLY = SHORT.instantiate("float", layout=Layout(ArgumentLayout.ONE_PER_LINE, indent=2))
PARAMETERS_ONLY = SHORT.instantiate("float", layout=Layout(parameters=ParameterLayout.ALIGNED, indent=2))
SPECIALIZATION = SHORT.specialize("float", body=(SHORT.call("float"),))
PRIMARY = FunctionTemplate((TypeParameter("T"),), "void", "g", defined=True)
POINTER_RETURN = FunctionTemplate((TypeParameter("T"),), Type("T", declarator=Declarator.POINTER), "h")

OPTIONS: list[tuple[str, Style, Declaration, str]] = [
    # PointerAlignment.
    ("pointer right", Style(), INSTANCE,
     "template void launch_attention_sm80<AttentionTraits, Params, true, false>(const Params &params, cudaStream_t stream);"),
    ("pointer left", Style(pointer_alignment=PointerAlignment.LEFT), INSTANCE,
     "template void launch_attention_sm80<AttentionTraits, Params, true, false>(const Params& params, cudaStream_t stream);"),
    ("pointer middle", Style(pointer_alignment=PointerAlignment.MIDDLE), INSTANCE,
     "template void launch_attention_sm80<AttentionTraits, Params, true, false>(const Params & params, cudaStream_t stream);"),
    ("alias right", Style(), ALIAS, "using cudaStream_t = CUstream_st *;"),
    ("alias left", Style(pointer_alignment=PointerAlignment.LEFT), ALIAS, "using cudaStream_t = CUstream_st*;"),
    ("return right", Style(), POINTER_RETURN, "template<typename T>\nT *h();"),
    ("return left", Style(pointer_alignment=PointerAlignment.LEFT), POINTER_RETURN, "template<typename T>\nT* h();"),
    ("return middle", Style(pointer_alignment=PointerAlignment.MIDDLE), POINTER_RETURN, "template<typename T>\nT * h();"),
    # SpacesBeforeTrailingComments: exact before a namespace's comment, a minimum elsewhere.
    ("close comment 2", Style(spaces_before_trailing_comments=2), Namespace("llm"), "namespace llm {\n}  // namespace llm"),
    ("close comment 0", Style(spaces_before_trailing_comments=0), Namespace("llm"), "namespace llm {\n}// namespace llm"),
    ("trailing 2", Style(spaces_before_trailing_comments=2), INCLUDE, '#include "kernel.h"  // IWYU pragma: export'),
    ("trailing wider kept", Style(spaces_before_trailing_comments=2), WIDE_INCLUDE,
     '#include "kernel.h"     // IWYU pragma: export'),
    ("trailing 1", Style(), INCLUDE, '#include "kernel.h" // IWYU pragma: export'),
    # AlignAfterOpenBracket, for the lists a declaration's Layout breaks.
    ("no alignment policy", Style(), BROKEN_INSTANCE,
     "template void f<\n    float>(const Params &params,\n           int n);"),
    ("align", Style(align_after_open_bracket=BracketAlignment.ALIGN), BROKEN_INSTANCE,
     "template void f<float>(const Params &params,\n                       int n);"),
    ("dont align", Style(align_after_open_bracket=BracketAlignment.DONT_ALIGN), BROKEN_INSTANCE,
     "template void f<float>(const Params &params,\n    int n);"),
    ("always break", Style(align_after_open_bracket=BracketAlignment.ALWAYS_BREAK), BROKEN_INSTANCE,
     "template void f<\n    float>(\n    const Params &params,\n    int n);"),
    ("align arguments", Style(align_after_open_bracket=BracketAlignment.ALIGN),
     LAUNCH.instantiate("AttentionTraits", "Params", True, False, layout=Layout(ArgumentLayout.ONE_PER_LINE)),
     "template void launch_attention_sm80<AttentionTraits,\n"
     "                                    Params,\n"
     "                                    true,\n"
     "                                    false>(const Params &params, cudaStream_t stream);"),
    ("dont align arguments", Style(align_after_open_bracket=BracketAlignment.DONT_ALIGN), ARGUMENTS_ONLY,
     "template void f<float>(const Params &params, int n);"),
    ("always break arguments, indent 2", Style(align_after_open_bracket=BracketAlignment.ALWAYS_BREAK),
     ARGUMENTS_ONLY, "template void f<\n  float>(const Params &params, int n);"),
    ("dont align parameters, indent 2", Style(align_after_open_bracket=BracketAlignment.DONT_ALIGN), PARAMETERS_ONLY,
     "template void f<float>(const Params &params,\n  int n);"),
    # IndentWidth.
    ("indent 4", Style(), SPECIALIZATION, "template<>\nvoid f<float>(const Params &params, int n) {\n    f<float>(params, n);\n}"),
    ("indent 2", Style(indent_width=2), SPECIALIZATION, "template<>\nvoid f<float>(const Params &params, int n) {\n  f<float>(params, n);\n}"),
    ("indent 2 enum", Style(indent_width=2), ENUM, "enum mask_kind {\n  none,\n  causal,\n};"),
    # SpaceAfterTemplateKeyword.
    ("template space", Style(space_after_template_keyword=True), SPECIALIZATION,
     "template <>\nvoid f<float>(const Params &params, int n) {\n    f<float>(params, n);\n}"),
    ("template space primary", Style(space_after_template_keyword=True), PRIMARY, "template <typename T>\nvoid g() {}"),
    ("template space instance", Style(space_after_template_keyword=True), SHORT.instantiate("float"),
     "template void f<float>(const Params &params, int n);"),
    # FixNamespaceComments.
    ("bare close", Style(fix_namespace_comments=False), Namespace("llm"), "namespace llm {\n}"),
    # NamespaceIndentation: every level in, blank lines stay empty.
    ("namespace none", Style(), NAMESPACE,
     "namespace llm {\n\nstruct Tile;\nnamespace detail {\nstruct Row;\n} // namespace detail\n} // namespace llm"),
    ("namespace all", Style(namespace_indentation=NamespaceIndentation.ALL, indent_width=2), NAMESPACE,
     "namespace llm {\n\n  struct Tile;\n  namespace detail {\n    struct Row;\n  } // namespace detail\n} // namespace llm"),
    # The brace PyTorch's generator writes tight (no clang-format counterpart).
    ("tight brace", Style(space_before_namespace_brace=False), Namespace("pytorch_flash"),
     "namespace pytorch_flash{\n} // namespace pytorch_flash"),
    # A guard's #endif is bare whatever the policy.
    ("endif", SCALELLM, GUARD, "#ifndef FLASHATTENTION_DISABLE_ALIBI\nstruct Alibi;\n#endif"),
]


@pytest.mark.parametrize(("style", "node", "expected"), [row[1:] for row in OPTIONS], ids=[row[0] for row in OPTIONS])
def test_each_option_places_spaces_and_breaks_as_clang_format_names_it(style: Style, node: Declaration, expected: str) -> None:
    assert render(TranslationUnit((node,)), style) == expected + "\n"


def test_insert_newline_at_eof() -> None:
    unit = TranslationUnit((ClassDeclaration("Tile"),))
    assert render(unit) == "struct Tile;\n"
    assert render(unit, Style(insert_newline_at_eof=False)) == "struct Tile;"


@pytest.mark.parametrize(("build", "field", "value"), [
    (lambda: Style(pointer_alignment="Left"), "pointer_alignment", "Left"),
    (lambda: Style(spaces_before_trailing_comments=-1), "spaces_before_trailing_comments", -1),
    (lambda: Style(spaces_before_trailing_comments=True), "spaces_before_trailing_comments", True),
    (lambda: Style(align_after_open_bracket="Align"), "align_after_open_bracket", "Align"),
    (lambda: Style(indent_width=17), "indent_width", 17),
    (lambda: Style(space_after_template_keyword=1), "space_after_template_keyword", 1),
    (lambda: Style(fix_namespace_comments=None), "fix_namespace_comments", None),
    (lambda: Style(namespace_indentation=True), "namespace_indentation", True),
    (lambda: Style(space_before_namespace_brace="no"), "space_before_namespace_brace", "no"),
])
def test_an_option_takes_only_its_type(build: Any, field: str, value: object) -> None:
    with pytest.raises(ModelError) as raised:
        build()
    assert raised.value.field == field and raised.value.value == value


def test_unknown_options_and_surplus_positions_are_refused() -> None:
    """Options are keywords; positions are only 0.1.0's knobs (tests/compat), nine at most."""
    with pytest.raises(TypeError, match="indent_widht"):
        Style(indent_widht=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="no positional arguments"):
        Style(*[True] * 10)  # type: ignore[misc]


def _tokens(text: str) -> list[str]:
    cindex = load_cindex()
    # Both files exist only in memory, at absolute paths so that the quoted include finds its neighbour.
    unsaved = [("/layout/t.cpp", text), ("/layout/kernel.h", "")]
    unit = cindex.Index.create().parse("/layout/t.cpp", args=["-std=c++17", "-xc++"], unsaved_files=unsaved)
    assert [str(diagnostic) for diagnostic in unit.diagnostics if diagnostic.severity >= 3] == []
    return [token.spelling for token in unit.get_tokens(extent=unit.cursor.extent)
            if token.kind != cindex.TokenKind.COMMENT]


def test_no_option_value_changes_a_token() -> None:
    """Every combination of the options that move tokens around, over a unit using every construct
    they touch, reads to libclang as the same tokens as `Style()` (and parses without an error)."""
    body: tuple[Declaration, ...] = (
        ClassDeclaration("AttentionTraits", complete=True),
        ClassDeclaration("Params", complete=True),
        STREAM_ALIAS,
        LAUNCH,
        ExplicitInstantiation(SIGNATURE, layout=BROKEN),
        SHORT,
        SPECIALIZATION,
        ENUM,
        GUARD,
        Namespace("detail", (ClassDeclaration("Row"),)),
    )
    unit = TranslationUnit((INCLUDE, ClassDeclaration("CUstream_st"), Namespace("llm", body)))
    expected = _tokens(render(unit))
    for pointer, alignment, indentation in itertools.product(
        PointerAlignment, (None, *BracketAlignment), NamespaceIndentation
    ):
        style = Style(pointer_alignment=pointer, align_after_open_bracket=alignment, namespace_indentation=indentation,
                      indent_width=2, spaces_before_trailing_comments=2, space_after_template_keyword=True,
                      space_before_namespace_brace=False)
        assert _tokens(render(unit, style)) == expected, style
