"""Round trip: random valid trees render, parse with zero diagnostics, and libclang sees the model.

Each example is a random world: unique random identifiers, nested namespaces, complete classes in
some of them, enumerations (plain and scoped) at global scope, function templates with random
template parameters (type, `int`, `bool`, an enumeration; the last one sometimes with a default) and
parameter lists, function-like macros in the contract that expand to explicit instantiations of some
of those templates (each template parameter a macro parameter or a fixed argument), and a generated
file holding explicit specializations (forwarding to helper templates), explicit instantiation
definitions and declarations (`extern`) and macro invocations with random typed template arguments,
some behind `#ifndef` guards, under a random `/* … */` banner, with random layouts (one template
argument per line, `/*Name=*/` labels, parameters aligned under the parenthesis, padded macro
arguments) and trailing `//` comments, printed in a random `Style`. The contract is built from the
same random declarations. The file goes through a `Kind` and `Preset` (the public API), `verify` must
report nothing at all, and then:

- the namespaces libclang reports, in order and with their nesting, are the model's;
- the function template specializations libclang reports (scope, name, template arguments, line)
  are the model's (an enumerator argument is the enumerator's value, a left-out argument its default);
- explicit instantiations have no cursor in libclang, so clang itself is asked: the file is parsed
  again with each instantiation repeated after it (a specialization after an `extern` one), and
  clang's "duplicate explicit instantiation of 'f<…>'" (or "explicit specialization of 'f<…>' after
  instantiation") names the specialization it resolved and points its note at the model's line. A
  macro invocation is probed the same way with each instantiation its model says it expands to;
- the comments libclang's lexer sees in the file, in order, are the model's comments.

Invalid names and include paths are the other half: random strings that are not identifiers, and
random include paths that are absolute, have an empty segment, or hold quotes, brackets, backslashes
or newlines, always raise `ModelError` (a `..` segment is ordinary C++ and kept).
"""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashast.contract import Contract
from flashast.errors import ModelError
from flashast.generated import GeneratedFile
from flashast.kinds import Kind, Preset
from flashast.names import CPP_KEYWORDS, Identifier, IncludePath, MacroName, QualifiedName, TrailingComment
from flashast.nodes import (
    BlockComment,
    BoolArg,
    CallStatement,
    ClassDeclaration,
    Declaration,
    Declarator,
    EnumDeclaration,
    Enumerator,
    EnumeratorArg,
    ExplicitInstantiation,
    ExplicitSpecialization,
    FunctionMacro,
    FunctionTemplate,
    IfNotDefined,
    Include,
    IntArg,
    LineComment,
    MacroInstantiation,
    MacroInvocation,
    MacroParameter,
    Namespace,
    Parameter,
    PragmaOnce,
    TemplateArgument,
    TemplateArgumentValue,
    TemplateParameter,
    TranslationUnit,
    Type,
    TypeArg,
    TypeParameter,
    ValueKind,
    ValueParameter,
)
from flashast.printer import render_declarations
from flashast.style import (
    ArgumentLayout,
    BracketAlignment,
    Layout,
    NamespaceIndentation,
    ParameterLayout,
    PointerAlignment,
    Style,
)
from flashast.verify import load_cindex, parse_unit, verify

ROUND_TRIP = settings(max_examples=30, derandomize=True, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NAMES = settings(max_examples=100, derandomize=True, deadline=None)

# Names the worlds use themselves: the parameter struct, the parameter names, template and macro
# parameter names. `main` cannot be a template at global scope. Identifiers with `__` or `_Upper`
# are reserved for the implementation (clang has keywords such as `__int128` and `_Bool`), so random
# names are not drawn from them.
FIXED_NAMES = frozenset({"Params", "params", "count", "scale", "data", "P0", "P1", "P2", "M0", "M1", "M2", "main"})
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FUNDAMENTAL_ARGUMENTS = ("int", "unsigned", "long long", "short", "unsigned char", "signed char", "char",
                         "float", "double", "bool")
# How clang spells a type argument the model writes differently.
CLANG_SPELLING = {"unsigned": "unsigned int"}
# Comment text: printable ASCII without the characters that could end, nest or splice a comment.
# (Alphabets drawn with `st.text`, not `st.from_regex`: the same strings, and Hypothesis rebuilds a regex's
# strategy on every draw, which was most of this file's time.)
WORD_CHARACTERS = string.ascii_letters + string.digits + "_"
COMMENT_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " ,.:=()!?-", max_size=20)

