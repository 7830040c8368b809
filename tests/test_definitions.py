"""Definition-level constructs: function definitions and declarations with CUDA specifiers, statements,
expressions, preprocessor conditionals and class templates. Each valid construct prints as the C++ it
stands for; each invalid one is a `ModelError` naming the class and the field; a unit built from them
parses with zero diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from flashast.axes import Configuration
from flashast.classes import ClassDefinition, ClassTemplate, StaticDataMember, VariableTemplate
from flashast.contract import Contract
from flashast.definitions import (
    CudaSpecifier,
    DefinitionLayout,
    FunctionDeclaration,
    FunctionDefinition,
    FunctionHead,
    LaunchBounds,
    ParameterDeclaration,
    TypenameSpecifier,
    UsingDirective,
)
from flashast.errors import ModelError, VerificationError
from flashast.expressions import (
    BinaryExpression,
    BooleanLiteral,
    CallExpression,
    FunctionalCast,
    IntegerLiteral,
    MemberAccess,
    Name,
    StringLiteral,
    TemplateId,
    UnaryExpression,
)
from flashast.generated import GeneratedFile
from flashast.nodes import (
    BlankLine,
    Declarator,
    Include,
    Namespace,
    PragmaOnce,
    TranslationUnit,
    Type,
    TypeArg,
    TypeParameter,
    ValueParameter,
)
from flashast.preprocessor import CudaStandIns, Defined, IfSection
from flashast.printer import render
from flashast.statements import (
    Block,
    ConditionalStatements,
    ExpressionStatement,
    IfStatement,
    ReturnStatement,
    StatementLayout,
)
from flashast.style import PointerAlignment, Style
from flashast.verify import verify
from flashast.verify.checks import find_clashes

KERNEL = ClassTemplate(
    (TypeParameter("T"), ValueParameter("int", "Tile"), ValueParameter("bool", "Fast", False)),
    "Kernel",
    (
        ClassDefinition("Params", [FunctionDeclaration(FunctionHead("bool", "ready"))]),
        StaticDataMember("int", "kThreads", 256),
        FunctionDeclaration(FunctionHead("void", "run", [ParameterDeclaration("Params", "p")], static=True)),
    ),
)
IS_SAME_V = VariableTemplate((TypeParameter("A"), TypeParameter("B")), "bool", "is_same_v", False)


def kernel_wrapper() -> FunctionDefinition:
    params = TypenameSpecifier(KERNEL.member("Params", "float", 64))
    head = FunctionHead(
        "void", "wrapper", [ParameterDeclaration(params, "p")], specifiers=[CudaSpecifier.GLOBAL],
        launch_bounds=LaunchBounds(KERNEL.member("kThreads", "float", 64), 1),
    )
    body = [
        ConditionalStatements(
            BinaryExpression(Name("__CUDA_ARCH__"), ">=", 800),
            [
                IfStatement(UnaryExpression("!", CallExpression(MemberAccess("p", "ready"))), Block([ReturnStatement()])),
                ExpressionStatement(CallExpression(KERNEL.member("run", "float", 64), ["p"])),
            ],
            endif_comment="__CUDA_ARCH__ >= 800",
        ),
        BlankLine(),
        ExpressionStatement(CallExpression("printf", [StringLiteral('say "hi"\\\n')])),
    ]
    return FunctionDefinition(head, body)


def dispatcher() -> FunctionDefinition:
    head = FunctionHead(
        "void", "dispatch", [ParameterDeclaration("F", "callback"), ParameterDeclaration("int", "cc", 0)],
        template_parameters=[TypeParameter("DT"), TypeParameter("F")],
    )
    is_float = Name("std", IS_SAME_V.template_id("DT", "float"))
    condition = BinaryExpression(is_float, "&&", BinaryExpression(BinaryExpression("cc", "==", 86), "||", BinaryExpression("cc", "==", 89)))
    call = CallExpression("callback", [FunctionalCast(Name(KERNEL.template_id("float", 64))), Name("wrapper")])
    return FunctionDefinition(head, [IfStatement(condition, ExpressionStatement(call))])


EXPECTED = """\
__global__ void __launch_bounds__(Kernel<float, 64>::kThreads, 1) wrapper(typename Kernel<float, 64>::Params p) {
#if __CUDA_ARCH__ >= 800
    if (!p.ready()) {
        return;
    }
    Kernel<float, 64>::run(p);
#endif // __CUDA_ARCH__ >= 800

    printf("say \\"hi\\"\\\\\\n");
}
template<typename DT, typename F>
void dispatch(F callback, int cc = 0) {
    if (std::is_same_v<DT, float> && (cc == 86 || cc == 89)) callback(Kernel<float, 64>(), wrapper);
}
"""


def test_definitions_statements_and_expressions_print_as_the_cpp_they_stand_for() -> None:
    assert render(TranslationUnit([kernel_wrapper(), dispatcher()])) == EXPECTED


def test_the_files_style_lays_out_definitions_too() -> None:
    """Indent width, `template <`, pointer alignment and trailing-comment spacing come from the file's
    `Style` unless a definition's layout says otherwise."""
    style = Style(indent_width=2, space_after_template_keyword=True, pointer_alignment=PointerAlignment.LEFT,
                  spaces_before_trailing_comments=2)
    head = FunctionHead(
        "void", "f", [ParameterDeclaration(Type("T", declarator=Declarator.REFERENCE), "x")],
        template_parameters=[TypeParameter("T")],
    )
    body = [ConditionalStatements(Defined("FAST"), [ReturnStatement()], endif_comment="FAST")]
    assert render(TranslationUnit([FunctionDefinition(head, body)]), style) == (
        "template <typename T>\nvoid f(T& x) {\n#ifdef FAST\n  return;\n#endif  // FAST\n}\n"
    )
    four = replace(head, layout=DefinitionLayout(indent_width=4, space_after_template_keyword=False))
    assert render(TranslationUnit([FunctionDefinition(four, body)]), style).splitlines()[0] == "template<typename T>"
    assert render(TranslationUnit([FunctionDefinition(four, body)]), style).splitlines()[3] == "    return;"


