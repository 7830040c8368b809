"""The parts declarations are made of: template parameters and arguments (of enumeration type too), types,
function parameters, signatures and call statements.

Like the declarations in `flashast.nodes` (which re-exports every name here), each part is a frozen,
slotted, value-compared dataclass that checks its values once, on construction, and holds atoms, never
C++ text; see that module for the one construction pattern they all follow.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from flashast.enumerations import EnumDeclaration, EnumeratorArg, check_int
from flashast.errors import ModelError
from flashast.fields import as_atom, as_flag, as_qualified_name, as_tuple, as_type_name, store_fields
from flashast.names import FundamentalType, Identifier, InlineComment, QualifiedName, TypeName

# Template parameters and arguments -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class TypeParameter:
    """`typename T` in a primary template's parameter list."""

    name: Identifier

    def __init__(self, name: Identifier | str) -> None:
        store_fields(self, name=as_atom(self, "name", name, Identifier))


class ValueKind(enum.Enum):
    """The built-in types a non-type template parameter of these kernels can have (the other kind is
    an enumeration, an `EnumDeclaration`)."""

    INT = "int"
    BOOL = "bool"


@dataclass(frozen=True, slots=True, init=False)
class ValueParameter:
    """A non-type template parameter, `int Headdim`, `bool Is_causal` or `ggml_type type_K`, with an
    optional default argument (`ggml_prec prec_src1 = GGML_PREC_Q8`), which a use may then leave out."""

    kind: ValueKind | EnumDeclaration
    name: Identifier
    default: TemplateArgument | None

    def __init__(
        self,
        kind: ValueKind | EnumDeclaration | str,
        name: Identifier | str,
        default: TemplateArgumentValue | None = None,
    ) -> None:
        if not isinstance(kind, (ValueKind, EnumDeclaration)):
            try:
                kind = ValueKind(kind)
            except ValueError:
                problem = "must be 'int', 'bool' or an EnumDeclaration"
                raise ModelError("ValueParameter", "kind", kind, problem) from None
        store_fields(self, kind=kind, name=as_atom(self, "name", name, Identifier), default=None)
        if default is not None:
            try:
                bound = bind_template_argument("ValueParameter", self, default)
            except ModelError as error:
                raise ModelError("ValueParameter", "default", default, error.problem) from None
            store_fields(self, default=bound)

    @property
    def spelled_kind(self) -> str:
        """`int`, `bool`, or the enumeration's name."""
        return self.kind.name.text if isinstance(self.kind, EnumDeclaration) else self.kind.value


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


@dataclass(frozen=True, slots=True)
class IntArg:
    """An integer template argument; a `bool` is refused because C++ would silently convert it."""

    value: int

    def __post_init__(self) -> None:
        check_int("IntArg", "value", self.value)


@dataclass(frozen=True, slots=True)
class BoolArg:
    """A boolean template argument, printed `true` or `false`."""

    value: bool

    def __post_init__(self) -> None:
        as_flag(self, "value", self.value)


TemplateArgument = TypeArg | IntArg | BoolArg | EnumeratorArg
# What a kind may pass where a template argument goes: the argument itself, or the plain value it
# stands for (a type name for a type parameter, an int or a bool for a value parameter, an
# enumerator's name for a parameter of enumeration type).
TemplateArgumentValue = TemplateArgument | TypeName | str | int


def is_template_argument(value: object) -> TypeGuard[TemplateArgument]:
    return isinstance(value, (TypeArg, IntArg, BoolArg, EnumeratorArg))


def bind_template_arguments(
    owner: str, parameters: Iterable[TemplateParameter], values: Iterable[TemplateArgumentValue]
) -> tuple[TemplateArgument, ...]:
    """Check `values` against a template's parameters and return them as typed arguments.

    This is where a wrong arity, a `true` passed for an `int` parameter or an enumerator of another
    enumeration is refused: clang would accept the bool (it converts to int), so only the model can
    tell it is a mistake. Trailing parameters with a default may be left out; the arguments returned
    are the ones given, as the C++ will spell them.
    """
    parameters, values = tuple(parameters), tuple(values)
    check_arity(owner, parameters, values)
    pairs = zip(parameters, values, strict=False)  # check_arity allows trailing defaults to be left out
    return tuple(bind_template_argument(owner, parameter, value) for parameter, value in pairs)