# [A-Za-z][A-Za-z0-9_]{0,10}
identifiers = st.builds(operator.add, st.sampled_from(string.ascii_letters), st.text(alphabet=WORD_CHARACTERS, max_size=10)).filter(
    lambda text: text not in CPP_KEYWORDS and text not in FIXED_NAMES and "__" not in text
)


@dataclass(frozen=True)
class World:
    """One random example: the contract's declarations and the generated file's tree."""

    header: str
    angled: bool
    contract: Contract
    unit: TranslationUnit
    style: Style


def pool_parameters(data_class: str) -> tuple[Parameter, ...]:
    """Every parameter a template may take (a fixed name always has the same type, so forwarding
    calls type-check)."""
    return (
        Parameter(Type("Params", declarator=Declarator.REFERENCE), "params"),
        Parameter(Type("int"), "count"),
        Parameter(Type("float", const=True), "scale"),
        Parameter(Type(data_class, declarator=Declarator.POINTER), "data"),
    )


def argument_values(
    draw: st.DrawFn, parameters: tuple[TemplateParameter, ...], classes: list[str]
) -> tuple[TemplateArgumentValue, ...]:
    """One value per parameter: a type, an int, a bool or an enumerator of the parameter's enumeration."""
    values: list[TemplateArgumentValue] = []
    for parameter in parameters:
        if isinstance(parameter, TypeParameter):
            values.append(draw(st.sampled_from([*classes, *FUNDAMENTAL_ARGUMENTS])))
        elif isinstance(parameter.kind, EnumDeclaration):
            values.append(draw(st.sampled_from(parameter.kind.enumerators)).name.text)
        elif parameter.kind is ValueKind.INT:
            values.append(draw(st.integers(-(2**31), 2**31 - 1)))
        else:
            values.append(draw(st.booleans()))
    return tuple(values)


@st.composite
def template_arguments(
    draw: st.DrawFn, template: FunctionTemplate, classes: list[str]
) -> tuple[TemplateArgumentValue, ...]:
    """Arguments for every parameter, the last one sometimes left to its default."""
    values = argument_values(draw, template.template_parameters, classes)
    last = template.template_parameters[-1]
    if isinstance(last, ValueParameter) and last.default is not None and draw(st.booleans()):
        return values[:-1]
    return values


def full_arguments(template: FunctionTemplate, arguments: tuple[TemplateArgument, ...]) -> tuple[TemplateArgument, ...]:
    """The arguments with the left-out trailing ones filled in by their defaults, as clang sees them."""
    defaults = [parameter.default for parameter in template.template_parameters[len(arguments):]
                if isinstance(parameter, ValueParameter)]
    return (*arguments, *(default for default in defaults if default is not None))


def entity_key(template: FunctionTemplate, arguments: tuple[TemplateArgument, ...]) -> tuple[object, ...]:
    """What clang tells apart: the template and the full arguments (an enumerator by its value)."""
    return (template.name.text, *(
        (argument.enumeration.name.text, argument.enumeration.value_of(argument.enumerator))
        if isinstance(argument, EnumeratorArg) else argument
        for argument in full_arguments(template, arguments)
    ))


