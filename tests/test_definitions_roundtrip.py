"""Random function definitions and declarations render, parse with zero diagnostics, and libclang's
cursors match the model: each function's name, its template parameters, its parameters (names, and
which have a default argument), and a `__global__` kernel's launch bounds, read as clang sees them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flashast.axes import Configuration
from flashast.contract import Contract
from flashast.definitions import (
    CudaSpecifier,
    DefinitionLayout,
    FunctionDeclaration,
    FunctionDefinition,
    FunctionHead,
    LaunchBounds,
    ParameterDeclaration,
)
from flashast.expressions import BinaryExpression, CallExpression, IntegerLiteral, Name
from flashast.generated import GeneratedFile
from flashast.nodes import Include, PragmaOnce, TranslationUnit, TypeParameter
from flashast.preprocessor import CudaStandIns, Defined
from flashast.statements import ConditionalStatements, ExpressionStatement, IfStatement, ReturnStatement
from flashast.style import Style
from flashast.verify import load_cindex, parse_unit

CONTRACT = Contract({"cuda.h": (PragmaOnce(), CudaStandIns(800))})


@st.composite
def heads(draw: st.DrawFn, index: int) -> FunctionHead:
    kernel = draw(st.booleans())
    count = draw(st.integers(0, 3))
    defaults = draw(st.integers(0, count))  # how many trailing parameters have a default
    parameters = [
        ParameterDeclaration("int", f"p{number}", number if number >= count - defaults else None)
        for number in range(count)
    ]
    template = draw(st.booleans())
    return FunctionHead(
        "void" if kernel or draw(st.booleans()) else "int",
        f"f{index}",
        parameters,
        template_parameters=[TypeParameter("T")] if template else [],
        specifiers=[CudaSpecifier.GLOBAL] if kernel else draw(st.sampled_from([[], ["__host__", "__device__"]])),
        launch_bounds=LaunchBounds(draw(st.sampled_from([64, 128, 256])), draw(st.sampled_from([None, 1, 2])))
        if kernel and draw(st.booleans()) else None,
        layout=DefinitionLayout(
            launch_bounds_one_per_line=draw(st.booleans()), break_template_declarations=draw(st.booleans())
        ),
    )


def body(head: FunctionHead) -> list[object]:
    value = None if head.return_type.name.text == "void" else IntegerLiteral(0)  # type: ignore[union-attr]
    uses = [ExpressionStatement(CallExpression("printf", [IntegerLiteral(0)]))] if not head.parameters else [
        IfStatement(BinaryExpression(Name(head.parameters[0].name), ">", 0), ReturnStatement(value))
    ]
    return [ConditionalStatements(Defined("__CUDA_ARCH__"), uses), ReturnStatement(value)]


@settings(max_examples=30, derandomize=True, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=5).flatmap(
    lambda defined: st.tuples(st.just(defined), st.tuples(*(heads(index) for index in range(len(defined)))))
))
def test_definitions_round_trip_through_libclang(drawn: tuple[list[bool], tuple[FunctionHead, ...]]) -> None:
    defined, functions = drawn
    nodes = [
        FunctionDefinition(head, body(head)) if is_defined else FunctionDeclaration(head)  # type: ignore[arg-type]
        for head, is_defined in zip(functions, defined, strict=True)
    ]
    file = GeneratedFile("f.cu", "test", "roundtrip", Configuration(()),
                         TranslationUnit([Include("cuda.h"), *nodes]), Style(), CONTRACT)
    unit = parse_unit(file)
    assert [diagnostic.spelling for diagnostic in unit.diagnostics] == [], file.text
    kinds = load_cindex().CursorKind
    found = {cursor.spelling: cursor for cursor in unit.cursor.get_children()
             if cursor.location.file is not None and cursor.location.file.name.endswith("f.cu")}
    for node, head in zip(nodes, functions, strict=True):
        cursor = found[head.name.text]
        expected_kind = kinds.FUNCTION_TEMPLATE if head.template_parameters else kinds.FUNCTION_DECL
        assert cursor.kind == expected_kind, file.text
        parameters = [child for child in cursor.get_children() if child.kind == kinds.PARM_DECL]
        assert [parameter.spelling for parameter in parameters] == [parameter.name.text for parameter in head.parameters]
        with_default = [any(True for _ in parameter.get_children()) for parameter in parameters]
        assert with_default == [parameter.default is not None for parameter in head.parameters], file.text
        assert cursor.is_definition() == isinstance(node, FunctionDefinition)
        annotations = [child.spelling for child in cursor.get_children() if child.kind == kinds.ANNOTATE_ATTR]
        expected = [specifier.value for specifier in head.specifiers] + (
            ["__launch_bounds__"] if head.launch_bounds is not None else [])
        assert sorted(annotations) == sorted(expected), file.text
