"""The one place that turns nodes into C++ text.

Every construct yields its own lines; a parent indents the lines of its children, so no node knows
its depth and there is no indent counter. Declarations are dispatched with one `match` over the
closed `Declaration` union, so a node type added to the union without a printing rule is a type
error (`_unreachable`), not a surprise at run time. Every spacing choice on which generators differ
(where `&` sits, spaces before a trailing comment, where a broken list's elements go, …) is read from
the file's `Style`, its layout policy, never decided here. The output is a pure function of (tree,
style): the same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NoReturn

from flashast import definition_printer
from flashast.names import MacroName, TrailingComment
from flashast.nodes import (
    BlankLine,
    BlockComment,
    BoolArg,
    CallStatement,
    ClassDeclaration,
    ClassDefinition,
    ClassTemplate,
    CudaStandIns,
    Declaration,
    Declarator,
    EnumDeclaration,
    EnumeratorArg,
    ExplicitInstantiation,
    ExplicitSpecialization,
    FunctionDeclaration,
    FunctionDefinition,
    FunctionMacro,
    FunctionSignature,
    FunctionTemplate,
    IfDefined,
    IfNotDefined,
    IfSection,
    Include,
    IntArg,
    LineComment,
    MacroDefinition,
    MacroInstantiation,
    MacroInvocation,
    MacroParameter,
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
    UsingDirective,
    ValueParameter,
    VariableTemplate,
    Verbatim,
)
from flashast.style import (
    ArgumentLayout,
    BracketAlignment,
    Layout,
    NamespaceIndentation,
    ParameterLayout,
    PointerAlignment,
    Style,
)

# A function-like macro's continued lines: four spaces, as in every upstream tree (clang-format's
# `IndentWidth` is about bodies; the policy leaves macro replacements alone).
BODY_INDENT = "    "
DEFAULT_STYLE = Style()


def render(unit: TranslationUnit, style: Style = DEFAULT_STYLE) -> str:
    """The file's full text."""
    text = "\n".join(render_declarations(unit.declarations, style))
    return text + "\n" if style.insert_newline_at_eof else text


def render_declarations(declarations: Iterable[Declaration], style: Style = DEFAULT_STYLE) -> Iterator[str]:
    """The lines of a sequence of declarations, for callers that locate or assemble text around them."""
    for declaration in declarations:
        yield from _lines(declaration, style)


# Tokens -----------------------------------------------------------------------------------------


def spell_template_argument(argument: TemplateArgument) -> str:
    """`true`, `-3`, `cutlass::half_t`, `Tile<64, int>`, `GGML_TYPE_F16`."""
    match argument:
        case BoolArg(value=value):
            return "true" if value else "false"
        case IntArg(value=value):
            return str(value)
        case TypeArg(type=name, arguments=arguments):
            return f"{name}{_angle(arguments)}" if arguments else str(name)
        case EnumeratorArg(enumeration=enumeration, enumerator=enumerator):
            return f"{enumeration.name}::{enumerator}" if enumeration.scoped else str(enumerator)
        case _:
            _unreachable(argument)


def _angle(arguments: tuple[TemplateArgument, ...]) -> str:
    # `>>` closes two nested lists since C++11, which every supported toolchain speaks.
    return "<" + ", ".join(spell_template_argument(argument) for argument in arguments) + ">"


def spell_type(type_: Type, style: Style = DEFAULT_STYLE) -> str:
    """`const T`, `CUstream_st *`, `Flash_fwd_params &` (`CUstream_st*` where pointers align left)."""
    base = ("const " if type_.const else "") + str(type_.name)
    if type_.declarator is Declarator.VALUE:
        return base
    gap = "" if style.pointer_alignment is PointerAlignment.LEFT else " "
    return f"{base}{gap}{type_.declarator.value}"


def spell_declaration(type_: Type, name: object, style: Style = DEFAULT_STYLE) -> str:
    """A type and the name it declares, `*`/`&` placed as the style's `pointer_alignment` says:
    `Flash_fwd_params &params` (right), `const Params& params` (left), `T & x` (middle)."""
    if type_.declarator is Declarator.VALUE:
        return f"{spell_type(type_)} {name}"
    if style.pointer_alignment is PointerAlignment.RIGHT:
        return f"{spell_type(type_)}{name}"
    return f"{spell_type(type_, style)} {name}"


def _spell_parameter(parameter: Parameter, style: Style = DEFAULT_STYLE) -> str:
    return spell_declaration(parameter.type, parameter.name, style)


def _spell_parameters(parameters: tuple[Parameter, ...], style: Style = DEFAULT_STYLE) -> str:
    return "(" + ", ".join(_spell_parameter(parameter, style) for parameter in parameters) + ")"