@st.composite
def subsequence(draw: st.DrawFn, items: tuple[Any, ...], min_size: int = 0) -> tuple[Any, ...]:
    """An order-preserving subset."""
    if not items:
        return ()
    chosen = draw(st.lists(st.sampled_from(range(len(items))), min_size=min_size, unique=True))
    return tuple(items[index] for index in sorted(chosen))


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    return Layout(draw(st.sampled_from(ArgumentLayout)), draw(st.sampled_from(ParameterLayout)), draw(st.integers(0, 8)))


def trailing_comments(draw: st.DrawFn) -> TrailingComment | None:
    return TrailingComment(draw(COMMENT_TEXT), draw(st.integers(1, 3))) if draw(st.booleans()) else None


@st.composite
def enumerations(draw: st.DrawFn, fresh: Any) -> EnumDeclaration:
    """Enumerators with strictly increasing values, some written, some counted by the compiler."""
    value = draw(st.integers(-50, 50))
    enumerators = []
    for index in range(draw(st.integers(1, 4))):
        explicit = index == 0 or draw(st.booleans())
        value = value + (draw(st.integers(1, 3)) if explicit and index else (1 if index else 0))
        enumerators.append(Enumerator(fresh(), value) if explicit else Enumerator(fresh()))
    return EnumDeclaration(fresh(), enumerators, scoped=draw(st.booleans()))


