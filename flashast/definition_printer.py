"""How `flashast.printer` prints definitions, statements and expressions (its part for them, kept apart
only to keep each module readable; `printer.py` dispatches to it and stays the one entry point).

Like the rest of the printer, each construct yields its own lines and a parent indents its children.
One rule is particular to bodies: a preprocessor directive (a line starting with `#`) stays in
column 0 at any depth, as the field's generators write `#if __CUDA_ARCH__ …` inside kernels; no
statement line can start with `#`, so the rule is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NoReturn

from flashast import printer
from flashast.blank_line import BlankLine
from flashast.classes import ClassDefinition, ClassTemplate, Member, StaticDataMember, VariableTemplate
from flashast.definitions import (
    FunctionDeclaration,
    FunctionDefinition,
    FunctionHead,
    ParameterDeclaration,
    TypenameSpecifier,
    UsingDirective,
)
from flashast.expressions import (
    POSTFIX_PRECEDENCE,
    UNARY_PRECEDENCE,
    BinaryExpression,
    BinaryOperator,
    BooleanLiteral,
    CallExpression,
    Expression,
    FunctionalCast,
    IntegerLiteral,
    MemberAccess,
    Name,
    StringLiteral,
    TemplateId,
    UnaryExpression,
    UnaryOperator,
    precedence,
)
from flashast.names import Identifier, TrailingComment
from flashast.preprocessor import Condition, CudaStandIns, Defined, IfSection
from flashast.statements import (
    Block,
    ConditionalStatements,
    ExpressionStatement,
    IfStatement,
    ReturnStatement,
    Statement,
)
from flashast.style import BracketAlignment, Style

# Expressions ------------------------------------------------------------------------------------


def spell_expression(expression: Expression) -> str:
    """`!p.advance_to_block()`, `int(__CUDA_ARCH__ + 0) / 10`, with parentheses only where needed."""
    match expression:
        case IntegerLiteral(value=value):
            return str(value)
        case BooleanLiteral(value=value):
            return "true" if value else "false"
        case StringLiteral():
            return expression.spelled
        case Name():
            return spell_name(expression)
        case UnaryExpression(operator=operator, operand=operand):
            # `- -x` must not print as `--x`: a unary operand of a unary operator is parenthesized.
            inner = spell_expression(operand)
            if precedence(operand) < UNARY_PRECEDENCE or isinstance(operand, UnaryExpression):
                inner = f"({inner})"
            return f"{operator.value}{inner}"
        case BinaryExpression(left=left, operator=operator, right=right):
            # Left-associative: an equal-precedence operand needs parentheses on the right only.
            spelled_left = _parenthesized(left, precedence(left) < operator.precedence or _warned(operator, left))
            spelled_right = _parenthesized(right, precedence(right) <= operator.precedence or _warned(operator, right))
            return f"{spelled_left} {operator.value} {spelled_right}"
        case MemberAccess(object=inner, member=member):
            return f"{_parenthesized(inner, precedence(inner) < POSTFIX_PRECEDENCE)}.{member}"
        case CallExpression(function=function, arguments=arguments):
            return f"{spell_expression(function)}({_spell_arguments(arguments)})"
        case FunctionalCast(type=type_, arguments=arguments):
            spelled_type = spell_name(type_) if isinstance(type_, Name) else type_.text
            return f"{spelled_type}({_spell_arguments(arguments)})"
        case _:
            _unreachable(expression)


_COMPARISONS = frozenset(
    {BinaryOperator.LESS, BinaryOperator.LESS_EQUAL, BinaryOperator.GREATER, BinaryOperator.GREATER_EQUAL,
     BinaryOperator.EQUAL, BinaryOperator.NOT_EQUAL}
)
_BITWISE = frozenset({BinaryOperator.BIT_AND, BinaryOperator.BIT_XOR, BinaryOperator.BIT_OR})
_SHIFTS = frozenset({BinaryOperator.SHIFT_LEFT, BinaryOperator.SHIFT_RIGHT})
_ADDITIVE = frozenset({BinaryOperator.ADD, BinaryOperator.SUBTRACT})


def _warned(parent: BinaryOperator, operand: Expression) -> bool:
    """Whether clang's -Wparentheses (in -Wall, which verification uses) warns about `operand` bare
    under `parent` although precedence makes it right: `a || b && c`, `a & b | c`, `a < b < c`,
    `a & b == c`, `a << b + c`, `!a == b`. Those get parentheses, so a tree always prints
    warning-free (gcc's -Wparentheses also asks for them around arithmetic under a bitwise operator)."""
    if isinstance(operand, UnaryExpression):
        return parent in _COMPARISONS and operand.operator is UnaryOperator.NOT
    if not isinstance(operand, BinaryExpression):
        return False
    inner = operand.operator
    return (
        (parent is BinaryOperator.OR and inner is BinaryOperator.AND)
        or (parent in _BITWISE and inner in _BITWISE and inner is not parent)
        or (parent in _COMPARISONS and inner in _COMPARISONS)
        or (parent in _BITWISE and inner in _COMPARISONS | _ADDITIVE | _SHIFTS)
        or (parent in _SHIFTS and inner in _ADDITIVE)
    )


def _parenthesized(expression: Expression, needed: bool) -> str:
    spelled = spell_expression(expression)
    return f"({spelled})" if needed else spelled


def _spell_arguments(arguments: Iterable[Expression]) -> str:
    return ", ".join(spell_expression(argument) for argument in arguments)


def spell_name(name: Name) -> str:
    """`cc`, `std::is_same_v<DT, float>`, `Kernel<float, 64>::kNumThreads`."""
    parts = [
        f"{part.name}<{', '.join(printer.spell_template_argument(argument) for argument in part.arguments)}>"
        if isinstance(part, TemplateId) else part.text
        for part in name.parts
    ]
    return ("::" if name.absolute else "") + "::".join(parts)


# Statements -------------------------------------------------------------------------------------


def _indented(lines: Iterable[str], indent: str) -> Iterator[str]:
    """Child lines one level in; empty lines stay empty and directives stay in column 0."""
    for line in lines:
        yield line if not line or line.startswith("#") else indent + line


def statement_lines(statement: Statement, indent: str, style: Style) -> Iterator[str]:
    """The lines of one statement at depth zero (`indent`: one body level, for nested blocks)."""
    match statement:
        case ExpressionStatement(expression=expression, layout=layout):
            offset = " " * layout.indent_offset
            if layout.arguments_one_per_line and isinstance(expression, CallExpression):
                arguments = [spell_expression(argument) for argument in expression.arguments]
                yield from printer._broken_list(
                    offset + spell_expression(expression.function), "(", arguments, ");", BracketAlignment.ALWAYS_BREAK,
                    layout.indent_offset + layout.continuation_indent_width,
                )
            else:
                yield f"{offset}{spell_expression(expression)};"
        case ReturnStatement(value=value):
            yield "return;" if value is None else f"return {spell_expression(value)};"
        case IfStatement(condition=condition, body=body, else_body=else_body):
            head = f"if ({spell_expression(condition)})"
            if isinstance(body, Block):
                yield head + " {"
                yield from _indented(body_lines(body.statements, indent, style), indent)
                if else_body is None:
                    yield "}"
                else:
                    # `} else {` or `} else if (…) {`: the else continues the closing brace's line.
                    first, *rest = statement_lines(else_body, indent, style)
                    yield f"}} else {first}"
                    yield from rest
            else:
                first, *rest = statement_lines(body, indent, style)
                yield f"{head} {first}"
                yield from rest
        case Block(statements=statements):
            yield "{"
            yield from _indented(body_lines(statements, indent, style), indent)
            yield "}"
        case BlankLine():
            yield ""
        case ConditionalStatements(condition=condition, body=body, endif_comment=comment):
            yield _opening_directive(condition)
            yield from body_lines(body, indent, style)
            yield _endif(comment, style)
        case _:
            _unreachable(statement)


def body_lines(statements: Iterable[Statement], indent: str, style: Style) -> Iterator[str]:
    for statement in statements:
        yield from statement_lines(statement, indent, style)


def _opening_directive(condition: Condition) -> str:
    if isinstance(condition, Defined):
        return f"#{'ifndef' if condition.negated else 'ifdef'} {condition.macro}"
    return f"#if {spell_expression(condition)}"


def _endif(comment: TrailingComment | None, style: Style) -> str:
    # At least the style's `spaces_before_trailing_comments`, as for every trailing comment.
    return "#endif" + printer._trailing(comment, style)


# Definitions ------------------------------------------------------------------------------------


def _spell_parameter(parameter: ParameterDeclaration, style: Style) -> str:
    # `Params &p` or `Params& p`, as the style's `pointer_alignment` says for every parameter.
    type_ = parameter.type
    if isinstance(type_, TypenameSpecifier):
        spelled = f"typename {spell_name(type_.name)} {parameter.name}"
    else:
        spelled = printer.spell_declaration(type_, parameter.name, style)
    return spelled if parameter.default is None else f"{spelled} = {spell_expression(parameter.default)}"


def head_lines(head: FunctionHead, style: Style) -> list[str]:
    """The head of a definition or declaration, without its `{` or `;`."""
    layout = head.layout
    prefix = " ".join(
        [*(["static"] if head.static else []), *(specifier.value for specifier in head.specifiers),
         printer.spell_type(head.return_type, style)]
    )
    declarator = f"{head.name}({', '.join(_spell_parameter(parameter, style) for parameter in head.parameters)})"
    bounds = head.launch_bounds
    if bounds is None:
        lines = [f"{prefix} {declarator}"]
    elif layout.launch_bounds_one_per_line:
        arguments = [spell_expression(argument) for argument in bounds.arguments]
        lines = [
            *printer._broken_list(
                f"{prefix} __launch_bounds__", "(", arguments, ")", BracketAlignment.ALWAYS_BREAK,
                layout.continuation_indent_width,
            ),
            declarator,
        ]
    else:
        lines = [f"{prefix} __launch_bounds__({_spell_arguments(bounds.arguments)}) {declarator}"]
    if head.template_parameters:
        space = layout.space_after_template_keyword
        template = printer.template_header(
            head.template_parameters, style.space_after_template_keyword if space is None else space
        )
        if layout.break_template_declarations:
            lines.insert(0, template)
        else:
            lines[0] = f"{template} {lines[0]}"
    return lines


def _member_lines(member: Member, style: Style) -> Iterator[str]:
    match member:
        case ClassDefinition(name=name, members=members):
            yield from _struct_lines(name, members, style)
        case StaticDataMember(type=type_, name=name, value=value):
            yield f"static constexpr {printer.spell_type(type_, style)} {name} = {spell_expression(value)};"
        case FunctionDeclaration(head=head):
            lines = head_lines(head, style)
            lines[-1] += ";"
            yield from lines
        case _:
            _unreachable(member)


def _struct_lines(name: Identifier, members: Iterable[Member], style: Style) -> Iterator[str]:
    """`struct name {`, the members one level in, `};`: a class definition's and a class template's."""
    yield f"struct {name} {{"
    for member in members:
        yield from _indented(_member_lines(member, style), " " * style.indent_width)
    yield "};"


DefinitionNode = (
    FunctionDefinition | FunctionDeclaration | UsingDirective | ClassDefinition | ClassTemplate | VariableTemplate
    | IfSection | CudaStandIns
)


def definition_lines(node: DefinitionNode, style: Style) -> Iterator[str]:
    """The lines of one of the declarations this module prints."""
    match node:
        case FunctionDefinition(head=head, body=body):
            lines = head_lines(head, style)
            lines[-1] += " {"
            yield from lines
            width = head.layout.indent_width
            indent = " " * (style.indent_width if width is None else width)
            yield from _indented(body_lines(body, indent, style), indent)
            yield "}"
        case FunctionDeclaration() | ClassDefinition():
            yield from _member_lines(node, style)
        case UsingDirective(namespace=namespace):
            yield f"using namespace {namespace};"
        case ClassTemplate(template_parameters=parameters, name=name, members=members):
            yield printer.template_header(parameters, style.space_after_template_keyword)
            yield from _struct_lines(name, members, style)
        case VariableTemplate(template_parameters=parameters, type=type_, name=name, value=value):
            template = printer.template_header(parameters, style.space_after_template_keyword)
            yield f"{template} constexpr {printer.spell_type(type_, style)} {name} = {spell_expression(value)};"
        case IfSection(condition=condition, body=body, endif_comment=comment):
            yield _opening_directive(condition)
            yield from printer.render_declarations(body, style)
            yield _endif(comment, style)
        case CudaStandIns(checked_architecture=architecture):
            yield from _cuda_stand_in_lines(architecture)
        case _:
            _unreachable(node)


def _cuda_stand_in_lines(architecture: int | None) -> Iterator[str]:
    # `annotate` is an attribute a plain C++ parse accepts silently while still evaluating its
    # extra arguments as constant expressions: launch bounds stay checked without CUDA mode.
    for specifier in ("__global__", "__host__", "__device__"):
        yield f'#define {specifier} __attribute__((annotate("{specifier}")))'
    yield "#define __forceinline__ inline"
    yield '#define __launch_bounds__(...) __attribute__((annotate("__launch_bounds__", __VA_ARGS__)))'
    yield 'extern "C" int printf(const char *format, ...);'
    if architecture is not None:
        yield f"#define __CUDA_ARCH__ {architecture}"


def _unreachable(node: NoReturn) -> NoReturn:
    raise TypeError(f"the printer has no rule for {type(node).__name__}")
