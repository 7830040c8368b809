"""Expressions: the few a kernel definition's body, its attributes and its `#if` lines are made of.

Not a C++ front end: literals, names (qualified, possibly through a template-id:
`AttentionKernel<float, 64>::kNumThreads`, `std::is_same_v<DT, float>`), member access, calls,
functional casts (`int(x)`, `Kernel<…>()`), unary and binary operators. That covers the definition
writers of the field (PyTorch's memory-efficient attention, xformers, CK's dispatch wrappers). Like
every node, each is frozen, slotted and checked on construction, raising `ModelError` that names the
class, the field and the value. Operators are typed (an enumeration), so no string can smuggle
tokens in; the printer adds parentheses where precedence needs them, so a tree always reads as it is
built.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from flashast.errors import ModelError
from flashast.fields import as_atom, as_flag, as_tuple, store_fields
from flashast.names import FundamentalType, Identifier, QualifiedName
from flashast.signatures import TemplateArgument, is_template_argument

# Literals ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntegerLiteral:
    """`0`, `800`: a non-negative decimal literal (a negative number is `-` applied to one, as in C++)."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise ModelError("IntegerLiteral", "value", self.value, "must be an int (a bool is BooleanLiteral)")
        if not 0 <= self.value < 2**63:
            raise ModelError("IntegerLiteral", "value", self.value, "must be from 0 to 2**63 - 1 (negate it with '-')")


@dataclass(frozen=True, slots=True)
class BooleanLiteral:
    """`true` or `false`."""

    value: bool

    def __post_init__(self) -> None:
        as_flag(self, "value", self.value)


# The escapes a string literal is printed with; any other control character is refused.
STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


@dataclass(frozen=True, slots=True)
class StringLiteral:
    """A narrow string literal holding `value`, printed with escapes: a newline in the value prints `\\n`,
    a quote `\\"`, a backslash `\\\\`. Other control characters and lone surrogates are refused (no
    escape the field's files use spells them), and `??` is refused: before C++17 it could start a
    trigraph."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise ModelError("StringLiteral", "value", self.value, "must be a str")
        for character in self.value:
            if character not in STRING_ESCAPES and (ord(character) < 0x20 or ord(character) == 0x7F):
                raise ModelError("StringLiteral", "value", self.value, f"holds control character {character!r}")
            if 0xD800 <= ord(character) <= 0xDFFF:
                raise ModelError("StringLiteral", "value", self.value, "holds a lone surrogate")
        if "??" in self.value:
            raise ModelError("StringLiteral", "value", self.value, "'??' could start a trigraph before C++17")

    @property
    def spelled(self) -> str:
        """The literal as C++ spells it, quotes included."""
        return '"' + "".join(STRING_ESCAPES.get(character, character) for character in self.value) + '"'


# Names ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class TemplateId:
    """`name<arguments>`: a template named with its arguments, as one part of a name.

    Built unchecked here; `flashast.classes.ClassTemplate.template_id` binds the arguments against the
    class template a contract declares, which is how kinds should make the ones their kernels use.
    """

    name: Identifier
    arguments: tuple[TemplateArgument, ...]

    def __init__(self, name: Identifier | str, arguments: Iterable[TemplateArgument] = ()) -> None:
        store_fields(
            self,
            name=as_atom(self, "name", name, Identifier),
            arguments=as_tuple(self, "arguments", arguments, is_template_argument, "template argument"),
        )


NamePart = Identifier | TemplateId


def _as_name_part(owner: object, value: object) -> NamePart:
    if isinstance(value, (Identifier, TemplateId)):
        return value
    return as_atom(owner, "parts", value, Identifier)


@dataclass(frozen=True, slots=True, init=False)
class Name:
    """An id-expression: `cc`, `std::is_same_v<DT, float>`, `Kernel<float, 64>::attention_kernel`.

    `parts` are identifiers and template-ids joined by `::`; a str part is an identifier, and a str
    or `QualifiedName` with `::` is split into its parts (`Name("cutlass::half_t")`). `absolute` prints a
    leading `::` (so does a first part spelled `::x`).
    """

    parts: tuple[NamePart, ...]
    absolute: bool

    def __init__(self, *parts: NamePart | QualifiedName | str, absolute: bool = False) -> None:
        flat: list[object] = []
        for position, part in enumerate(parts):
            if isinstance(part, str) and "::" in part:
                try:
                    part = QualifiedName.parse(part)
                except ModelError as error:
                    raise ModelError("Name", "parts", part, error.problem) from None
            if isinstance(part, QualifiedName):
                if part.absolute and position:
                    raise ModelError("Name", "parts", str(part), "only the first part can start with '::'")
                absolute = absolute or part.absolute
                flat += part.parts
            else:
                flat.append(part)
        if not flat:
            raise ModelError("Name", "parts", parts, "a name needs at least one part")
        checked = tuple(_as_name_part(self, part) for part in flat)
        store_fields(self, parts=checked, absolute=as_flag(self, "absolute", absolute))

    @property
    def qualified(self) -> bool:
        """Whether the name has a scope (`a::b`, `::b`): what `typename` needs before it."""
        return self.absolute or len(self.parts) > 1

    def member(self, name: Identifier | str) -> Name:
        """This name's member: `Name(Kernel<…>).member("Params")` is `Kernel<…>::Params`."""
        return Name(*self.parts, as_atom(self, "member", name, Identifier), absolute=self.absolute)