@st.composite
def worlds(draw: st.DrawFn) -> World:
    used: set[str] = set()

    def fresh() -> str:
        """A random identifier not used yet in this world (drawn lazily: fewer draws shrink faster)."""
        name = draw(identifiers.filter(lambda text: text not in used))
        used.add(name)
        return name

    paths = [tuple(fresh() for _ in range(draw(st.integers(1, 3)))) for _ in range(draw(st.integers(1, 3)))]
    scopes = [()] + [path[:depth] for path in paths for depth in range(1, len(path) + 1)]
    classes = [(draw(st.sampled_from(scopes)), fresh()) for _ in range(draw(st.integers(1, 3)))]
    class_names = ["::".join((*scope, name)) for scope, name in classes]
    parameters = pool_parameters(draw(st.sampled_from(class_names)))
    enums = [draw(enumerations(fresh)) for _ in range(draw(st.integers(0, 2)))]

    def template_parameter(kind: str, index: int, last: bool) -> TemplateParameter:
        if kind == "type":
            return TypeParameter(f"P{index}")
        value_kind: ValueKind | EnumDeclaration = draw(st.sampled_from(enums)) if kind == "enum" else ValueKind(kind)
        parameter = ValueParameter(value_kind, f"P{index}")
        if last and draw(st.booleans()):
            (default,) = argument_values(draw, (parameter,), class_names)
            parameter = ValueParameter(value_kind, f"P{index}", default)
        return parameter

    template_parameter_kinds = st.lists(st.sampled_from(["type", "int", "bool", *(["enum"] if enums else [])]),
                                        min_size=1, max_size=3)
    templates: dict[tuple[str, ...], list[FunctionTemplate]] = {}
    helpers: dict[tuple[str, ...], list[FunctionTemplate]] = {}
    for path in paths:
        for group, count in ((templates, draw(st.integers(1, 3))), (helpers, draw(st.integers(1, 2)))):
            for _ in range(count):
                kinds = draw(template_parameter_kinds)
                template_parameters = tuple(template_parameter(kind, index, index == len(kinds) - 1)
                                            for index, kind in enumerate(kinds))
                group.setdefault(path, []).append(FunctionTemplate(
                    template_parameters, "void", fresh(), draw(subsequence(parameters)),
                    # Mostly defined: only a defined template can be explicitly instantiated.
                    defined=draw(st.sampled_from([True, True, False])),
                ))

    # Function-like macros over some defined templates: each template parameter a macro parameter or fixed.
    macros: dict[tuple[str, ...], list[FunctionMacro]] = {}
    for path in paths:
        for template in draw(subsequence(tuple(t for t in templates[path] if t.defined))):
            fixed = argument_values(draw, template.template_parameters, class_names)
            arguments: list[TemplateArgumentValue | MacroParameter] = []
            macro_parameters: list[str] = []
            for value in fixed:
                if draw(st.booleans()):
                    macro_parameters.append(f"M{len(macro_parameters)}")
                    arguments.append(MacroParameter(macro_parameters[-1]))
                else:
                    arguments.append(value)
            macros.setdefault(path, []).append(
                FunctionMacro(fresh(), macro_parameters, MacroInstantiation(template, arguments))
            )

    header = "/".join(fresh() for _ in range(draw(st.integers(1, 2)))) + ".h"
    contract = Contract({header: (
        PragmaOnce(),
        ClassDeclaration("Params", complete=True),
        *enums,
        *nest({scope: [ClassDeclaration(name, complete=True) for s, name in classes if s == scope]
               for scope in scopes}),
        *nest({path: [*helpers.get(path, []), *templates[path]] for path in paths}),
        *(macro for path in paths for macro in macros.get(path, [])),
    )})

    guard_macros = [fresh() for _ in range(2)]
    seen: set[tuple[object, ...]] = set()
    blocks: list[Declaration] = []
    for path in paths:
        declarations: list[Declaration] = []
        for template in templates[path]:
            for _ in range(draw(st.integers(1, 4))):
                values = draw(template_arguments(template, class_names))
                key = entity_key(template, template.signature(*values).template_arguments)
                if key in seen:
                    continue
                seen.add(key)
                actions = ["instantiate", "specialize", "extern"] if template.defined else ["specialize"]
                action = draw(st.sampled_from(actions))
                layout, labelled = draw(layouts()), draw(st.booleans())
                if action == "specialize":
                    names_in_scope = {parameter.name for parameter in template.parameters}
                    callable_helpers = [helper for helper in helpers.get(path, [])
                                        if {parameter.name for parameter in helper.parameters} <= names_in_scope]
                    calls = [helper.call(*draw(template_arguments(helper, class_names)))
                             for helper in draw(st.lists(st.sampled_from(callable_helpers), max_size=2))
                             ] if callable_helpers else []
                    node: Declaration = template.specialize(*values, body=calls, layout=layout, labelled=labelled)
                else:
                    node = template.instantiate(*values, extern=action == "extern", layout=layout, labelled=labelled,
                                                comment=trailing_comments(draw))
                if draw(st.booleans()):
                    node = IfNotDefined(draw(st.sampled_from(guard_macros)), (node,))
                declarations.append(node)
        for macro in macros.get(path, []):
            step = macro.expansion[0]
            parameters_fed = [step.parameter_fed(parameter) for parameter in macro.parameters]
            values = argument_values(draw, tuple(p for p in parameters_fed if p is not None), class_names)
            invocation = macro.invoke(*values, widths=draw(st.lists(st.integers(0, 6), max_size=len(values))),
                                      comment=trailing_comments(draw))
            (instantiation,) = invocation.expansion()
            key = entity_key(step.template, instantiation.signature.template_arguments)
            if key not in seen:
                seen.add(key)
                declarations.append(invocation)
        block: Declaration = chain(path, declarations)
        if draw(st.booleans()):
            block = IfNotDefined(draw(st.sampled_from(guard_macros)), (block,))
        blocks.append(block)

    angled = draw(st.booleans())
    banner: tuple[Declaration, ...] = (BlockComment.starred(draw(st.lists(COMMENT_TEXT, max_size=3))),) \
        if draw(st.booleans()) else ()
    include = Include(header, angled=angled, comment=trailing_comments(draw))
    unit = TranslationUnit((*banner, LineComment("round trip"), include, *blocks))
    # Any layout policy whose options move only spaces and line breaks (not which comments are printed).
    style = draw(st.builds(
        Style, pointer_alignment=st.sampled_from(PointerAlignment), spaces_before_trailing_comments=st.integers(0, 3),
        align_after_open_bracket=st.sampled_from((None, *BracketAlignment)), indent_width=st.integers(0, 8),
        space_after_template_keyword=st.booleans(), namespace_indentation=st.sampled_from(NamespaceIndentation),
        space_before_namespace_brace=st.booleans(), insert_newline_at_eof=st.booleans(),
    ))
    return World(header, angled, contract, unit, style)