def test_layouts_move_breaks_and_spaces_only() -> None:
    layout = DefinitionLayout(indent_width=2, launch_bounds_one_per_line=True, continuation_indent_width=6)
    wrapper = kernel_wrapper()
    head = FunctionHead(
        "void", "k", [], specifiers=["__global__"], launch_bounds=LaunchBounds(128, 2), layout=layout,
    )
    printf = ExpressionStatement(
        CallExpression("printf", [StringLiteral("%d"), 1]), StatementLayout(arguments_one_per_line=True, indent_offset=1)
    )
    text = render(TranslationUnit([FunctionDefinition(head, [printf]), FunctionDeclaration(head)]))
    assert text == (
        "__global__ void __launch_bounds__(\n      128,\n      2)\nk() {\n   printf(\n       \"%d\",\n       1);\n}\n"
        "__global__ void __launch_bounds__(\n      128,\n      2)\nk();\n"
    )
    one_line = DefinitionLayout(break_template_declarations=False, space_after_template_keyword=False)
    template = FunctionHead("void", "f", [ParameterDeclaration("T", "x")], template_parameters=[TypeParameter("T")],
                            layout=one_line)
    assert render(TranslationUnit([FunctionDeclaration(template)])) == "template<typename T> void f(T x);\n"
    assert wrapper.declaration().head == wrapper.head


def test_else_and_else_if_continue_the_closing_brace() -> None:
    call = ExpressionStatement(CallExpression("run", [1]))
    cascade = IfStatement(
        BinaryExpression("d", "<=", 64), Block([call]),
        IfStatement(BinaryExpression("d", "<=", 128), Block([call]), Block([ReturnStatement(0)])),
    )
    text = render(TranslationUnit([FunctionDefinition(FunctionHead("int", "pick", [ParameterDeclaration("int", "d")]),
                                                      [cascade, ReturnStatement(0)])]))
    assert text == (
        "int pick(int d) {\n    if (d <= 64) {\n        run(1);\n    } else if (d <= 128) {\n        run(1);\n"
        "    } else {\n        return 0;\n    }\n    return 0;\n}\n"
    )


def test_parentheses_follow_precedence() -> None:
    def spelled(expression: object) -> str:
        statement = ExpressionStatement(expression)  # type: ignore[arg-type]
        return render(TranslationUnit([FunctionDefinition(FunctionHead("void", "f"), [statement])])).splitlines()[1].strip()

    assert spelled(BinaryExpression(BinaryExpression("a", "+", "b"), "*", "c")) == "(a + b) * c;"
    assert spelled(BinaryExpression("a", "-", BinaryExpression("b", "-", "c"))) == "a - (b - c);"
    assert spelled(BinaryExpression(BinaryExpression("a", "-", "b"), "-", "c")) == "a - b - c;"
    assert spelled(UnaryExpression("-", UnaryExpression("-", 1))) == "-(-1);"
    assert spelled(FunctionalCast("int", [BinaryExpression("x", "+", 0)])) == "int(x + 0);"
    assert spelled(MemberAccess(BinaryExpression("a", "+", "b"), "c")) == "(a + b).c;"
    # Where clang's -Wparentheses (in -Wall) would warn, parentheses although precedence agrees.
    assert spelled(BinaryExpression("a", "||", BinaryExpression("b", "&&", "c"))) == "a || (b && c);"
    assert spelled(BinaryExpression(UnaryExpression("!", "a"), "==", "b")) == "(!a) == b;"
    assert spelled(BinaryExpression(BinaryExpression("a", "<", "b"), "<", "c")) == "(a < b) < c;"


