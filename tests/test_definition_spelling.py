"""The one walk over a unit's definitions, and how the duplicate check and the dispatch check name
what it finds (`flashast.scoped_definitions`, `flashast.definition_spelling`).

The table pins each speller's value per node, and each row checks that the two checks agree where
they must: a specialization or instantiation that the duplicate check counts is the very
specialization the dispatch check compares with a dispatcher's call.
"""

from __future__ import annotations

import pytest

from flashast.axes import Configuration
from flashast.contract import Contract
from flashast.definition_spelling import diagnostic_name, dispatch_key, duplicate_key
from flashast.definitions import FunctionDefinition, FunctionHead, ParameterDeclaration
from flashast.expressions import BinaryExpression, IntegerLiteral, Name
from flashast.generated import GeneratedFile
from flashast.names import MacroName
from flashast.nodes import (
    Declarator,
    EnumDeclaration,
    Enumerator,
    ExplicitInstantiation,
    ExplicitSpecialization,
    FunctionMacro,
    FunctionSignature,
    FunctionTemplate,
    IfDefined,
    IfNotDefined,
    Include,
    IntArg,
    LineComment,
    MacroInstantiation,
    MacroParameter,
    Namespace,
    Parameter,
    TranslationUnit,
    Type,
    TypeArg,
    TypeParameter,
    ValueParameter,
)
from flashast.preprocessor import Defined, IfSection
from flashast.scoped_definitions import DefinitionNode, Guard, TemplateDefinitionNode, definitions, namespace_parts
from flashast.style import Style
from flashast.verify.checks import find_clashes

PARAMS = (Parameter(Type("Flash_fwd_params", declarator=Declarator.REFERENCE), "params"),)
RUN = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "Headdim")), "void", "run_mha_fwd_", PARAMS)
GGML_TYPE = EnumDeclaration("ggml_type", (Enumerator("GGML_TYPE_F32", 0), "GGML_TYPE_F16", Enumerator("GGML_TYPE_Q4_0", 2)))
PRECISION = EnumDeclaration("precision", ("LOW", "HIGH"), scoped=True)
VEC_CASE = FunctionTemplate(
    (ValueParameter("int", "D"), ValueParameter(GGML_TYPE, "type_K")), "void", "vec_case", PARAMS, defined=True,
)
BY_PRECISION = FunctionTemplate((ValueParameter(PRECISION, "p"),), "void", "by_precision", PARAMS, defined=True)
DECL_VEC_CASE = FunctionMacro(
    "DECL_VEC_CASE", ("D",), (MacroInstantiation(VEC_CASE, (MacroParameter("D"), "GGML_TYPE_F16")),
                              MacroInstantiation(VEC_CASE, (MacroParameter("D"), "GGML_TYPE_Q4_0"))),
)


def kernel(name: str = "kernel", *, static: bool = False, parameter: str = "int", template: bool = False) -> DefinitionNode:
    head = FunctionHead("void", name, [ParameterDeclaration(parameter, "n")], static=static,
                        template_parameters=[TypeParameter("T")] if template else ())
    return FunctionDefinition(head)


# scope, node, the dispatch check's name (None: not a template's specialization), the duplicate
# check's verdict (True: counted, its key agreeing with the dispatch name; False: cannot clash), and
# the duplicate report's name.
TABLE: list[tuple[tuple[str, ...], DefinitionNode, str | None, bool, str]] = [
    (("flash",), RUN.specialize("cutlass::half_t", 128), "flash::run_mha_fwd_<cutlass::half_t, 128>", True,
     "run_mha_fwd_<cutlass::half_t, 128>"),
    (("flash",), RUN.instantiate("cutlass::half_t", 128, labelled=True), "flash::run_mha_fwd_<cutlass::half_t, 128>",
     True, "run_mha_fwd_<cutlass::half_t, 128>"),
    # An `extern template` line defines nothing: the dispatch check reads it as a requirement.
    (("flash",), RUN.instantiate("cutlass::half_t", 128, extern=True), "flash::run_mha_fwd_<cutlass::half_t, 128>",
     False, "run_mha_fwd_<cutlass::half_t, 128>"),
    # A qualified name continues its scope; a leading `::` starts from the global one.
    (("outer",), ExplicitInstantiation(FunctionSignature("void", "flash::run", (IntArg(1),), PARAMS)),
     "outer::flash::run<1>", True, "flash::run<1>"),
    (("outer",), ExplicitInstantiation(FunctionSignature("void", "::flash::run", (IntArg(1),), PARAMS)),
     "flash::run<1>", True, "::flash::run<1>"),
    # As clang reads arguments back: `unsigned` is `unsigned int`, an enumerator its value.
    ((), ExplicitSpecialization(FunctionSignature("void", "f", (TypeArg("unsigned"),), PARAMS)), "f<unsigned int>",
     True, "f<unsigned>"),
    ((), ExplicitInstantiation(FunctionSignature("void", "f", (TypeArg("unsigned int"),), PARAMS)), "f<unsigned int>",
     True, "f<unsigned int>"),
    ((), VEC_CASE.instantiate(64, "GGML_TYPE_Q4_0"), "vec_case<64, 2>", True, "vec_case<64, GGML_TYPE_Q4_0>"),
    ((), BY_PRECISION.instantiate("HIGH"), "by_precision<1>", True, "by_precision<precision::HIGH>"),
    ((), ExplicitInstantiation(FunctionSignature("void", "g", (TypeArg("Tile", (TypeArg("float"), IntArg(64))),), PARAMS)),
     "g<Tile<float, 64>>", True, "g<Tile<float, 64>>"),
    # A plain function is a symbol of its own; a template or a `static` one is each file's own.
    (("flash",), kernel(), None, True, "kernel()"),
    (("flash",), kernel(static=True), None, False, "kernel()"),
    (("flash",), kernel(template=True), None, False, "kernel()"),
]


