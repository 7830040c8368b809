"""Node tables: each node renders to its C++ text; each invalid value raises ModelError naming it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from flashast import (
    BlankLine,
    BoolArg,
    CallStatement,
    ClassDeclaration,
    Contract,
    Declaration,
    Declarator,
    ExplicitInstantiation,
    ExplicitSpecialization,
    FileName,
    FunctionSignature,
    FunctionTemplate,
    FundamentalType,
    Identifier,
    IfDefined,
    IfNotDefined,
    Include,
    IncludePath,
    IntArg,
    LineComment,
    MacroDefinition,
    MacroName,
    ModelError,
    Namespace,
    Parameter,
    PragmaOnce,
    QualifiedName,
    Style,
    TranslationUnit,
    Type,
    TypeAlias,
    TypeArg,
    TypeParameter,
    ValueKind,
    ValueParameter,
    Verbatim,
    render,
)
from flashast.names import InlineComment, TrailingComment
from flashast.nodes import (
    BlockComment,
    EnumDeclaration,
    Enumerator,
    EnumeratorArg,
    FunctionMacro,
    MacroInstantiation,
    MacroInvocation,
    MacroParameter,
)
from flashast.style import ArgumentLayout, Layout, ParameterLayout

PARAMS = (
    Parameter(Type("Flash_fwd_params", declarator=Declarator.REFERENCE), "params"),
    Parameter(Type("cudaStream_t"), "stream"),
)
SIGNATURE = FunctionSignature("void", "run_mha_fwd_", (TypeArg("cutlass::half_t"), IntArg(32)), PARAMS)
TEMPLATE = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "Headdim")), "void", "run_mha_fwd_", PARAMS)
GGML_TYPE = EnumDeclaration("ggml_type", (Enumerator("GGML_TYPE_F32", 0), "GGML_TYPE_F16", Enumerator("GGML_TYPE_Q4_0", 2)))
GGML_PREC = EnumDeclaration("ggml_prec", ("GGML_PREC_Q8", "GGML_PREC_Q4"), scoped=True)
CONTEXT = (Parameter(Type("ggml_tensor", declarator=Declarator.POINTER), "dst"),)
VEC_CASE = FunctionTemplate(
    (ValueParameter("int", "D"), ValueParameter(GGML_TYPE, "type_K"), ValueParameter(GGML_PREC, "prec", "GGML_PREC_Q8")),
    "void", "vec_case", CONTEXT, defined=True,
)
DECL_VEC_CASE = FunctionMacro(
    "DECL_VEC_CASE", ("D", "type_K"), MacroInstantiation(VEC_CASE, (MacroParameter("D"), MacroParameter("type_K")))
)
ELEMENTS = FunctionTemplate(
    (TypeParameter("T"), ValueParameter("int", "rows")), "void", "mul_mat",
    (Parameter(Type("T", const=True, declarator=Declarator.POINTER), "x"), Parameter("int", "n")), defined=True,
)
DECL_MUL_MAT = FunctionMacro(
    "DECL_MUL_MAT", ("rows",),
    (MacroInstantiation(ELEMENTS, ("float", MacroParameter("rows"))), MacroInstantiation(ELEMENTS, ("half2", MacroParameter("rows")))),
)
ONE_PER_LINE = Layout(ArgumentLayout.ONE_PER_LINE)
ALIGNED = Layout(parameters=ParameterLayout.ALIGNED)

RENDERED = [
    (BlankLine(), ""),
    (LineComment("Copyright (c) 2023, Tri Dao."), "// Copyright (c) 2023, Tri Dao."),
    (LineComment(), "//"),
    (Include("flash_fwd_launch_template.h"), '#include "flash_fwd_launch_template.h"'),
    (Include("ATen/flash.h", angled=True), "#include <ATen/flash.h>"),
    (PragmaOnce(), "#pragma once"),
    (MacroDefinition("FLASH_NAMESPACE", "flash"), "#define FLASH_NAMESPACE flash"),
    (MacroDefinition("FLASHATTENTION_DISABLE_SM8x"), "#define FLASHATTENTION_DISABLE_SM8x"),
    (Namespace("flash", (BlankLine(),)), "namespace flash {\n\n} // namespace flash"),
    (Namespace(MacroName("FLASH_NAMESPACE")), "namespace FLASH_NAMESPACE {\n} // namespace FLASH_NAMESPACE"),
    (IfNotDefined("FLASHATTENTION_DISABLE_HDIM64", (LineComment("x"),)), "#ifndef FLASHATTENTION_DISABLE_HDIM64\n// x\n#endif"),
    (ClassDeclaration("Flash_fwd_params"), "struct Flash_fwd_params;"),
    (ClassDeclaration("Flash_fwd_params", complete=True), "struct Flash_fwd_params {};"),
    (TypeAlias("cudaStream_t", Type("CUstream_st", declarator=Declarator.POINTER)), "using cudaStream_t = CUstream_st *;"),
    (
        TEMPLATE,
        "template<typename T, int Headdim>\nvoid run_mha_fwd_(Flash_fwd_params &params, cudaStream_t stream);",
    ),
    (
        dataclasses.replace(TEMPLATE, defined=True),
        "template<typename T, int Headdim>\nvoid run_mha_fwd_(Flash_fwd_params &params, cudaStream_t stream) {}",
    ),
    (
        ExplicitSpecialization(SIGNATURE, (CallStatement("run_mha_fwd_hdim32", (TypeArg("cutlass::half_t"),), ("params", "stream")),)),
        "template<>\nvoid run_mha_fwd_<cutlass::half_t, 32>(Flash_fwd_params &params, cudaStream_t stream) {\n"
        "    run_mha_fwd_hdim32<cutlass::half_t>(params, stream);\n}",
    ),
    (
        ExplicitInstantiation(SIGNATURE),
        "template void run_mha_fwd_<cutlass::half_t, 32>(Flash_fwd_params &params, cudaStream_t stream);",
    ),
    (
        ExplicitInstantiation(SIGNATURE, extern=True),
        "extern template void run_mha_fwd_<cutlass::half_t, 32>(Flash_fwd_params &params, cudaStream_t stream);",
    ),
    (
        ExplicitInstantiation(FunctionSignature("void", "f", (BoolArg(True), BoolArg(False), IntArg(-3)), ())),
        "template void f<true, false, -3>();",
    ),
    (
        ExplicitInstantiation(FunctionSignature("void", "ns::f", (TypeArg("Tile", (IntArg(64), TypeArg("int"))),), ())),
        "template void ns::f<Tile<64, int>>();",
    ),
    (
        ExplicitInstantiation(FunctionSignature(Type("float", const=True), "f", (TypeArg("std::pair", (TypeArg("X", (IntArg(1),)),)),), ())),
        "template const float f<std::pair<X<1>>>();",
    ),
    (Verbatim("int x;\nint y;"), "int x;\nint y;"),
    # Comments beyond a whole `//` line.
    (BlockComment((" one line ",)), "/* one line */"),
    (BlockComment.starred(["Copyright (c) 2024, Tri Dao.", "", "SPDX-License-Identifier: BSD-3-Clause"]),
     "/*\n * Copyright (c) 2024, Tri Dao.\n *\n * SPDX-License-Identifier: BSD-3-Clause\n */"),
    (BlockComment(("*****", " * boxed", " *****")), "/******\n * boxed\n ******/"),
    (Include("x.h", comment=TrailingComment("IWYU pragma: export", spaces=2)), '#include "x.h"  // IWYU pragma: export'),
    (TEMPLATE.instantiate("cutlass::half_t", 32, comment="hdim 32"),
     "template void run_mha_fwd_<cutlass::half_t, 32>(Flash_fwd_params &params, cudaStream_t stream); // hdim 32"),
    # Parent-relative includes.
    (Include("../fattn-vec.cuh"), '#include "../fattn-vec.cuh"'),
    (Include("../../kernel_forward.h", angled=True), "#include <../../kernel_forward.h>"),
    # Layout of long declarations.
    (TEMPLATE.instantiate("cutlass::half_t", 128, labelled=True, layout=ONE_PER_LINE),
     "template void run_mha_fwd_<\n    /*T=*/cutlass::half_t,\n    /*Headdim=*/128>(Flash_fwd_params &params, cudaStream_t stream);"),
    (TEMPLATE.instantiate("cutlass::half_t", 128, layout=ALIGNED),
     "template void run_mha_fwd_<cutlass::half_t, 128>(Flash_fwd_params &params,\n"
     "                                                 cudaStream_t stream);"),
    (TEMPLATE.specialize("cutlass::half_t", 64, layout=Layout(ArgumentLayout.ONE_PER_LINE, ParameterLayout.ALIGNED, 2)),
     "template<>\nvoid run_mha_fwd_<\n  cutlass::half_t,\n  64>(Flash_fwd_params &params,\n      cudaStream_t stream) {\n}"),
    (TEMPLATE.instantiate("cutlass::half_t", 128, labelled=True),
     "template void run_mha_fwd_</*T=*/cutlass::half_t, /*Headdim=*/128>(Flash_fwd_params &params, cudaStream_t stream);"),
    # Enumerations as template parameter kinds, with enumerator arguments and defaults.
    (GGML_TYPE, "enum ggml_type {\n    GGML_TYPE_F32 = 0,\n    GGML_TYPE_F16,\n    GGML_TYPE_Q4_0 = 2,\n};"),
    (GGML_PREC, "enum class ggml_prec {\n    GGML_PREC_Q8,\n    GGML_PREC_Q4,\n};"),
    (VEC_CASE, "template<int D, ggml_type type_K, ggml_prec prec = ggml_prec::GGML_PREC_Q8>\nvoid vec_case(ggml_tensor *dst) {}"),
    (VEC_CASE.instantiate(64, "GGML_TYPE_F16", "GGML_PREC_Q4"),
     "template void vec_case<64, GGML_TYPE_F16, ggml_prec::GGML_PREC_Q4>(ggml_tensor *dst);"),
    (VEC_CASE.instantiate(64, GGML_TYPE["GGML_TYPE_Q4_0"]), "template void vec_case<64, GGML_TYPE_Q4_0>(ggml_tensor *dst);"),
    # Function-like macros: the contract's definition and the files' invocations.
    (DECL_VEC_CASE, "#define DECL_VEC_CASE(D, type_K) \\\n    template void vec_case<D, type_K>(ggml_tensor *dst)"),
    (DECL_MUL_MAT,
     "#define DECL_MUL_MAT(rows) \\\n"
     "    template void mul_mat<float, rows>(const float *x, int n); \\\n"
     "    template void mul_mat<half2, rows>(const half2 *x, int n)"),
    (DECL_VEC_CASE.invoke(64, "GGML_TYPE_F16", widths=(3,)), "DECL_VEC_CASE( 64, GGML_TYPE_F16);"),
    (DECL_VEC_CASE.invoke(128, "GGML_TYPE_Q4_0", comment=TrailingComment("hdim 128", spaces=2)),
     "DECL_VEC_CASE(128, GGML_TYPE_Q4_0);  // hdim 128"),
    (DECL_MUL_MAT.invoke(7, widths=(0,)), "DECL_MUL_MAT(7);"),
]


@pytest.mark.parametrize(("node", "expected"), RENDERED, ids=lambda value: type(value).__name__)
def test_each_node_renders_its_cpp(node: Declaration, expected: str) -> None:
    assert render(TranslationUnit((node,)), Style(insert_newline_at_eof=False)) == expected


def test_style_knobs_change_only_their_token() -> None:
    unit = TranslationUnit((Namespace("pytorch_flash", (ExplicitInstantiation(SIGNATURE),)),))
    spaced, tight = render(unit), render(unit, Style(space_before_namespace_brace=False))
    assert spaced.splitlines()[0] == "namespace pytorch_flash {"
    assert tight.splitlines()[0] == "namespace pytorch_flash{"
    assert spaced.splitlines()[1:] == tight.splitlines()[1:]
    assert render(unit, Style(insert_newline_at_eof=False)) == spaced.removesuffix("\n")


def test_constructors_store_the_atoms_they_convert() -> None:
    """A str given for convenience is held as the atom the field is annotated with."""
    assert Include("a/b.h").path == IncludePath("a/b.h")
    assert Namespace("flash").name == Identifier("flash")
    assert Namespace("flash::fork").name == QualifiedName.parse("flash::fork")
    assert Namespace(MacroName("FLASH_NAMESPACE")).name == MacroName("FLASH_NAMESPACE")
    assert IfNotDefined("X", [BlankLine()]) == IfNotDefined(MacroName("X"), (BlankLine(),))
    assert Type("int").name == FundamentalType("int") and Type("cutlass::half_t").name == QualifiedName.parse("cutlass::half_t")
    assert Parameter("int", "count") == Parameter(Type(FundamentalType("int")), Identifier("count"))
    assert ValueParameter("bool", "Is_causal").kind is ValueKind.BOOL
    assert CallStatement("f", arguments=["params"]).arguments == (Identifier("params"),)
    assert CallStatement(Identifier("f")).function == QualifiedName((Identifier("f"),))
    assert MacroDefinition("FLASH_NAMESPACE", "flash").replacement == Identifier("flash")
    assert TranslationUnit([BlankLine()]).declarations == (BlankLine(),)
    assert TEMPLATE.signature("cutlass::half_t", 32) == SIGNATURE


REJECTED: list[tuple[Callable[[], object], str, object]] = [
    (lambda: Identifier(""), "text", ""),
    (lambda: Identifier("9lives"), "text", "9lives"),
    (lambda: Identifier("run-mha"), "text", "run-mha"),
    (lambda: Identifier("template"), "text", "template"),
    (lambda: Identifier("bool"), "text", "bool"),
    (lambda: MacroName("FLASH NAMESPACE"), "text", "FLASH NAMESPACE"),
    (lambda: QualifiedName.parse("cutlass::"), "text", "cutlass::"),
    (lambda: QualifiedName.parse("a::class"), "text", "a::class"),
    (lambda: IncludePath('flash".h'), "text", 'flash".h'),
    (lambda: IncludePath("flash>.h"), "text", "flash>.h"),
    (lambda: IncludePath("flash\n.h"), "text", "flash\n.h"),
    (lambda: IncludePath("/usr/include/flash.h"), "text", "/usr/include/flash.h"),
    (lambda: IncludePath("../a//b.h"), "text", "../a//b.h"),
    (lambda: FileName("a//b.cu"), "text", "a//b.cu"),
    (lambda: IncludePath(""), "text", ""),
    (lambda: Include("a\nb.h"), "path", "a\nb.h"),
    (lambda: FileName("../x.cu"), "text", "../x.cu"),
    (lambda: FileName(".hidden.cu"), "text", ".hidden.cu"),
    (lambda: LineComment("two\nlines"), "text", "two\nlines"),
    (lambda: LineComment("splice \\"), "text", "splice \\"),
    (lambda: LineComment("mis-decoded \udcff"), "text", "mis-decoded \udcff"),
    (lambda: Verbatim("// \ud800"), "text", "// \ud800"),
    (lambda: IntArg(True), "value", True),
    (lambda: IntArg("3"), "value", "3"),  # type: ignore[arg-type]
    (lambda: BoolArg(1), "value", 1),  # type: ignore[arg-type]
    (lambda: FundamentalType("integer"), "text", "integer"),
    (lambda: TypeArg("int", (IntArg(1),)), "arguments", (IntArg(1),)),
    (lambda: Namespace("namespace"), "name", "namespace"),
    (lambda: IfNotDefined("1X"), "macro", "1X"),
    (lambda: Parameter(Type("int"), "params stream"), "name", "params stream"),
    (lambda: ValueParameter("float", "x"), "kind", "float"),
    (lambda: Namespace("ns", ("int x;",)), "body", "int x;"),  # type: ignore[arg-type]
    (lambda: FunctionSignature("void", "f", (), (PARAMS[0], PARAMS[0])), "parameters", "params"),
    (
        lambda: ExplicitSpecialization(SIGNATURE, (CallStatement("g", (), ("params", "strem")),)),
        "body",
        "strem",
    ),
    (lambda: TEMPLATE.specialize("cutlass::half_t", True), "template_arguments[Headdim]", True),
    (lambda: TEMPLATE.instantiate(32, "cutlass::half_t"), "template_arguments[T]", 32),
    (lambda: TEMPLATE.instantiate("cutlass::half_t"), "template_arguments", ("cutlass::half_t",)),
    (lambda: Style(insert_newline_at_eof=1), "insert_newline_at_eof", 1),  # type: ignore[arg-type]
    # Values of the wrong type, which only a plugin without a type checker can pass.
    (lambda: Include(3), "path", 3),  # type: ignore[arg-type]
    (lambda: Include("a.h", angled=1), "angled", 1),  # type: ignore[arg-type]
    (lambda: Namespace(3), "name", 3),  # type: ignore[arg-type]
    (lambda: Namespace("::flash"), "name", "::flash"),
    (lambda: IfDefined("NOT A MACRO"), "macro", "NOT A MACRO"),
    (lambda: TypeArg(3), "type", 3),  # type: ignore[arg-type]
    (lambda: TypeArg("Tile", (64,)), "arguments", 64),  # type: ignore[arg-type]
    (lambda: Type("int", declarator="*"), "declarator", "*"),  # type: ignore[arg-type]
    (lambda: Type("int", const=1), "const", 1),  # type: ignore[arg-type]
    (lambda: Parameter(3, "x"), "type", 3),  # type: ignore[arg-type]
    (lambda: CallStatement("f", (), (3,)), "arguments", 3),  # type: ignore[arg-type]
    (lambda: CallStatement("f", (), "params"), "arguments", "params"),
    (lambda: CallStatement("f::"), "function", "f::"),
    (lambda: FunctionSignature("void", "f", (32,), ()), "template_arguments", 32),  # type: ignore[arg-type]
    (lambda: FunctionTemplate(("T",), "void", "f"), "template_parameters", "T"),  # type: ignore[arg-type]
    (lambda: FunctionTemplate((), "void", "f", defined=1), "defined", 1),  # type: ignore[arg-type]
    (lambda: ExplicitInstantiation("template void f();"), "signature", "template void f();"),  # type: ignore[arg-type]
    (lambda: ExplicitSpecialization(SIGNATURE, (BlankLine(),)), "body", BlankLine()),  # type: ignore[arg-type]
    (lambda: MacroDefinition("FLASH_NAMESPACE", "1flash"), "replacement", "1flash"),
    (lambda: ClassDeclaration("Params", complete=1), "complete", 1),  # type: ignore[arg-type]
    (lambda: TypeAlias("cudaStream_t", 3), "target", 3),  # type: ignore[arg-type]
    (lambda: LineComment(3), "text", 3),  # type: ignore[arg-type]
    (lambda: TranslationUnit("int x;"), "declarations", "int x;"),  # type: ignore[arg-type]
    (lambda: TranslationUnit((TypeArg("int"),)), "declarations", TypeArg("int")),  # type: ignore[arg-type]
    (lambda: Contract({"/usr/include/flash.h": ()}), "headers", "/usr/include/flash.h"),
    (lambda: Contract({"flash.h": ("struct X;",)}), "headers[flash.h]", "struct X;"),  # type: ignore[dict-item]
    # Comments: nothing that would end, nest or splice a comment, or break a line.
    (lambda: BlockComment(("a */ b",)), "lines", "a */ b"),
    (lambda: BlockComment(("a /* b",)), "lines", "a /* b"),
    (lambda: BlockComment(("two\nlines",)), "lines", "two\nlines"),
    (lambda: BlockComment(("splice \\", "/ b")), "lines", "splice \\"),
    (lambda: BlockComment(("ends with /",)), "lines", "ends with /"),
    (lambda: BlockComment(()), "lines", ()),
    (lambda: BlockComment("one line"), "lines", "one line"),
    (lambda: InlineComment("x*/"), "text", "x*/"),
    (lambda: InlineComment("x/"), "text", "x/"),
    (lambda: InlineComment("a\nb"), "text", "a\nb"),
    (lambda: TrailingComment("a\nb"), "text", "a\nb"),
    (lambda: TrailingComment("x", spaces=0), "spaces", 0),
    (lambda: Include("x.h", comment="splice \\"), "comment", "splice \\"),
    (lambda: TEMPLATE.instantiate("cutlass::half_t", 32, comment=3), "comment", 3),  # type: ignore[arg-type]
    # Layout: typed choices only.
    (lambda: Layout(indent=-1), "indent", -1),
    (lambda: Layout("one per line"), "template_arguments", "one per line"),  # type: ignore[arg-type]
    (lambda: Layout(parameters="aligned"), "parameters", "aligned"),  # type: ignore[arg-type]
    (lambda: ExplicitInstantiation(SIGNATURE, layout="aligned"), "layout", "aligned"),  # type: ignore[arg-type]
    (lambda: FunctionSignature("void", "f", (IntArg(1), IntArg(2)), (), (None,)), "argument_comments", (None,)),
    (lambda: FunctionSignature("void", "f", (IntArg(1),), (), ("x=",)), "argument_comments", "x="),  # type: ignore[arg-type]
    # Enumerations.
    (lambda: Enumerator("1A"), "name", "1A"),
    (lambda: Enumerator("A", True), "value", True),
    (lambda: Enumerator("A", 2**40), "value", str(2**40)),
    (lambda: EnumDeclaration("E", ["A", "A"]), "enumerators", "A"),
    (lambda: EnumDeclaration("E", [3]), "enumerators", 3),  # type: ignore[list-item]
    (lambda: EnumeratorArg(GGML_TYPE, "GGML_TYPE_BF16"), "enumerator", "GGML_TYPE_BF16"),
    (lambda: EnumeratorArg("ggml_type", "GGML_TYPE_F16"), "enumeration", "ggml_type"),  # type: ignore[arg-type]
    (lambda: ValueParameter(GGML_TYPE, "t", 3), "default", 3),
    (lambda: ValueParameter(GGML_TYPE, "t", "GGML_TYPE_BF16"), "default", "GGML_TYPE_BF16"),
    (lambda: VEC_CASE.instantiate(64, "GGML_TYPE_BF16"), "template_arguments[type_K]", "GGML_TYPE_BF16"),
    (lambda: VEC_CASE.instantiate(64, GGML_PREC["GGML_PREC_Q4"]), "template_arguments[type_K]", GGML_PREC["GGML_PREC_Q4"]),
    (lambda: VEC_CASE.instantiate(64, 1), "template_arguments[type_K]", 1),
    (lambda: VEC_CASE.instantiate(64), "template_arguments", (64,)),
    # Function-like macros.
    (lambda: MacroParameter("1D"), "name", "1D"),
    (lambda: MacroInstantiation(VEC_CASE, (MacroParameter("D"),)), "template_arguments", (MacroParameter("D"),)),
    (lambda: MacroInstantiation(VEC_CASE, (64, 65)), "template_arguments[type_K]", 65),
    (lambda: MacroInstantiation("vec_case", ()), "template", "vec_case"),  # type: ignore[arg-type]
    (lambda: FunctionMacro("1M", ("D",), MacroInstantiation(VEC_CASE, (MacroParameter("D"), "GGML_TYPE_F16"))), "name", "1M"),
    (lambda: FunctionMacro("M", ("D", "D"), MacroInstantiation(VEC_CASE, (MacroParameter("D"), "GGML_TYPE_F16"))),
     "parameters", "D"),
    (lambda: FunctionMacro("M", ("D", "E"), MacroInstantiation(VEC_CASE, (MacroParameter("D"), "GGML_TYPE_F16"))),
     "parameters", "E"),
    (lambda: FunctionMacro("M", ("D",), MacroInstantiation(VEC_CASE, (MacroParameter("X"), "GGML_TYPE_F16"))),
     "expansion", "X"),
    (lambda: FunctionMacro("M", ("dst",), MacroInstantiation(VEC_CASE, (MacroParameter("dst"), "GGML_TYPE_F16"))),
     "parameters", "dst"),
    (lambda: FunctionMacro("M", ("A",), (MacroInstantiation(VEC_CASE, (MacroParameter("A"), "GGML_TYPE_F16")),
                                          MacroInstantiation(VEC_CASE, (64, MacroParameter("A"))))),
     "parameters", "A"),
    (lambda: FunctionMacro("M", (), ()), "expansion", ()),
    # A type named like a macro parameter (not the type parameter it binds) would be replaced too.
    (lambda: FunctionMacro("M", ("n",), MacroInstantiation(ELEMENTS, ("float", MacroParameter("n")))), "parameters", "n"),
    (lambda: FunctionMacro("M", ("half2",), MacroInstantiation(ELEMENTS, ("half2", MacroParameter("half2")))),
     "parameters", "half2"),
    (lambda: DECL_VEC_CASE.invoke(64), "arguments", (64,)),
    (lambda: DECL_VEC_CASE.invoke(64, "GGML_TYPE_BF16"), "template_arguments[type_K]", "GGML_TYPE_BF16"),
    (lambda: DECL_VEC_CASE.invoke(True, "GGML_TYPE_F16"), "template_arguments[D]", True),
    (lambda: DECL_VEC_CASE.invoke(64, "GGML_TYPE_F16", widths=(3, 0, 0)), "widths", (3, 0, 0)),
    (lambda: DECL_VEC_CASE.invoke(64, "GGML_TYPE_F16", widths=(-1,)), "widths", -1),
    (lambda: MacroInvocation(DECL_MUL_MAT, "7"), "arguments", "7"),
    (lambda: MacroInvocation("DECL_MUL_MAT", (7,)), "macro", "DECL_MUL_MAT"),  # type: ignore[arg-type]
    (lambda: FunctionMacro("M", ("T",), MacroInstantiation(ELEMENTS, (MacroParameter("T"), 1))).invoke(TypeArg("Tile", (IntArg(1), IntArg(2)))),
     "arguments", TypeArg("Tile", (IntArg(1), IntArg(2)))),
    (lambda: Contract({"x.h": (DECL_VEC_CASE,)}), "headers[x.h]", "DECL_VEC_CASE"),
]


@pytest.mark.parametrize(("build", "field", "value"), REJECTED)
def test_invalid_values_raise_model_error_naming_field_and_value(
    build: Callable[[], object], field: str, value: object
) -> None:
    with pytest.raises(ModelError) as caught:
        build()
    assert caught.value.field == field
    assert caught.value.value == value
    assert f".{field}=" in str(caught.value) and repr(value) in str(caught.value)


def test_nodes_are_frozen_hashable_and_equal_by_value() -> None:
    first = TEMPLATE.specialize("cutlass::half_t", 64, body=[CallStatement("g", (), ("params",))])
    second = TEMPLATE.specialize(QualifiedName.parse("cutlass::half_t"), IntArg(64), body=(CallStatement("g", (), ("params",)),))
    assert first == second and hash(first) == hash(second)
    assert len({first, second}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.signature = SIGNATURE  # type: ignore[misc]
    assert first != TEMPLATE.specialize("cutlass::half_t", 128, body=[CallStatement("g", (), ("params",))])


def test_replace_reruns_validation_and_conversion() -> None:
    """`dataclasses.replace` goes through each node's own `__init__`, so it converts and checks too."""
    with pytest.raises(ModelError):
        dataclasses.replace(LineComment("ok"), text="not\nok")
    with pytest.raises(ModelError):
        dataclasses.replace(Include("a.h"), path="b\n.h")  # type: ignore[arg-type]  # typed by the fields: atoms
    assert dataclasses.replace(Include("a.h"), angled=True) == Include("a.h", angled=True)
    nested = dataclasses.replace(Namespace("flash"), name=QualifiedName.parse("flash::fork"))
    assert render(TranslationUnit((nested,))) == "namespace flash::fork {\n} // namespace flash::fork\n"