# Operators and compound expressions ---------------------------------------------------------------


class UnaryOperator(enum.Enum):
    """The prefix operators the field's bodies use."""

    NOT = "!"
    NEGATE = "-"
    COMPLEMENT = "~"


class BinaryOperator(enum.Enum):
    """Binary operators, each with its C++ precedence (a larger number binds tighter)."""

    MULTIPLY = "*"
    DIVIDE = "/"
    REMAINDER = "%"
    ADD = "+"
    SUBTRACT = "-"
    SHIFT_LEFT = "<<"
    SHIFT_RIGHT = ">>"
    LESS = "<"
    LESS_EQUAL = "<="
    GREATER = ">"
    GREATER_EQUAL = ">="
    EQUAL = "=="
    NOT_EQUAL = "!="
    BIT_AND = "&"
    BIT_XOR = "^"
    BIT_OR = "|"
    AND = "&&"
    OR = "||"

    @property
    def precedence(self) -> int:
        return _PRECEDENCE[self]


_PRECEDENCE = {
    **dict.fromkeys((BinaryOperator.MULTIPLY, BinaryOperator.DIVIDE, BinaryOperator.REMAINDER), 10),
    **dict.fromkeys((BinaryOperator.ADD, BinaryOperator.SUBTRACT), 9),
    **dict.fromkeys((BinaryOperator.SHIFT_LEFT, BinaryOperator.SHIFT_RIGHT), 8),
    **dict.fromkeys(
        (BinaryOperator.LESS, BinaryOperator.LESS_EQUAL, BinaryOperator.GREATER, BinaryOperator.GREATER_EQUAL), 7
    ),
    **dict.fromkeys((BinaryOperator.EQUAL, BinaryOperator.NOT_EQUAL), 6),
    BinaryOperator.BIT_AND: 5,
    BinaryOperator.BIT_XOR: 4,
    BinaryOperator.BIT_OR: 3,
    BinaryOperator.AND: 2,
    BinaryOperator.OR: 1,
}
# Unary operators, postfix expressions (calls, member access) and primary expressions bind tighter.
UNARY_PRECEDENCE = 11
POSTFIX_PRECEDENCE = 12


Operator = TypeVar("Operator", UnaryOperator, BinaryOperator)


def _as_operator(owner: object, value: object, operators: type[Operator]) -> Operator:
    if isinstance(value, operators):
        return value
    try:
        return operators(value)
    except ValueError:
        spelled = ", ".join(repr(operator.value) for operator in operators)
        raise ModelError(type(owner).__name__, "operator", value, f"must be one of {spelled}") from None


def as_expression(owner: object, field: str, value: object) -> Expression:
    """`value` as an expression: one, an int (`IntegerLiteral`), a bool (`BooleanLiteral`), or a
    name's spelling (`Name`)."""
    if isinstance(value, Expression):
        return value
    if isinstance(value, bool):
        return BooleanLiteral(value)
    if isinstance(value, int):
        try:
            return IntegerLiteral(value)
        except ModelError as error:
            raise ModelError(type(owner).__name__, field, value, error.problem) from None
    if isinstance(value, (str, Identifier, QualifiedName)):
        try:
            return Name(value)
        except ModelError as error:
            raise ModelError(type(owner).__name__, field, value, error.problem) from None
    raise ModelError(type(owner).__name__, field, value, "must be an expression, an int, a bool or a name")


@dataclass(frozen=True, slots=True, init=False)
class UnaryExpression:
    """`!p.advance_to_block()`, `-1`."""

    operator: UnaryOperator
    operand: Expression

    def __init__(self, operator: UnaryOperator | str, operand: Expression | int | bool | str) -> None:
        store_fields(
            self, operator=_as_operator(self, operator, UnaryOperator), operand=as_expression(self, "operand", operand)
        )