def _broken_list(line: str, opening: str, elements: list[str], closing: str, alignment: BracketAlignment,
                 indent: int) -> list[str]:
    """`line` continued by a bracketed list broken one element per line, as clang-format's
    `AlignAfterOpenBracket` value `alignment` places them; `indent` spaces where elements are indented."""
    column = " " * (len(line) + len(opening)) if alignment is BracketAlignment.ALIGN else " " * indent
    if alignment is BracketAlignment.ALWAYS_BREAK:
        lines = [line + opening, column + elements[0]]
    else:
        lines = [line + opening + elements[0]]
    for element in elements[1:]:
        lines[-1] += ","
        lines.append(column + element)
    lines[-1] += closing
    return lines


def _signature_lines(signature: FunctionSignature, layout: Layout, lead: str, style: Style) -> list[str]:
    """`lead` (`template `, `extern template ` or nothing) and the declarator, the lists `layout` breaks
    placed as the style's `align_after_open_bracket` says; without one, as before the policy existed:
    template arguments after a break, indented, and parameters aligned under the first one."""
    head = lead + spell_declaration(signature.return_type, signature.name, style)
    comments = signature.argument_comments or (None,) * len(signature.template_arguments)
    arguments = [
        ("" if comment is None else str(comment)) + spell_template_argument(argument)
        for comment, argument in zip(comments, signature.template_arguments, strict=True)
    ]
    if layout.template_arguments is ArgumentLayout.ONE_PER_LINE and arguments:
        alignment = style.align_after_open_bracket or BracketAlignment.ALWAYS_BREAK
        lines = _broken_list(head, "<", arguments, ">", alignment, layout.indent)
    else:
        lines = [f"{head}<{', '.join(arguments)}>"]
    parameters = [_spell_parameter(parameter, style) for parameter in signature.parameters]
    if layout.parameters is ParameterLayout.ALIGNED and parameters:
        alignment = style.align_after_open_bracket or BracketAlignment.ALIGN
        lines[-1:] = _broken_list(lines[-1], "(", parameters, ")", alignment, layout.indent)
    else:
        lines[-1] += f"({', '.join(parameters)})"
    return lines


def spell_template_parameter(parameter: TemplateParameter) -> str:
    """`typename T` or `int N = 4`: one spelling, for declarations and definitions alike."""
    match parameter:
        case TypeParameter(name=name):
            return f"typename {name}"
        case ValueParameter(name=name, default=default):
            spelled = f"{parameter.spelled_kind} {name}"
            return spelled if default is None else f"{spelled} = {spell_template_argument(default)}"
        case _:
            _unreachable(parameter)


def _spell_call(statement: CallStatement) -> str:
    template = _angle(statement.template_arguments) if statement.template_arguments else ""
    arguments = ", ".join(argument.text for argument in statement.arguments)
    return f"{statement.function}{template}({arguments});"


def _spell_instantiation_pattern(step: MacroInstantiation, style: Style) -> str:
    """One explicit instantiation of a macro's replacement, its parameters spelled by name."""
    template = step.template
    arguments = ", ".join(
        argument.name.text if isinstance(argument, MacroParameter) else spell_template_argument(argument)
        for argument in step.arguments
    )
    parameters = _spell_parameters(template.declarator_parameters(step.arguments), style)
    return f"template {spell_declaration(template.return_type, template.name, style)}<{arguments}>{parameters}"


def _spell_invocation(node: MacroInvocation) -> str:
    widths = node.widths + (0,) * (len(node.arguments) - len(node.widths))
    arguments = ", ".join(
        spell_template_argument(argument).rjust(width) for argument, width in zip(node.arguments, widths, strict=True)
    )
    return f"{node.macro.name}({arguments});"


def _trailing(comment: TrailingComment | None, style: Style) -> str:
    """A trailing comment with at least the style's `spaces_before_trailing_comments` before it (as in
    clang-format, a minimum: a comment asking for more, to line up with its neighbours, keeps them)."""
    if comment is None:
        return ""
    return " " * max(comment.spaces, style.spaces_before_trailing_comments) + str(comment).lstrip(" ")


def template_header(parameters: Iterable[TemplateParameter], space: bool) -> str:
    """`template<typename T, int N>`, or `template <…>` with `space`; `template<>` without parameters."""
    return f"template{' ' if space else ''}<{', '.join(spell_template_parameter(p) for p in parameters)}>"


def _indented(lines: Iterable[str], width: int) -> Iterator[str]:
    """Lines one level in; empty lines stay empty."""
    prefix = " " * width
    return (prefix + line if line else line for line in lines)