def test_file_level_if_sections_and_stand_ins_print() -> None:
    unit = TranslationUnit(
        [IfSection(BinaryExpression(Name("__CUDA_ARCH__"), ">=", 800), [UsingDirective("cutlass::arch")], "sm80"),
         IfSection(Defined("NO_KERNELS", negated=True), [BlankLine()])]
    )
    assert render(unit) == "#if __CUDA_ARCH__ >= 800\nusing namespace cutlass::arch;\n#endif // sm80\n#ifndef NO_KERNELS\n\n#endif\n"
    assert IfSection in {type(node) for node in unit.walk()} and any(isinstance(node, UsingDirective) for node in unit.walk())
    assert "#define __CUDA_ARCH__ 800" in render(TranslationUnit([CudaStandIns(800)]))
    assert "__CUDA_ARCH__" not in render(TranslationUnit([CudaStandIns()]))


def test_a_unit_of_definitions_parses_with_zero_diagnostics() -> None:
    contract = Contract(
        {"kernel.h": (PragmaOnce(), CudaStandIns(800), Namespace("std", [IS_SAME_V]), KERNEL)}
    )
    unit = TranslationUnit([Include("kernel.h"), kernel_wrapper(), dispatcher()])
    file = GeneratedFile("kernels.cu", "test", "wrappers", Configuration(()), unit, Style(), contract)
    report = verify([file])
    assert (report.errors, report.warnings) == ([], [])


INVALID: list[tuple[str, str, Callable[[], object]]] = [
    ("IntegerLiteral", "value", lambda: IntegerLiteral(True)),
    ("IntegerLiteral", "value", lambda: IntegerLiteral(-1)),
    ("BooleanLiteral", "value", lambda: BooleanLiteral(1)),  # type: ignore[arg-type]
    ("StringLiteral", "value", lambda: StringLiteral("bell\a")),
    ("StringLiteral", "value", lambda: StringLiteral("what??!")),
    ("TemplateId", "name", lambda: TemplateId("class", [])),
    ("Name", "parts", lambda: Name()),
    ("Name", "parts", lambda: Name("for")),
    ("Name", "parts", lambda: Name("a::1b")),
    ("Name", "parts", lambda: Name("a", "::b")),
    ("BinaryExpression", "operator", lambda: BinaryExpression("a", "<=>", "b")),
    ("UnaryExpression", "operator", lambda: UnaryExpression("++", "a")),
    ("CallExpression", "function", lambda: CallExpression(IntegerLiteral(1))),  # type: ignore[arg-type]
    ("FunctionalCast", "type", lambda: FunctionalCast("unsigned int", [1])),
    ("TypenameSpecifier", "name", lambda: TypenameSpecifier(Name("Params"))),
    ("ParameterDeclaration", "name", lambda: ParameterDeclaration("int", "int")),
    ("LaunchBounds", "max_threads_per_block", lambda: LaunchBounds(StringLiteral("256"))),  # type: ignore[arg-type]
    ("FunctionHead", "launch_bounds", lambda: FunctionHead("void", "f", launch_bounds=LaunchBounds(128))),
    ("FunctionHead", "return_type", lambda: FunctionHead("int", "k", specifiers=["__global__"])),
    ("FunctionHead", "specifiers", lambda: FunctionHead("void", "k", specifiers=["__global__", "__device__"])),
    ("FunctionHead", "specifiers", lambda: FunctionHead("void", "k", specifiers=["__device__", "__host__"])),
    ("FunctionHead", "specifiers", lambda: FunctionHead("void", "k", specifiers=["__shared__"])),
    ("FunctionHead", "parameters", lambda: FunctionHead(
        "void", "f", [ParameterDeclaration("int", "a", 0), ParameterDeclaration("int", "b")])),
    ("FunctionHead", "parameters", lambda: FunctionHead(
        "void", "f", [ParameterDeclaration("int", "a"), ParameterDeclaration("int", "a")])),
    ("FunctionDefinition", "body", lambda: FunctionDefinition(FunctionHead("void", "f"), [Include("x.h")])),  # type: ignore[list-item]
    ("IfStatement", "body", lambda: IfStatement("x", BlankLine())),  # type: ignore[arg-type]
    ("IfStatement", "else_body", lambda: IfStatement("x", ReturnStatement(), Block())),
    ("IfStatement", "else_body", lambda: IfStatement("x", Block(), ReturnStatement())),  # type: ignore[arg-type]
    ("FunctionDefinition", "body", lambda: FunctionDefinition(
        FunctionHead("void", "f"), [IfStatement("x", Block(), Block([ReturnStatement(1)]))])),
    ("FunctionDefinition", "body", lambda: FunctionDefinition(FunctionHead("void", "f"), [ReturnStatement(0)])),
    ("FunctionDefinition", "body", lambda: FunctionDefinition(
        FunctionHead("int", "f"), [IfStatement("x", Block([ConditionalStatements(Defined("X"), [ReturnStatement()])]))])),
    ("ExpressionStatement", "layout", lambda: ExpressionStatement(Name("x"), StatementLayout(arguments_one_per_line=True))),
    ("ConditionalStatements", "condition", lambda: ConditionalStatements(CallExpression("f"), [])),
    ("ConditionalStatements", "condition", lambda: ConditionalStatements(BinaryExpression(StringLiteral("a"), "==", 1), [])),
    ("ConditionalStatements", "condition", lambda: ConditionalStatements(Name("std::size"), [])),
    ("IfSection", "body", lambda: IfSection(Defined("X"), [ReturnStatement()])),  # type: ignore[list-item]
    ("IfSection", "endif_comment", lambda: IfSection(Defined("X"), [], "two\nlines")),
    ("ClassTemplate", "members", lambda: ClassTemplate([TypeParameter("T")], "C", [
        StaticDataMember("int", "n", 1), StaticDataMember("int", "n", 2)])),
    ("ClassTemplate", "template_parameters", lambda: ClassTemplate([], "C")),
    ("ClassTemplate(Kernel)", "member", lambda: KERNEL.member("missing", "float", 64)),
    ("ClassTemplate(Kernel)", "template_arguments", lambda: KERNEL.template_id("float")),
    ("CudaStandIns", "checked_architecture", lambda: CudaStandIns(80)),
    ("DefinitionLayout", "indent_width", lambda: DefinitionLayout(indent_width=-1)),
    ("StatementLayout", "indent_offset", lambda: StatementLayout(indent_offset=True)),
]


