"""The parts declarations are made of: template parameters and arguments, types, function
parameters, signatures and call statements.

Like the declarations in `flashast.nodes` (which re-exports every name here), each part is a frozen,
slotted, value-compared dataclass that checks its values once, on construction, and holds atoms, never
C++ text; see that module for the one construction pattern they all follow.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from flashast.errors import ModelError
from flashast.fields import as_atom, as_flag, as_qualified_name, as_tuple, as_type_name, store_fields
from flashast.names import FundamentalType, Identifier, QualifiedName, TypeName

# Template parameters and arguments -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class TypeParameter:
    """`typename T` in a primary template's parameter list."""

    name: Identifier

    def __init__(self, name: Identifier | str) -> None:
        store_fields(self, name=as_atom(self, "name", name, Identifier))


class ValueKind(enum.Enum):
    """The types a non-type template parameter of these kernels can have."""

    INT = "int"
    BOOL = "bool"


@dataclass(frozen=True, slots=True, init=False)
class ValueParameter:
    """A non-type template parameter, `int Headdim` or `bool Is_causal`."""

    kind: ValueKind
    name: Identifier

    def __init__(self, kind: ValueKind | str, name: Identifier | str) -> None:
        if not isinstance(kind, ValueKind):
            try:
                kind = ValueKind(kind)
            except ValueError:
                raise ModelError("ValueParameter", "kind", kind, "must be 'int' or 'bool'") from None
        store_fields(self, kind=kind, name=as_atom(self, "name", name, Identifier))


TemplateParameter = TypeParameter | ValueParameter


def is_template_parameter(value: object) -> TypeGuard[TemplateParameter]:
    return isinstance(value, (TypeParameter, ValueParameter))


@dataclass(frozen=True, slots=True, init=False)
class TypeArg:
    """A type as a template argument: `cutlass::half_t`, or a template-id such as `Foo<int, 3>`."""

    type: TypeName
    arguments: tuple[TemplateArgument, ...]

    def __init__(self, type: TypeName | str, arguments: Iterable[TemplateArgument] = ()) -> None:
        name = as_type_name(self, "type", type)
        bound = as_tuple(self, "arguments", arguments, is_template_argument, "template argument")
        if bound and isinstance(name, FundamentalType):
            raise ModelError("TypeArg", "arguments", bound, f"{name} is not a template")
        store_fields(self, type=name, arguments=bound)


INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _abbreviated(value: int) -> str:
    """A huge int as a short text for an error message (`str()` refuses past 4,300 digits)."""
    return f"an int of {value.bit_length()} bits" if value.bit_length() > 64 else str(value)