def check_arity(owner: str, parameters: tuple[TemplateParameter, ...], values: tuple[object, ...]) -> None:
    """Refuse more arguments than `parameters`, or fewer than those without a default."""
    required = len(parameters)
    while required and isinstance(last := parameters[required - 1], ValueParameter) and last.default is not None:
        required -= 1
    if not required <= len(values) <= len(parameters):
        expected = f"{required} to {len(parameters)}" if required < len(parameters) else str(len(parameters))
        problem = f"expects {expected} template arguments, got {len(values)}"
        raise ModelError(owner, "template_arguments", values, problem)


def bind_template_argument(owner: str, parameter: TemplateParameter, value: TemplateArgumentValue) -> TemplateArgument:
    """One value checked against one template parameter (see `bind_template_arguments`)."""
    field = f"template_arguments[{parameter.name}]"
    if isinstance(parameter, TypeParameter):
        if isinstance(value, TypeArg):
            return value
        if isinstance(value, (str, QualifiedName, FundamentalType)):
            return TypeArg(value)
        raise ModelError(owner, field, value, "expects a type")
    kind = parameter.kind
    if isinstance(kind, EnumDeclaration):
        if isinstance(value, EnumeratorArg) and value.enumeration == kind:
            return value
        if isinstance(value, str):
            try:
                return EnumeratorArg(kind, value)
            except ModelError as error:
                raise ModelError(owner, field, value, error.problem) from None
        raise ModelError(owner, field, value, f"expects an enumerator of {kind.name}")
    if kind is ValueKind.INT:
        if isinstance(value, IntArg):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return IntArg(value)
        raise ModelError(owner, field, value, "expects an int")
    if isinstance(value, BoolArg):
        return value
    if isinstance(value, bool):
        return BoolArg(value)
    raise ModelError(owner, field, value, "expects a bool")


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


def _is_comment_or_none(value: object) -> TypeGuard[InlineComment | None]:
    return value is None or isinstance(value, InlineComment)


@dataclass(frozen=True, slots=True, init=False)
class FunctionSignature:
    """The declarator of a template specialization or instantiation: `void f<A, 3>(T &p, U q)`.

    `argument_comments`, when given, has one entry per template argument: an `InlineComment` printed
    right before that argument (`/*Headdim=*/128`), or None. Comments never change what the
    signature declares, so the duplicate-definition checks compare arguments only.
    """

    return_type: Type
    name: QualifiedName
    template_arguments: tuple[TemplateArgument, ...]
    parameters: tuple[Parameter, ...]
    argument_comments: tuple[InlineComment | None, ...]

    def __init__(
        self,
        return_type: Type | TypeName | str,
        name: QualifiedName | Identifier | str,
        template_arguments: Iterable[TemplateArgument],
        parameters: Iterable[Parameter],
        argument_comments: Iterable[InlineComment | None] = (),
    ) -> None:
        arguments = as_tuple(self, "template_arguments", template_arguments, is_template_argument, "template argument")
        checked = as_tuple(self, "parameters", parameters, is_parameter, "Parameter")
        names = [parameter.name for parameter in checked]
        for parameter_name in names:
            if names.count(parameter_name) > 1:
                problem = "parameter names must be unique"
                raise ModelError("FunctionSignature", "parameters", parameter_name.text, problem)
        comments = as_tuple(self, "argument_comments", argument_comments, _is_comment_or_none, "InlineComment or None")
        if comments and len(comments) != len(arguments):
            problem = f"needs one entry (a comment or None) per template argument, {len(arguments)}"
            raise ModelError("FunctionSignature", "argument_comments", comments, problem)
        store_fields(
            self,
            return_type=as_type(self, "return_type", return_type),
            name=as_qualified_name(self, "name", name),
            template_arguments=arguments,
            parameters=checked,
            argument_comments=comments,
        )


def substitute_parameters(
    owner: str, parameters: tuple[Parameter, ...], bindings: dict[Identifier, TypeName | None]
) -> tuple[Parameter, ...]:
    """`parameters` with each type that names a template type parameter replaced by its argument:
    `const T *x` of `f<float>` is `const float *x` (an explicit instantiation spells its declarator
    with the template's arguments, where `T` means nothing). A binding of None is an argument a
    `Type` cannot spell (a template-id), refused where a parameter's type names it."""
    substituted = []
    for parameter in parameters:
        name = parameter.type.name
        if isinstance(name, QualifiedName) and len(name.parts) == 1 and not name.absolute and name.last in bindings:
            bound = bindings[name.last]
            if bound is None:
                problem = f"the type of parameter {parameter.name} names {name}, bound to a template-id"
                raise ModelError(owner, "template_arguments", str(name), problem)
            substituted.append(Parameter(Type(bound, parameter.type.const, parameter.type.declarator), parameter.name))
        else:
            substituted.append(parameter)
    return tuple(substituted)


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
