"""The one place that turns nodes into C++ text.

Every construct yields its own lines; a parent indents the lines of its children, so no node knows
its depth and there is no indent counter. `render` joins the lines and applies the file-level style.
The output of `render` is a pure function of (tree, style): the same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from flashast.names import MacroName
from flashast.nodes import (
    BlankLine,
    BoolArg,
    CallStatement,
    ClassDeclaration,
    Declaration,
    Declarator,
    ExplicitInstantiation,
    ExplicitSpecialization,
    FunctionSignature,
    FunctionTemplate,
    IfDefined,
    IfNotDefined,
    Include,
    IntArg,
    LineComment,
    MacroDefinition,
    Namespace,
    Parameter,
    PragmaOnce,
    TemplateArgument,
    TemplateParameter,
    TranslationUnit,
    Type,
    TypeAlias,
    TypeArg,
    TypeParameter,
    Verbatim,
)
from flashast.style import Style

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_STYLE = Style()


def render(unit: TranslationUnit, style: Style = DEFAULT_STYLE) -> str:
    """The file's full text."""
    text = "\n".join(_lines_of(unit.declarations, style))
    return text + "\n" if style.final_newline else text


def render_declarations(declarations: Iterable[Declaration], style: Style = DEFAULT_STYLE) -> Iterator[str]:
    """The lines of a sequence of declarations, for callers that assemble text around them."""
    return _lines_of(declarations, style)


def _lines_of(declarations: Iterable[Declaration], style: Style) -> Iterator[str]:
    for declaration in declarations:
        yield from _lines(declaration, style)


def _indented(lines: Iterable[str], width: int) -> Iterator[str]:
    prefix = " " * width
    for line in lines:
        yield prefix + line if line else line


# Tokens -----------------------------------------------------------------------------------------


def spell_template_argument(argument: TemplateArgument) -> str:
    if isinstance(argument, BoolArg):
        return "true" if argument.value else "false"
    if isinstance(argument, IntArg):
        return str(argument.value)
    if isinstance(argument, TypeArg):
        return str(argument.type) + _angle(argument.arguments) if argument.arguments else str(argument.type)
    raise TypeError(f"not a template argument: {argument!r}")


def _angle(arguments: tuple[TemplateArgument, ...]) -> str:
    # `>>` closes two nested lists since C++11, which every supported toolchain speaks.
    return "<" + ", ".join(spell_template_argument(argument) for argument in arguments) + ">"


def _spell_base_type(type_: Type) -> str:
    return ("const " if type_.const else "") + str(type_.name)


def spell_type(type_: Type) -> str:
    """`const T`, `CUstream_st *`, `Flash_fwd_params &`."""
    base = _spell_base_type(type_)
    return f"{base} {type_.declarator.value}" if type_.declarator.value else base


def _spell_parameter(parameter: Parameter, style: Style) -> str:
    declarator = parameter.type.declarator
    if declarator is Declarator.VALUE:
        return f"{spell_type(parameter.type)} {parameter.name}"
    base = _spell_base_type(parameter.type)
    if style.declarator_binds_to_name:
        # `Flash_fwd_params &params`, as in every upstream tree.
        return f"{base} {declarator.value}{parameter.name}"
    return f"{base}{declarator.value} {parameter.name}"


def _spell_parameters(parameters: tuple[Parameter, ...], style: Style) -> str:
    return "(" + ", ".join(_spell_parameter(parameter, style) for parameter in parameters) + ")"


def _spell_signature(signature: FunctionSignature, style: Style) -> str:
    return (
        f"{spell_type(signature.return_type)} {signature.name}{_angle(signature.template_arguments)}"
        f"{_spell_parameters(signature.parameters, style)}"
    )


def _spell_template_parameter(parameter: TemplateParameter) -> str:
    if isinstance(parameter, TypeParameter):
        return f"typename {parameter.name}"
    return f"{parameter.kind.value} {parameter.name}"


def _template_keyword(style: Style) -> str:
    return "template " if style.space_after_template else "template"


def _spell_call(statement: CallStatement) -> str:
    template = _angle(statement.template_arguments) if statement.template_arguments else ""
    arguments = ", ".join(argument.text for argument in statement.arguments)
    return f"{statement.function}{template}({arguments});"