@dataclass(frozen=True, slots=True)
class IntArg:
    """An integer template argument; a `bool` is refused because C++ would silently convert it."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise ModelError("IntArg", "value", self.value, "must be an int (use BoolArg for a bool)")
        if not INT_MIN <= self.value <= INT_MAX:
            # The parameters these files instantiate are `int`: a wider value would not even print
            # (Python refuses to spell ints of thousands of digits) and C++ would narrow it.
            raise ModelError("IntArg", "value", _abbreviated(self.value), "is outside the range of a 32-bit int")


@dataclass(frozen=True, slots=True)
class BoolArg:
    """A boolean template argument, printed `true` or `false`."""

    value: bool

    def __post_init__(self) -> None:
        as_flag(self, "value", self.value)


TemplateArgument = TypeArg | IntArg | BoolArg
# What a kind may pass where a template argument goes: the argument itself, or the plain value it
# stands for (a type name for a type parameter, an int or a bool for a value parameter).
TemplateArgumentValue = TemplateArgument | TypeName | str | int


def is_template_argument(value: object) -> TypeGuard[TemplateArgument]:
    return isinstance(value, (TypeArg, IntArg, BoolArg))


def bind_template_arguments(
    owner: str, parameters: Iterable[TemplateParameter], values: Iterable[TemplateArgumentValue]
) -> tuple[TemplateArgument, ...]:
    """Check `values` against a template's parameters and return them as typed arguments.

    This is where a wrong arity or a `true` passed for an `int` parameter is refused: clang would
    accept the latter (bool converts to int), so only the model can tell it is a mistake.
    """
    parameters, values = tuple(parameters), tuple(values)
    if len(values) != len(parameters):
        problem = f"expects {len(parameters)} template arguments, got {len(values)}"
        raise ModelError(owner, "template_arguments", values, problem)
    bound: list[TemplateArgument] = []
    for parameter, value in zip(parameters, values, strict=True):
        field = f"template_arguments[{parameter.name}]"
        if isinstance(parameter, TypeParameter):
            if isinstance(value, TypeArg):
                bound.append(value)
            elif isinstance(value, (str, QualifiedName, FundamentalType)):
                bound.append(TypeArg(value))
            else:
                raise ModelError(owner, field, value, "expects a type")
        elif parameter.kind is ValueKind.INT:
            if isinstance(value, IntArg):
                bound.append(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                bound.append(IntArg(value))
            else:
                raise ModelError(owner, field, value, "expects an int")
        elif isinstance(value, BoolArg):
            bound.append(value)
        elif isinstance(value, bool):
            bound.append(BoolArg(value))
        else:
            raise ModelError(owner, field, value, "expects a bool")
    return tuple(bound)


# Types, parameters, signatures, statements ------------------------------------------------------


class Declarator(enum.Enum):
    """How a parameter or alias refers to its type."""

    VALUE = ""
    POINTER = "*"
    REFERENCE = "&"


@dataclass(frozen=True, slots=True, init=False)
class Type:
    """A type as written in a declaration: `const T`, `Flash_fwd_params &`, `CUstream_st *`."""

    name: TypeName
    const: bool
    declarator: Declarator

    def __init__(self, name: TypeName | str, const: bool = False, declarator: Declarator = Declarator.VALUE) -> None:
        if not isinstance(declarator, Declarator):
            raise ModelError("Type", "declarator", declarator, "must be a Declarator")
        name = as_type_name(self, "name", name)
        store_fields(self, name=name, const=as_flag(self, "const", const), declarator=declarator)


def as_type(node: object, field: str, value: object) -> Type:
    """`value` as a `Type`: one, or a type name (then a plain value type)."""
    if isinstance(value, Type):
        return value
    if isinstance(value, (str, QualifiedName, FundamentalType)):
        return Type(as_type_name(node, field, value))
    raise ModelError(type(node).__name__, field, value, "must be a Type or a type name")


@dataclass(frozen=True, slots=True, init=False)
class Parameter:
    """One function parameter, `Flash_fwd_params &params`."""

    type: Type
    name: Identifier

    def __init__(self, type: Type | TypeName | str, name: Identifier | str) -> None:
        store_fields(self, type=as_type(self, "type", type), name=as_atom(self, "name", name, Identifier))


def is_parameter(value: object) -> TypeGuard[Parameter]:
    return isinstance(value, Parameter)


@dataclass(frozen=True, slots=True, init=False)
class FunctionSignature:
    """The declarator of a template specialization or instantiation: `void f<A, 3>(T &p, U q)`."""

    return_type: Type
    name: QualifiedName
    template_arguments: tuple[TemplateArgument, ...]
    parameters: tuple[Parameter, ...]

    def __init__(
        self,
        return_type: Type | TypeName | str,
        name: QualifiedName | Identifier | str,
        template_arguments: Iterable[TemplateArgument],
        parameters: Iterable[Parameter],
    ) -> None:
        arguments = as_tuple(self, "template_arguments", template_arguments, is_template_argument, "template argument")
        checked = as_tuple(self, "parameters", parameters, is_parameter, "Parameter")
        names = [parameter.name for parameter in checked]
        for parameter_name in names:
            if names.count(parameter_name) > 1:
                problem = "parameter names must be unique"
                raise ModelError("FunctionSignature", "parameters", parameter_name.text, problem)
        store_fields(
            self,
            return_type=as_type(self, "return_type", return_type),
            name=as_qualified_name(self, "name", name),
            template_arguments=arguments,
            parameters=checked,
        )


def _is_identifier_or_text(value: object) -> TypeGuard[Identifier | str]:
    return isinstance(value, (Identifier, str))


@dataclass(frozen=True, slots=True, init=False)
class CallStatement:
    """`f<A>(params, stream);` — a call that forwards the enclosing function's parameters."""

    function: QualifiedName
    template_arguments: tuple[TemplateArgument, ...]
    arguments: tuple[Identifier, ...]

    def __init__(
        self,
        function: QualifiedName | Identifier | str,
        template_arguments: Iterable[TemplateArgument] = (),
        arguments: Iterable[Identifier | str] = (),
    ) -> None:
        names = as_tuple(self, "arguments", arguments, _is_identifier_or_text, "parameter name")
        store_fields(
            self,
            function=as_qualified_name(self, "function", function),
            template_arguments=as_tuple(
                self, "template_arguments", template_arguments, is_template_argument, "template argument"
            ),
            arguments=tuple(as_atom(self, "arguments", name, Identifier) for name in names),
        )


def is_call(value: object) -> TypeGuard[CallStatement]:
    return isinstance(value, CallStatement)