@dataclass(frozen=True, slots=True, init=False)
class BinaryExpression:
    """`left operator right`: `cc == 86`, `70 <= cc && cc <= 74`, `int(x) / 10`."""

    left: Expression
    operator: BinaryOperator
    right: Expression

    def __init__(
        self, left: Expression | int | bool | str, operator: BinaryOperator | str, right: Expression | int | bool | str
    ) -> None:
        store_fields(
            self, left=as_expression(self, "left", left), operator=_as_operator(self, operator, BinaryOperator),
            right=as_expression(self, "right", right),
        )


@dataclass(frozen=True, slots=True, init=False)
class MemberAccess:
    """`object.member`: `p.advance_to_block` (call it with `CallExpression`)."""

    object: Expression
    member: Identifier

    def __init__(self, object: Expression | str, member: Identifier | str) -> None:
        store_fields(
            self, object=as_expression(self, "object", object), member=as_atom(self, "member", member, Identifier)
        )


def _as_arguments(owner: object, arguments: Iterable[object]) -> tuple[Expression, ...]:
    if isinstance(arguments, (str, bytes)) or not isinstance(arguments, Iterable):
        raise ModelError(type(owner).__name__, "arguments", arguments, "must be a sequence of expressions")
    return tuple(as_expression(owner, "arguments", argument) for argument in arguments)


@dataclass(frozen=True, slots=True, init=False)
class CallExpression:
    """`function(arguments)`: `printf("…", x)`, `Kernel<…>::attention_kernel(p)`, `p.advance_to_block()`.

    The callee is a name or a member access; anything else would need parentheses C++ writers never use here.
    """

    function: Name | MemberAccess
    arguments: tuple[Expression, ...]

    def __init__(self, function: Name | MemberAccess | str, arguments: Iterable[ExpressionValue] = ()) -> None:
        callee = as_expression(self, "function", function)
        if not isinstance(callee, (Name, MemberAccess)):
            raise ModelError("CallExpression", "function", function, "must be a Name or a MemberAccess")
        store_fields(self, function=callee, arguments=_as_arguments(self, arguments))


@dataclass(frozen=True, slots=True, init=False)
class FunctionalCast:
    """An explicit type conversion in functional notation: `int(x)`, or `Kernel<…>()`, a value-initialized
    temporary. The type is one word or a name: `unsigned int(x)` is not C++, so multi-word
    fundamental types are refused."""

    type: FundamentalType | Name
    arguments: tuple[Expression, ...]

    def __init__(self, type: FundamentalType | Name | str, arguments: Iterable[ExpressionValue] = ()) -> None:
        checked: FundamentalType | Name
        if isinstance(type, (FundamentalType, Name)):
            checked = type
        elif isinstance(type, str) and type.replace(" ", "") != type:
            raise ModelError("FunctionalCast", "type", type, "a functional cast names a type in one word")
        elif isinstance(type, str):
            try:
                checked = FundamentalType(type)
            except ModelError:
                checked = Name(type)
        else:
            raise ModelError("FunctionalCast", "type", type, "must be a FundamentalType, a Name or a str")
        if isinstance(checked, FundamentalType) and " " in checked.text:
            raise ModelError("FunctionalCast", "type", checked.text, "a functional cast names a type in one word")
        store_fields(self, type=checked, arguments=_as_arguments(self, arguments))


Expression = (
    IntegerLiteral
    | BooleanLiteral
    | StringLiteral
    | Name
    | UnaryExpression
    | BinaryExpression
    | MemberAccess
    | CallExpression
    | FunctionalCast
)


def subexpressions(expression: Expression) -> Iterator[Expression]:
    """`expression` and every expression inside it, depth first."""
    yield expression
    match expression:
        case UnaryExpression(operand=operand):
            yield from subexpressions(operand)
        case BinaryExpression(left=left, right=right):
            yield from subexpressions(left)
            yield from subexpressions(right)
        case MemberAccess(object=inner):
            yield from subexpressions(inner)
        case CallExpression(function=function, arguments=arguments):
            yield from subexpressions(function)
            for argument in arguments:
                yield from subexpressions(argument)
        case FunctionalCast(arguments=arguments):
            for argument in arguments:
                yield from subexpressions(argument)
        case _:
            pass


def precedence(expression: Expression) -> int:
    """How tightly `expression` binds, for the printer's parentheses."""
    if isinstance(expression, BinaryExpression):
        return expression.operator.precedence
    if isinstance(expression, UnaryExpression):
        return UNARY_PRECEDENCE
    return POSTFIX_PRECEDENCE


# What a constructor accepts where an expression goes: one, or an int, a bool or a name's spelling.
ExpressionValue = Expression | int | bool | str
