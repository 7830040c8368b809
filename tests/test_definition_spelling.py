"""The one walk over a unit's definitions, and how the duplicate check and the dispatch check name
what it finds (`flashast.scoped_definitions`, `flashast.definition_spelling`).

The table pins each speller's value per node, and each row checks that the two checks agree where
they must: a specialization or instantiation that the duplicate check counts is the very
specialization the dispatch check compares with a dispatcher's call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flashast.axes import Configuration
from flashast.contract import Contract
from flashast.definition_spelling import diagnostic_name, dispatch_key, duplicate_key, template_defaults
from flashast.definitions import FunctionDefinition, FunctionHead, ParameterDeclaration
from flashast.expressions import BinaryExpression, IntegerLiteral, Name
from flashast.generated import GeneratedFile
from flashast.names import MacroName
from flashast.nodes import (
    Declarator,
    EnumDeclaration,
    Enumerator,
    EnumeratorArg,
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
from flashast.presets import llama_cpp
from flashast.printer import render
from flashast.registry import Registry
from flashast.scoped_definitions import (
    DefinitionNode,
    Guard,
    TemplateDefinitionNode,
    declared_templates,
    definitions,
    namespace_parts,
)
from flashast.style import Style
from flashast.verify.checks import find_clashes
from flashast.verify.dispatch import check_dispatch
from flashast.verify.dispatch.indexer import required
from flashast.verify.toolchain import VerifyOptions

PARAMS = (Parameter(Type("Flash_fwd_params", declarator=Declarator.REFERENCE), "params"),)
RUN = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "Headdim")), "void", "run_mha_fwd_", PARAMS)
GGML_TYPE = EnumDeclaration("ggml_type", (Enumerator("GGML_TYPE_F32", 0), "GGML_TYPE_F16", Enumerator("GGML_TYPE_Q4_0", 2)))
PRECISION = EnumDeclaration("precision", ("LOW", "HIGH"), scoped=True)
VEC_CASE = FunctionTemplate(
    (ValueParameter("int", "D"), ValueParameter(GGML_TYPE, "type_K")), "void", "vec_case", PARAMS, defined=True,
)
BY_PRECISION = FunctionTemplate((ValueParameter(PRECISION, "p"),), "void", "by_precision", PARAMS, defined=True)
# A defaulted parameter that an instantiation may leave out (llama.cpp's `mul_mat_q_case<type>`).
DEFAULTED = FunctionTemplate(
    (ValueParameter(GGML_TYPE, "type"), ValueParameter(PRECISION, "p", default="HIGH")), "void", "defaulted", PARAMS,
    defined=True,
)
DEFAULTS = template_defaults([("flash::run_mha_fwd_", RUN), ("vec_case", VEC_CASE), ("defaulted", DEFAULTED)])
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
    # As clang names the specialization a call makes: the left-out arguments are their defaults.
    ((), DEFAULTED.instantiate("GGML_TYPE_F16"), "defaulted<1, 1>", True, "defaulted<GGML_TYPE_F16>"),
    ((), DEFAULTED.instantiate("GGML_TYPE_F16", "HIGH"), "defaulted<1, 1>", True,
     "defaulted<GGML_TYPE_F16, precision::HIGH>"),
    ((), DEFAULTED.instantiate("GGML_TYPE_F16", "LOW"), "defaulted<1, 0>", True,
     "defaulted<GGML_TYPE_F16, precision::LOW>"),
    (("flash",), kernel(), None, True, "kernel()"),
    (("flash",), kernel(static=True), None, False, "kernel()"),
    (("flash",), kernel(template=True), None, False, "kernel()"),
]


@pytest.mark.parametrize(("scope", "node", "dispatched", "counted", "reported"), TABLE)
def test_each_definition_is_named_alike_by_the_duplicate_and_the_dispatch_check(
    scope: tuple[str, ...], node: DefinitionNode, dispatched: str | None, counted: bool, reported: str
) -> None:
    key = duplicate_key(scope, node, DEFAULTS)
    assert (key is not None) is counted
    assert diagnostic_name(node) == reported
    if isinstance(node, FunctionDefinition):
        assert dispatched is None
        return
    template, arguments = dispatch_key(scope, node, DEFAULTS)
    assert f"{template}<{', '.join(arguments)}>" == dispatched
    if key is not None:
        # What the duplicate check counts is the very specialization the dispatch check compares.
        assert key == (template, arguments)


def test_two_definitions_are_one_entity_to_both_checks_or_to_neither() -> None:
    templates: list[tuple[tuple[str, ...], TemplateDefinitionNode]] = [
        (scope, node) for scope, node, _, counted, _ in TABLE if counted and not isinstance(node, FunctionDefinition)
    ]
    dispatched = [dispatch_key(scope, node, DEFAULTS) for scope, node in templates]
    counted = [duplicate_key(scope, node, DEFAULTS) for scope, node in templates]
    for first in range(len(templates)):
        for second in range(len(templates)):
            assert (counted[first] == counted[second]) is (dispatched[first] == dispatched[second])
    # The table's pairs: a specialization and a labelled instantiation (a comment is no argument),
    # `unsigned` and `unsigned int`, an argument left to its default and the default written out.
    assert len(templates) - len(set(dispatched)) == 3


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


def test_template_defaults_leave_out_a_name_declared_twice_with_other_defaults() -> None:
    other = FunctionTemplate((ValueParameter(GGML_TYPE, "type"), ValueParameter(PRECISION, "p", default="LOW")),
                             "void", "defaulted", PARAMS)
    assert template_defaults([("defaulted", DEFAULTED), ("defaulted", DEFAULTED)]) == {
        "defaulted": (None, EnumeratorArg(PRECISION, "HIGH"))}
    assert template_defaults([("defaulted", DEFAULTED), ("defaulted", other)]) == {}


def test_the_templates_a_contract_declares_are_found_in_their_namespaces() -> None:
    header = TranslationUnit([Namespace(MacroName("FLASH_NAMESPACE"), [RUN, IfDefined("X", [DEFAULTED])]), VEC_CASE])
    assert [name for name, _ in declared_templates(header, {"FLASH_NAMESPACE": "flash"})] == [
        "flash::run_mha_fwd_", "flash::defaulted", "vec_case"]


def test_a_call_that_leaves_a_defaulted_argument_out_is_what_its_decl_line_provides(tmp_path: Path) -> None:
    """llama.cpp's `DECL_MMQ_CASE(type)` instantiates `mul_mat_q_case<type>`, its precision left to its
    default; libclang names a call `mul_mat_q_case<GGML_TYPE_Q4_0>(…)` with the default filled in, and
    the dispatch check reads the model the same way (it reported the call missing)."""
    instances = tmp_path / "ggml-cuda" / "template-instances"
    instances.mkdir(parents=True)
    for path, unit in llama_cpp.CONTRACT.header_units().items():
        (instances / path).resolve().write_text(render(unit))
    dispatcher = instances / "mmq-launch.cpp"
    dispatcher.write_text(
        '#include "../mmq.cuh"\n\nextern DECL_MMQ_CASE(GGML_TYPE_Q4_0);\n\n'
        "void launch(ggml_backend_cuda_context & ctx, const mmq_args & args, cudaStream_t stream) {\n"
        "    mul_mat_q_case<GGML_TYPE_Q4_0>(ctx, args, stream);\n}\n"
    )
    every = Registry().preset("llama.cpp").generate()
    options = VerifyOptions(include_dirs=(instances,))
    assert not check_dispatch([dispatcher], every, every, options).missing
    chosen = [file for file in every if file.name != "mmq-instance-q4_0.cu"]
    (missing,) = check_dispatch([dispatcher], chosen, every, options).missing
    assert missing.provider is not None and missing.provider.file.name == "mmq-instance-q4_0.cu"


KINDS = EnumDeclaration("kinds", ("PLAIN", Enumerator("FANCY", 5)))
LEVEL = EnumDeclaration("level", ("low", "high"), scoped=True)
HEADER = """#pragma once
enum kinds { PLAIN, FANCY = 5 };
enum class level { low, high };
template<class T> struct Tile {};
template<kinds K> struct Tagged {};
template<class T> void take(int n);
template<kinds K, level L = level::high> void pick(int n);
"""
TAKE = FunctionTemplate((TypeParameter("T"),), "void", "take", (Parameter("int", "n"),))
PICK = FunctionTemplate(
    (ValueParameter(KINDS, "K"), ValueParameter(LEVEL, "L", default="high")), "void", "pick", (Parameter("int", "n"),)
)
# A call as a dispatcher writes it, and the explicit instantiation that provides it.
CALLS = [
    ("take<unsigned>", TAKE.instantiate("unsigned")),
    ("take<unsigned int>", TAKE.instantiate("unsigned")),
    ("take<Tile<unsigned>>", TAKE.instantiate(TypeArg("Tile", [TypeArg("unsigned")]))),
    ("take<Tagged<FANCY>>", TAKE.instantiate(TypeArg("Tagged", [EnumeratorArg(KINDS, "FANCY")]))),
    ("pick<FANCY>", PICK.instantiate("FANCY")),
    ("pick<FANCY, level::low>", PICK.instantiate("FANCY", "low")),
]


def test_the_dispatch_name_of_an_instantiation_is_what_libclang_reads_from_the_call_it_provides(tmp_path: Path) -> None:
    (tmp_path / "header.h").write_text(HEADER)
    dispatcher = tmp_path / "calls.cpp"
    dispatcher.write_text('#include "header.h"\nvoid calls() {\n' + "".join(f"    {call}(0);\n" for call, _ in CALLS) + "}\n")
    read = required(dispatcher, VerifyOptions(include_dirs=(tmp_path,)), {"take", "pick"})
    defaults = template_defaults([("take", TAKE), ("pick", PICK)])
    assert [(reference.template, reference.arguments) for reference in read.references] == [
        dispatch_key((), instantiation, defaults) for _, instantiation in CALLS]