# Declarations -----------------------------------------------------------------------------------


def _lines(node: Declaration, style: Style) -> Iterator[str]:
    match node:
        case BlankLine():
            yield ""
        case LineComment(text=text):
            yield f"// {text}" if text else "//"
        case BlockComment(lines=inner):
            yield from ("/*" + "\n".join(inner) + "*/").split("\n")
        case Include(path=path, angled=angled, comment=comment):
            yield (f"#include <{path}>" if angled else f'#include "{path}"') + _trailing(comment, style)
        case PragmaOnce():
            yield "#pragma once"
        case MacroDefinition(name=name, replacement=replacement):
            yield f"#define {name} {replacement}" if replacement else f"#define {name}"
        case Namespace(name=name, body=body):
            # PyTorch's generator writes `namespace pytorch_flash{`.
            yield f"namespace {name} {{" if style.space_before_namespace_brace else f"namespace {name}{{"
            lines = render_declarations(body, style)
            if style.namespace_indentation is NamespaceIndentation.ALL:
                lines = _indented(lines, style.indent_width)
            yield from lines
            gap = " " * style.spaces_before_trailing_comments
            yield f"}}{gap}// namespace {name}" if style.fix_namespace_comments else "}"
        case IfNotDefined(macro=macro, body=body):
            yield from _guarded("#ifndef", macro, body, style)
        case IfDefined(macro=macro, body=body):
            yield from _guarded("#ifdef", macro, body, style)
        case ClassDeclaration(name=name, complete=complete):
            yield f"struct {name} {{}};" if complete else f"struct {name};"
        case TypeAlias(name=name, target=target):
            yield f"using {name} = {spell_type(target, style)};"
        case EnumDeclaration(name=name, enumerators=enumerators, scoped=scoped):
            yield f"enum {'class ' if scoped else ''}{name} {{"
            for enumerator in enumerators:
                value = "" if enumerator.value is None else f" = {enumerator.value}"
                yield f"{' ' * style.indent_width}{enumerator.name}{value},"
            yield "};"
        case FunctionTemplate():
            yield template_header(node.template_parameters, style.space_after_template_keyword)
            head = spell_declaration(node.return_type, node.name, style) + _spell_parameters(node.parameters, style)
            yield f"{head} {{}}" if node.defined else f"{head};"
        case ExplicitSpecialization(signature=signature, body=calls, layout=layout):
            yield template_header((), style.space_after_template_keyword)
            declarator = _signature_lines(signature, layout, "", style)
            declarator[-1] += " {"
            yield from declarator
            yield from _indented((_spell_call(statement) for statement in calls), style.indent_width)
            yield "}"
        case ExplicitInstantiation(signature=signature, extern=extern, layout=layout, comment=comment):
            declarator = _signature_lines(signature, layout, "extern template " if extern else "template ", style)
            declarator[-1] += ";" + _trailing(comment, style)
            yield from declarator
        case FunctionMacro(name=name, parameters=parameters, expansion=expansion):
            # One instantiation per continued line; the invocation's own `;` ends the last one.
            yield f"#define {name}({', '.join(parameter.text for parameter in parameters)}) \\"
            steps = [_spell_instantiation_pattern(step, style) for step in expansion]
            yield from (f"{BODY_INDENT}{step}; \\" for step in steps[:-1])
            yield BODY_INDENT + steps[-1]
        case MacroInvocation(comment=comment):
            yield _spell_invocation(node) + _trailing(comment, style)
        case Verbatim(text=text):
            yield from text.split("\n")
        case (
            FunctionDefinition() | FunctionDeclaration() | UsingDirective() | ClassDefinition() | ClassTemplate()
            | VariableTemplate() | IfSection() | CudaStandIns()
        ):
            # Definitions, statements and expressions: flashast.definition_printer.
            yield from definition_printer.definition_lines(node, style)
        case _:
            _unreachable(node)


def _guarded(directive: str, macro: MacroName, body: Iterable[Declaration], style: Style) -> Iterator[str]:
    yield f"{directive} {macro}"
    yield from render_declarations(body, style)
    # `comment_endif` is the deprecated 0.1.0 knob (see `Style`); no upstream tree comments its `#endif`.
    yield f"#endif // {macro}" if style.comment_endif else "#endif"


def _unreachable(node: NoReturn) -> NoReturn:
    """Where the type checker proves every member of a closed union was handled.

    (`typing.assert_never` is Python 3.11; this is the same thing for 3.10.) Reaching it at run time
    means a value outside the union was passed, which the nodes' own checks normally prevent.
    """
    raise TypeError(f"the printer has no rule for {type(node).__name__}")