def test_render_is_deterministic() -> None:
    unit = TranslationUnit((Include("x.h"), Namespace("n", (TEMPLATE, ExplicitInstantiation(SIGNATURE)))))
    rebuilt = TranslationUnit((Include("x.h"), Namespace("n", (TEMPLATE, ExplicitInstantiation(SIGNATURE)))))
    assert render(unit) == render(rebuilt) == render(unit)


def test_walk_visits_nested_declarations_in_order() -> None:
    inner = ExplicitInstantiation(SIGNATURE)
    unit = TranslationUnit((Namespace("a", (IfNotDefined("X", (inner,)),)), BlankLine()))
    assert [type(node).__name__ for node in unit.walk()] == ["Namespace", "IfNotDefined", "ExplicitInstantiation", "BlankLine"]


def test_guards_and_nested_namespaces_print_as_every_upstream_tree_spaces_them() -> None:
    """`#ifdef` (a fork's switch), a bare `#endif`, `T &name`, `} // namespace a::b`: fixed, not knobs."""
    unit = TranslationUnit(
        (Namespace("flash::fork", (IfDefined("FLASHATTENTION_NFUNC_2", (ExplicitInstantiation(SIGNATURE),)),)),)
    )
    assert render(unit) == (
        "namespace flash::fork {\n"
        "#ifdef FLASHATTENTION_NFUNC_2\n"
        "template void run_mha_fwd_<cutlass::half_t, 32>(Flash_fwd_params &params, cudaStream_t stream);\n"
        "#endif\n"
        "} // namespace flash::fork\n"
    )
    assert [type(node).__name__ for node in unit.walk()] == ["Namespace", "IfDefined", "ExplicitInstantiation"]