def chain(path: tuple[str, ...], body: list[Declaration]) -> Namespace:
    """`namespace a { namespace b { body } }` for path (a, b)."""
    node = Namespace(path[-1], tuple(body))
    for name in reversed(path[:-1]):
        node = Namespace(name, (node,))
    return node


def nest(by_scope: dict[tuple[str, ...], list[Declaration]]) -> tuple[Declaration, ...]:
    """Declarations keyed by scope as one tree of namespaces (global ones first, unwrapped)."""

    def children(scope: tuple[str, ...]) -> list[Declaration]:
        inner = sorted({key[: len(scope) + 1] for key in by_scope if len(key) > len(scope) and key[: len(scope)] == scope})
        nested = [Namespace(child[-1], tuple(children(child))) for child in inner]
        return [*by_scope.get(scope, []), *nested]

    return tuple(children(()))


def generate(world: World) -> GeneratedFile:
    """The world's file, made the way every file is: a Kind in a Preset."""
    kind = Kind("roundtrip", axes={"example": (0,)}, build=lambda config: world.unit, file_name="roundtrip.cu",
                contract=world.contract)
    (generated,) = Preset("roundtrip", style=world.style, kinds=(kind,)).generate()
    return generated


# The model's side -------------------------------------------------------------------------------------


def walk_scoped(declarations: tuple[Declaration, ...], scope: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Declaration]]:
    """Every declaration with the namespace path it sits in, depth first (guards are transparent)."""
    for node in declarations:
        yield scope, node
        if isinstance(node, Namespace):
            yield from walk_scoped(node.body, (*scope, str(node.name)))
        elif isinstance(node, IfNotDefined):
            yield from walk_scoped(node.body, scope)


def declaration_lines(generated: GeneratedFile) -> dict[int, int]:
    """id(node) -> the line of its declarator (an invocation's line), by finding each node's printed
    first declarator line in order."""
    lines = generated.text.split("\n")
    found: dict[int, int] = {}
    position = 0
    for _, node in walk_scoped(generated.unit.declarations):
        if not isinstance(node, (ExplicitSpecialization, ExplicitInstantiation, MacroInvocation)):
            continue
        printed = [line.strip() for line in render_declarations([node], generated.style)]
        declarator = printed[1] if isinstance(node, ExplicitSpecialization) else printed[0]
        while lines[position].strip() != declarator:
            position += 1
        found[id(node)] = position + 1
        position += 1
    return found


def model_comments(declarations: tuple[Declaration, ...]) -> list[str]:
    """Every comment the model prints, in order, as clang's lexer spells a comment token (a
    namespace's closing `} // namespace name` included)."""
    found: list[str] = []
    for node in declarations:
        if isinstance(node, LineComment):
            found.append(f"// {node.text}" if node.text else "//")
        elif isinstance(node, BlockComment):
            found.append("/*" + "\n".join(node.lines) + "*/")
        elif isinstance(node, (ExplicitInstantiation, ExplicitSpecialization)):
            found += [str(comment) for comment in node.signature.argument_comments if comment is not None]
        elif isinstance(node, Namespace):
            found += [*model_comments(node.body), f"// namespace {node.name}"]
        elif isinstance(node, IfNotDefined):
            found += model_comments(node.body)
        if isinstance(node, (Include, ExplicitInstantiation, MacroInvocation)) and node.comment is not None:
            found.append(str(node.comment).lstrip(" "))
    return found