# Declarations -----------------------------------------------------------------------------------


# The printing rule of each declaration type (a plain table: `functools.singledispatch` would import
# `typing` on every run just to register these).
_RULES: dict[type, Callable[[Any, Style], Iterator[str]]] = {}


def _rule(node_type: type) -> Callable[[Callable[[Any, Style], Iterator[str]]], Callable[[Any, Style], Iterator[str]]]:
    def register(rule: Callable[[Any, Style], Iterator[str]]) -> Callable[[Any, Style], Iterator[str]]:
        _RULES[node_type] = rule
        return rule

    return register


def _lines(node: Declaration, style: Style) -> Iterator[str]:
    rule = _RULES.get(type(node))
    if rule is None:
        raise TypeError(f"the printer has no rule for {type(node).__name__}")
    return rule(node, style)


@_rule(BlankLine)
def _(node: BlankLine, style: Style) -> Iterator[str]:
    yield ""


@_rule(LineComment)
def _(node: LineComment, style: Style) -> Iterator[str]:
    yield f"// {node.text}" if node.text else "//"


@_rule(Include)
def _(node: Include, style: Style) -> Iterator[str]:
    yield f"#include <{node.path}>" if node.angled else f'#include "{node.path}"'


@_rule(PragmaOnce)
def _(node: PragmaOnce, style: Style) -> Iterator[str]:
    yield "#pragma once"


@_rule(MacroDefinition)
def _(node: MacroDefinition, style: Style) -> Iterator[str]:
    yield f"#define {node.name} {node.replacement}" if node.replacement else f"#define {node.name}"


@_rule(Namespace)
def _(node: Namespace, style: Style) -> Iterator[str]:
    name = node.name
    yield f"namespace {name} {{" if style.space_before_namespace_brace else f"namespace {name}{{"
    body = _lines_of(node.body, style)
    yield from _indented(body, style.indent_width) if style.indent_namespace_body else body
    gap = " " * style.spaces_before_close_comment
    yield f"}}{gap}// namespace {name}" if style.comment_namespace_close else "}"


def _guarded(directive: str, macro: MacroName, body: Iterable[Declaration], style: Style) -> Iterator[str]:
    yield f"{directive} {macro}"
    yield from _lines_of(body, style)
    yield f"#endif // {macro}" if style.comment_endif else "#endif"


@_rule(IfNotDefined)
def _(node: IfNotDefined, style: Style) -> Iterator[str]:
    return _guarded("#ifndef", node.macro, node.body, style)


@_rule(IfDefined)
def _(node: IfDefined, style: Style) -> Iterator[str]:
    return _guarded("#ifdef", node.macro, node.body, style)


@_rule(ClassDeclaration)
def _(node: ClassDeclaration, style: Style) -> Iterator[str]:
    yield f"struct {node.name} {{}};" if node.complete else f"struct {node.name};"


@_rule(TypeAlias)
def _(node: TypeAlias, style: Style) -> Iterator[str]:
    yield f"using {node.name} = {spell_type(node.target)};"


@_rule(FunctionTemplate)
def _(node: FunctionTemplate, style: Style) -> Iterator[str]:
    parameters = ", ".join(_spell_template_parameter(parameter) for parameter in node.template_parameters)
    yield f"{_template_keyword(style)}<{parameters}>"
    head = f"{spell_type(node.return_type)} {node.name}{_spell_parameters(node.parameters, style)}"
    yield f"{head} {{}}" if node.defined else f"{head};"


@_rule(ExplicitSpecialization)
def _(node: ExplicitSpecialization, style: Style) -> Iterator[str]:
    yield f"{_template_keyword(style)}<>"
    yield f"{_spell_signature(node.signature, style)} {{"
    yield from _indented((_spell_call(statement) for statement in node.body), style.indent_width)
    yield "}"


@_rule(ExplicitInstantiation)
def _(node: ExplicitInstantiation, style: Style) -> Iterator[str]:
    prefix = "extern template " if node.extern else "template "
    yield f"{prefix}{_spell_signature(node.signature, style)};"


@_rule(Verbatim)
def _(node: Verbatim, style: Style) -> Iterator[str]:
    yield from node.text.split("\n")