def test_the_new_constructs_hold_what_they_mean() -> None:
    """Comments, enumerations, defaults, labels and macros, as the model (not the text) sees them."""
    assert Include("x.h", comment="IWYU pragma: export").comment == TrailingComment("IWYU pragma: export")
    assert [GGML_TYPE.value_of(Identifier(name)) for name in ("GGML_TYPE_F32", "GGML_TYPE_F16", "GGML_TYPE_Q4_0")] == [0, 1, 2]
    # A defaulted trailing argument may be left out; what is given is what the C++ spells.
    assert VEC_CASE.signature(64, "GGML_TYPE_F16").template_arguments == (IntArg(64), GGML_TYPE["GGML_TYPE_F16"])
    assert VEC_CASE.labels() == (InlineComment("D="), InlineComment("type_K="), InlineComment("prec="))
    # A parameter typed by a template type parameter is spelled with its argument.
    assert ELEMENTS.signature("float", 1).parameters[0] == Parameter(Type("float", const=True, declarator=Declarator.POINTER), "x")
    # An invocation means the instantiations its macro expands to, with its arguments in place.
    assert DECL_VEC_CASE.invoke(64, "GGML_TYPE_F16").expansion() == (VEC_CASE.instantiate(64, "GGML_TYPE_F16"),)
    assert DECL_MUL_MAT.invoke(3).expansion() == (ELEMENTS.instantiate("float", 3), ELEMENTS.instantiate("half2", 3))
    first, second = DECL_VEC_CASE.invoke(64, "GGML_TYPE_F16"), DECL_VEC_CASE.invoke(64, GGML_TYPE["GGML_TYPE_F16"])
    assert first == second and hash(first) == hash(second)
    # Layout and comments change no declaration's arguments, which is what duplicate checks compare.
    plain, wrapped = TEMPLATE.instantiate("cutlass::half_t", 64), TEMPLATE.instantiate(
        "cutlass::half_t", 64, layout=ONE_PER_LINE, labelled=True, comment="x")
    assert plain.signature.template_arguments == wrapped.signature.template_arguments and plain != wrapped
    assert ExplicitInstantiation(SIGNATURE, True).extern
    with pytest.raises(ModelError):
        dataclasses.replace(BlockComment((" ok ",)), lines=(" not */ ok",))
    with pytest.raises(ModelError):
        dataclasses.replace(first, arguments=(IntArg(64),))
