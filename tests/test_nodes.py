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

PARAMS = (
    Parameter(Type("Flash_fwd_params", declarator=Declarator.REFERENCE), "params"),
    Parameter(Type("cudaStream_t"), "stream"),
)
SIGNATURE = FunctionSignature("void", "run_mha_fwd_", (TypeArg("cutlass::half_t"), IntArg(32)), PARAMS)
TEMPLATE = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "Headdim")), "void", "run_mha_fwd_", PARAMS)

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
]


@pytest.mark.parametrize(("node", "expected"), RENDERED, ids=lambda value: type(value).__name__)
def test_each_node_renders_its_cpp(node: Declaration, expected: str) -> None:
    assert render(TranslationUnit((node,)), Style(final_newline=False)) == expected


def test_style_knobs_change_only_their_token() -> None:
    unit = TranslationUnit((Namespace("pytorch_flash", (ExplicitInstantiation(SIGNATURE),)),))
    spaced, tight = render(unit), render(unit, Style(space_before_namespace_brace=False))
    assert spaced.splitlines()[0] == "namespace pytorch_flash {"
    assert tight.splitlines()[0] == "namespace pytorch_flash{"
    assert spaced.splitlines()[1:] == tight.splitlines()[1:]
    assert render(unit, Style(final_newline=False)) == spaced.removesuffix("\n")


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
    (lambda: Style(final_newline=1), "final_newline", 1),  # type: ignore[arg-type]
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