def same_argument(model: TemplateArgument, clang: tuple[str, object, object]) -> bool:
    """Whether libclang's (kind, type spelling or signed value, unsigned value) is the model's argument.

    libclang reads an integral argument as a signed value of its own width, so `true` (one bit)
    comes back as -1; its unsigned reading is 1. An enumerator comes back as its value.
    """
    kind, signed, unsigned = clang
    if isinstance(model, TypeArg):
        return kind == "type" and signed == CLANG_SPELLING.get(str(model.type), str(model.type))
    if isinstance(model, BoolArg):
        return kind == "integral" and unsigned == int(model.value)
    if isinstance(model, EnumeratorArg):
        return kind == "integral" and signed == model.enumeration.value_of(model.enumerator)
    assert isinstance(model, IntArg)
    return kind == "integral" and signed == model.value


def spell_for_clang(signature_name: QualifiedName, arguments: tuple[TemplateArgument, ...]) -> str:
    """How clang's diagnostics name a specialization: `f<a::C, -3, true, E::X>`."""
    spelled = []
    for argument in arguments:
        if isinstance(argument, TypeArg):
            spelled.append(CLANG_SPELLING.get(str(argument.type), str(argument.type)))
        elif isinstance(argument, BoolArg):
            spelled.append("true" if argument.value else "false")
        elif isinstance(argument, EnumeratorArg):
            enumeration = argument.enumeration
            spelled.append(f"{enumeration.name}::{argument.enumerator}" if enumeration.scoped else str(argument.enumerator))
        else:
            spelled.append(str(argument.value))
    return f"{signature_name}<{', '.join(spelled)}>"


# libclang's side ---------------------------------------------------------------------------------------


def in_main_file(cursor: Any, path: str) -> bool:
    return cursor.location.file is not None and cursor.location.file.name == path


def scope_of(cursor: Any, cindex: Any) -> tuple[str, ...]:
    names: list[str] = []
    parent = cursor.semantic_parent
    while parent is not None and parent.kind != cindex.CursorKind.TRANSLATION_UNIT:
        names.append(parent.spelling)
        parent = parent.semantic_parent
    return tuple(reversed(names))


def cursor_arguments(cursor: Any, cindex: Any) -> tuple[tuple[str, object, object], ...]:
    arguments: list[tuple[str, object, object]] = []
    for index in range(cursor.get_num_template_arguments()):
        if cursor.get_template_argument_kind(index) == cindex.TemplateArgumentKind.TYPE:
            arguments.append(("type", cursor.get_template_argument_type(index).spelling, None))
        else:
            arguments.append(("integral", cursor.get_template_argument_value(index),
                              cursor.get_template_argument_unsigned_value(index)))
    return tuple(arguments)


# The property -------------------------------------------------------------------------------------------