@pytest.mark.parametrize(("owner", "field", "build"), INVALID, ids=[f"{owner}.{field}" for owner, field, _ in INVALID])
def test_invalid_constructs_are_refused_naming_class_and_field(owner: str, field: str, build: Callable[[], object]) -> None:
    with pytest.raises(ModelError) as raised:
        build()
    assert (raised.value.owner, raised.value.field) == (owner, field)


def test_values_convert_as_the_fields_say() -> None:
    assert BinaryExpression("cc", "==", 86) == BinaryExpression(Name("cc"), "==", IntegerLiteral(86))
    assert Name("cutlass::arch::Sm80").parts == Name("cutlass", "arch", "Sm80").parts
    assert Name("::cutlass::half_t") == Name("cutlass", "half_t", absolute=True)
    assert ParameterDeclaration("int", "cc", True).default == BooleanLiteral(True)
    assert TemplateId("Tile", [TypeArg("float")]).arguments == (TypeArg("float"),)
    assert StringLiteral("a\tb\n").spelled == '"a\\tb\\n"'


def test_a_kernel_defined_in_two_files_is_a_duplicate_symbol() -> None:
    """A non-template, non-static function defined in two files fails at the second file's line; a
    template (defined in every file that uses it) or a `static` function (each file's own) does not."""
    contract = Contract({"kernel.h": (PragmaOnce(), CudaStandIns(800), Namespace("std", [IS_SAME_V]), KERNEL)})

    def file(name: str, *definitions: FunctionDefinition) -> GeneratedFile:
        unit = TranslationUnit([Include("kernel.h"), *definitions])
        return GeneratedFile(name, "test", "wrappers", Configuration(()), unit, Style(), contract)

    helper = FunctionDefinition(FunctionHead("int", "helper", static=True), [ReturnStatement(0)])
    template = FunctionDefinition(
        FunctionHead("void", "forward", [ParameterDeclaration("T", "x")], template_parameters=[TypeParameter("T")])
    )
    assert verify([file("a.cu", kernel_wrapper(), template), file("b.cu", template)]).errors == []
    assert find_clashes([file("a.cu", helper), file("b.cu", helper)]) == []
    with pytest.raises(VerificationError) as raised:
        verify([file("a.cu", kernel_wrapper()), file("b.cu", kernel_wrapper())])
    assert "b.cu:2:67: error: redefinition of 'wrapper'" in raised.value.report
    assert "a.cu:2:67: note: previous definition is here" in raised.value.report