@pytest.mark.parametrize(("scope", "node", "dispatched", "counted", "reported"), TABLE)
def test_each_definition_is_named_alike_by_the_duplicate_and_the_dispatch_check(
    scope: tuple[str, ...], node: DefinitionNode, dispatched: str | None, counted: bool, reported: str
) -> None:
    key = duplicate_key(scope, node)
    assert (key is not None) is counted
    assert diagnostic_name(node) == reported
    if isinstance(node, FunctionDefinition):
        assert dispatched is None
        return
    template, arguments = dispatch_key(scope, node)
    assert f"{template}<{', '.join(arguments)}>" == dispatched
    if key is not None:
        # What the duplicate check counts is the very specialization the dispatch check compares.
        assert key == (template, arguments)


def test_two_definitions_are_one_entity_to_both_checks_or_to_neither() -> None:
    templates: list[tuple[tuple[str, ...], TemplateDefinitionNode]] = [
        (scope, node) for scope, node, _, counted, _ in TABLE if counted and not isinstance(node, FunctionDefinition)
    ]
    for scope, node in templates:
        for other_scope, other in templates:
            same_to_the_dispatch_check = dispatch_key(scope, node) == dispatch_key(other_scope, other)
            assert (duplicate_key(scope, node) == duplicate_key(other_scope, other)) is same_to_the_dispatch_check
    # The table's pairs: a specialization and a labelled instantiation (a comment is no argument),
    # `unsigned` and `unsigned int`.
    assert len(templates) - len({dispatch_key(scope, node) for scope, node in templates}) == 2


def test_unsigned_and_unsigned_int_in_two_files_are_one_symbol_defined_twice() -> None:
    contract = Contract({"f.h": (FunctionTemplate((TypeParameter("T"),), "void", "f", PARAMS),)})

    def file(name: str, argument: str) -> GeneratedFile:
        unit = TranslationUnit([Include("f.h"), ExplicitInstantiation(FunctionSignature("void", "f", (TypeArg(argument),), PARAMS))])
        return GeneratedFile(name, "test", "f", Configuration(()), unit, Style(), contract)

    [clash] = find_clashes([file("a.cu", "unsigned"), file("b.cu", "unsigned int"), file("c.cu", "int")])
    assert (clash.first.name, clash.second.name) == ("a.cu", "b.cu")
    assert clash.diagnostic().message == "f<unsigned int> is also defined in a.cu (a duplicate symbol at link time)"


def test_one_walk_yields_each_definition_with_its_scope_guards_and_the_macro_invocation_that_wrote_it() -> None:
    invocation = DECL_VEC_CASE.invoke(64)
    unit = TranslationUnit([
        LineComment("not a definition"),
        Namespace(MacroName("FLASH_NAMESPACE"), [
            IfNotDefined("DISABLE_HDIM128", [RUN.specialize("cutlass::half_t", 128)]),
            Namespace("a::b", [IfDefined("ENABLE_F16", [invocation])]),
            kernel(),
        ]),
        IfSection(BinaryExpression(Name("__CUDA_ARCH__"), ">=", IntegerLiteral(800)), [kernel("unseen")]),
        IfSection(Defined("ALSO_UNSEEN"), [kernel("unseen_too")]),
        RUN.instantiate("float", 64, extern=True),
    ])
    found = [(item.scope, item.guards, diagnostic_name(item.node), item.written)
             for item in definitions(unit, {"FLASH_NAMESPACE": "flash"})]
    assert found == [
        (("flash",), (Guard("DISABLE_HDIM128", defined=False),), "run_mha_fwd_<cutlass::half_t, 128>", None),
        (("flash", "a", "b"), (Guard("ENABLE_F16", defined=True),), "vec_case<64, GGML_TYPE_F16>", invocation),
        (("flash", "a", "b"), (Guard("ENABLE_F16", defined=True),), "vec_case<64, GGML_TYPE_Q4_0>", invocation),
        (("flash",), (), "kernel()", None),
        ((), (), "run_mha_fwd_<float, 64>", None),
    ]


@pytest.mark.parametrize(("written", "macros", "parts"), [
    ("flash", {}, ("flash",)),
    ("a::b", {}, ("a", "b")),
    ("FLASH_NAMESPACE", {"FLASH_NAMESPACE": "pytorch_flash"}, ("pytorch_flash",)),
    ("FLASH_NAMESPACE", {"FLASH_NAMESPACE": "at::native"}, ("at", "native")),
    ("outer::NS", {"NS": "inner"}, ("outer", "inner")),
])
def test_a_namespace_is_named_as_the_compiler_sees_it(written: str, macros: dict[str, str], parts: tuple[str, ...]) -> None:
    assert namespace_parts(Namespace(written).name, macros) == parts