def check_world(world: World) -> None:
    """The property: the tree parses cleanly, and libclang sees the model's declarations, arguments,
    lines and comments where the model put them."""
    generated = generate(world)
    report = verify([generated])
    assert (report.errors, report.warnings) == ([], []), generated.text

    cindex = load_cindex()
    unit = parse_unit(generated)
    main = unit.spelling
    lines = declaration_lines(generated)
    scoped = list(walk_scoped(generated.unit.declarations))
    templates = {node.name.text: node for header in world.contract.header_units().values()
                 for node in header.walk() if isinstance(node, FunctionTemplate)}

    model_namespaces = [(*scope, str(node.name)) for scope, node in scoped if isinstance(node, Namespace)]
    clang_namespaces = [(*scope_of(cursor, cindex), cursor.spelling) for cursor in unit.cursor.walk_preorder()
                        if cursor.kind == cindex.CursorKind.NAMESPACE and in_main_file(cursor, main)]
    assert clang_namespaces == model_namespaces

    model_specializations = [(scope, node) for scope, node in scoped if isinstance(node, ExplicitSpecialization)]
    clang_specializations = [cursor for cursor in unit.cursor.walk_preorder()
                             if cursor.kind == cindex.CursorKind.FUNCTION_DECL and in_main_file(cursor, main)]
    assert len(clang_specializations) == len(model_specializations)
    for (scope, node), cursor in zip(model_specializations, clang_specializations, strict=True):
        signature = node.signature
        assert (scope_of(cursor, cindex), cursor.spelling, cursor.location.line) == (
            scope, str(signature.name), lines[id(node)])
        arguments = cursor_arguments(cursor, cindex)
        expected = full_arguments(templates[str(signature.name)], signature.template_arguments)
        assert len(arguments) == len(expected)
        assert all(map(same_argument, expected, arguments)), (signature, arguments)

    # Each instantiation, and each instantiation an invocation expands to, repeated after the file.
    probed_nodes: list[tuple[tuple[str, ...], ExplicitInstantiation, int]] = []
    for scope, declaration in scoped:
        if isinstance(declaration, ExplicitInstantiation):
            probed_nodes.append((scope, declaration, lines[id(declaration)]))
        elif isinstance(declaration, MacroInvocation):
            probed_nodes += [(scope, instantiation, lines[id(declaration)]) for instantiation in declaration.expansion()]
    probes = [chain(scope, [ExplicitSpecialization(node.signature) if node.extern else node])
              for scope, node, _ in probed_nodes]
    # The probes go after everything the model printed, so the model's line numbers stay as they were.
    probed = replace(generated, unit=TranslationUnit((*generated.unit.declarations, *probes)))

    def named(node: ExplicitInstantiation) -> str:
        signature = node.signature
        return spell_for_clang(signature.name, full_arguments(templates[str(signature.name)], signature.template_arguments))

    expected_probes = sorted(
        (f"explicit specialization of '{named(node)}' after instantiation" if node.extern else
         f"duplicate explicit instantiation of '{named(node)}'", line)
        for _, node, line in probed_nodes
    )
    found = sorted(
        (diagnostic.spelling, diagnostic.children[0].location.line)
        for diagnostic in parse_unit(probed).diagnostics
        if diagnostic.severity >= cindex.Diagnostic.Warning
    )
    assert found == expected_probes, probed.text

    comments = [token.spelling for token in unit.get_tokens(extent=unit.cursor.extent)
                if token.kind == cindex.TokenKind.COMMENT]
    assert comments == model_comments(generated.unit.declarations)


def constructs(world: World) -> set[str]:
    """The constructs the property covers that occur in `world`."""
    seen: set[str] = set()
    for scope, node in walk_scoped(world.unit.declarations):
        if isinstance(node, ExplicitInstantiation):
            seen.add("extern" if node.extern else "instantiation")
            if node.comment is not None:
                seen.add("trailing comment")
        elif isinstance(node, ExplicitSpecialization):
            seen.add("specialization")
            if node.body:
                seen.add("call")
        elif isinstance(node, IfNotDefined):
            seen.add("guard")
        elif isinstance(node, Namespace) and len(scope) >= 2:
            seen.add("nested namespace")
        elif isinstance(node, MacroInvocation):
            seen.add("macro invocation")
            if any(node.widths):
                seen.add("padded macro argument")
        elif isinstance(node, BlockComment):
            seen.add("block comment")
        if isinstance(node, (ExplicitInstantiation, ExplicitSpecialization)):
            signature, layout = node.signature, node.layout
            if any(isinstance(argument, EnumeratorArg) for argument in signature.template_arguments):
                seen.add("enumerator argument")
            if signature.argument_comments:
                seen.add("labelled arguments")
            if layout.template_arguments is ArgumentLayout.ONE_PER_LINE and signature.template_arguments:
                seen.add("one argument per line")
            if layout.parameters is ParameterLayout.ALIGNED and len(signature.parameters) > 1:
                seen.add("aligned parameters")
    for header in world.contract.header_units().values():
        for node in header.walk():
            if isinstance(node, FunctionTemplate) and any(
                    isinstance(parameter, ValueParameter) and parameter.default is not None
                    for parameter in node.template_parameters):
                seen.add("default argument")
            if isinstance(node, EnumDeclaration) and node.scoped:
                seen.add("scoped enumeration")
    return seen


def test_random_trees_parse_cleanly_and_libclang_sees_the_model() -> None:
    """The property holds for every drawn world, and the strategy is not vacuous: across the same
    examples, every construct the property covers occurs (one draw serves both: drawing is slow)."""
    seen: set[str] = set()

    @ROUND_TRIP
    @given(worlds())
    def holds(world: World) -> None:
        check_world(world)
        seen.update(constructs(world))

    holds()
    assert seen == {
        "extern", "instantiation", "specialization", "call", "guard", "nested namespace", "trailing comment",
        "macro invocation", "padded macro argument", "block comment", "enumerator argument", "labelled arguments",
        "one argument per line", "aligned parameters", "default argument", "scoped enumeration",
    }


# Invalid names always raise -------------------------------------------------------------------------------


def is_identifier(text: str) -> bool:
    return IDENTIFIER.fullmatch(text) is not None and text not in CPP_KEYWORDS


@NAMES
@given(st.one_of(st.text(), st.sampled_from(sorted(CPP_KEYWORDS)), st.from_regex(r"[0-9][A-Za-z0-9_]*", fullmatch=True),
                 st.from_regex(r"[A-Za-z_][A-Za-z0-9_]*[^A-Za-z0-9_][A-Za-z0-9_]*", fullmatch=True)))
def test_strings_that_are_not_identifiers_always_raise(text: str) -> None:
    if is_identifier(text):
        assert Identifier(text).text == text
        return
    for build in (Identifier, MacroName, lambda name: Namespace(name), lambda name: ClassDeclaration(name),
                  lambda name: Parameter("int", name), lambda name: TypeParameter(name),
                  lambda name: FunctionTemplate((), "void", name)):
        with pytest.raises(ModelError):
            build(text)


@NAMES
@given(st.lists(identifiers, min_size=1, max_size=3), st.sampled_from(sorted(CPP_KEYWORDS)), st.integers(0, 3))
def test_a_keyword_anywhere_in_a_qualified_name_raises(parts: list[str], keyword: str, position: int) -> None:
    parts.insert(min(position, len(parts)), keyword)
    with pytest.raises(ModelError):
        QualifiedName.parse("::".join(parts))
    with pytest.raises(ModelError):
        CallStatement("::".join(parts))


segments = st.one_of(st.just(".."), st.text(alphabet=WORD_CHARACTERS + ".+-", min_size=1, max_size=8))  # [A-Za-z0-9_.+-]{1,8}
valid_paths = st.lists(segments, min_size=1, max_size=4).map("/".join)


@st.composite
def invalid_include_paths(draw: st.DrawFn) -> str:
    path = draw(valid_paths)
    flaw = draw(st.sampled_from(["absolute", "character", "empty segment", "empty", "drive"]))
    if flaw == "absolute":
        return "/" + path
    if flaw == "drive":
        return "C:" + path
    if flaw == "empty segment":
        return path.replace("/", "//", 1) if "/" in path else path + "/"
    if flaw == "empty":
        return ""
    bad = draw(st.sampled_from(['"', "<", ">", "\\", "\n", "\r", " ", "\t", "*", "é"]))
    position = draw(st.integers(0, len(path)))
    return path[:position] + bad + path[position:]


@NAMES
@given(invalid_include_paths(), st.booleans())
def test_invalid_include_paths_always_raise(path: str, angled: bool) -> None:
    with pytest.raises(ModelError):
        IncludePath(path)
    with pytest.raises(ModelError):
        Include(path, angled=angled)


@NAMES
@given(valid_paths)
def test_valid_include_paths_are_kept_verbatim(path: str) -> None:
    assert str(IncludePath(path)) == path
