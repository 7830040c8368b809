"""The object model: frozen, slotted, value-compared nodes for the declarations our files contain.

Nodes hold validated atoms (`flashast.names`) and other nodes, never C++ text. Constructors accept
plain Python values where the meaning is unambiguous (a `str` for an identifier, a list for a tuple)
and convert them, so building a tree reads like the C++ it stands for; everything is checked once,
here, and a value that is not valid C++ raises `ModelError` naming the class, field and value.
Edits are `dataclasses.replace`, which re-runs the checks. Text is produced only by `printer.py`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flashast.errors import ModelError
from flashast.names import (
    FundamentalType,
    Identifier,
    IncludePath,
    MacroName,
    QualifiedName,
    TypeName,
    type_name,
)


def _assign(node: object, name: str, value: object) -> None:
    """Store a converted field value on a frozen node (only ever called from `__post_init__`)."""
    object.__setattr__(node, name, value)


def _identifier(node: object, name: str) -> None:
    value = getattr(node, name)
    if not isinstance(value, Identifier):
        if not isinstance(value, str):
            raise ModelError(type(node).__name__, name, value, "must be an Identifier or a str")
        try:
            value = Identifier(value)
        except ModelError as error:
            raise ModelError(type(node).__name__, name, value, error.problem) from None
    _assign(node, name, value)


def _qualified(node: object, name: str) -> None:
    value = getattr(node, name)
    if isinstance(value, Identifier):
        value = QualifiedName((value,))
    elif isinstance(value, str):
        try:
            value = QualifiedName.parse(value)
        except ModelError as error:
            raise ModelError(type(node).__name__, name, value, error.problem) from None
    if not isinstance(value, QualifiedName):
        raise ModelError(type(node).__name__, name, value, "must be a QualifiedName or a str")
    _assign(node, name, value)


def _tuple_of(node: object, name: str, allowed: tuple[type, ...], what: str) -> None:
    value = getattr(node, name)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ModelError(type(node).__name__, name, value, f"must be a sequence of {what}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, allowed):
            raise ModelError(type(node).__name__, name, item, f"is not a {what}")
    _assign(node, name, items)


def _flag(node: object, name: str) -> None:
    value = getattr(node, name)
    if not isinstance(value, bool):
        raise ModelError(type(node).__name__, name, value, "must be a bool")


# Template parameters and arguments -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeParameter:
    """`typename T` in a primary template's parameter list."""

    name: Identifier

    def __post_init__(self) -> None:
        _identifier(self, "name")


class ValueKind(enum.Enum):
    """The types a non-type template parameter of these kernels can have."""

    INT = "int"
    BOOL = "bool"


@dataclass(frozen=True, slots=True)
class ValueParameter:
    """A non-type template parameter, `int Headdim` or `bool Is_causal`."""

    kind: ValueKind
    name: Identifier

    def __post_init__(self) -> None:
        if isinstance(self.kind, str):
            try:
                _assign(self, "kind", ValueKind(self.kind))
            except ValueError:
                raise ModelError("ValueParameter", "kind", self.kind, "must be 'int' or 'bool'") from None
        if not isinstance(self.kind, ValueKind):
            raise ModelError("ValueParameter", "kind", self.kind, "must be a ValueKind")
        _identifier(self, "name")


TemplateParameter = TypeParameter | ValueParameter


@dataclass(frozen=True, slots=True)
class TypeArg:
    """A type as a template argument: `cutlass::half_t`, or a template-id such as `Foo<int, 3>`."""

    type: TypeName
    arguments: tuple[TemplateArgument, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.type, str):
            try:
                _assign(self, "type", type_name(self.type))
            except ModelError as error:
                raise ModelError("TypeArg", "type", self.type, error.problem) from None
        if not isinstance(self.type, (QualifiedName, FundamentalType)):
            raise ModelError("TypeArg", "type", self.type, "must be a QualifiedName, FundamentalType or str")
        _tuple_of(self, "arguments", TEMPLATE_ARGUMENT_TYPES, "template argument")
        if self.arguments and isinstance(self.type, FundamentalType):
            raise ModelError("TypeArg", "arguments", self.arguments, f"{self.type} is not a template")


@dataclass(frozen=True, slots=True)
class IntArg:
    """An integer template argument; a `bool` is refused because C++ would silently convert it."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise ModelError("IntArg", "value", self.value, "must be an int (use BoolArg for a bool)")


@dataclass(frozen=True, slots=True)
class BoolArg:
    """A boolean template argument, printed `true` or `false`."""

    value: bool

    def __post_init__(self) -> None:
        if not isinstance(self.value, bool):
            raise ModelError("BoolArg", "value", self.value, "must be a bool")


TemplateArgument = TypeArg | IntArg | BoolArg
TEMPLATE_ARGUMENT_TYPES = (TypeArg, IntArg, BoolArg)


def bind_template_arguments(
    owner: str, parameters: Sequence[TemplateParameter], values: Sequence[object]
) -> tuple[TemplateArgument, ...]:
    """Check `values` against a template's parameters and return them as typed arguments.

    This is where a wrong arity or a `true` passed for an `int` parameter is refused: clang would
    accept the latter (bool converts to int), so only the model can tell it is a mistake.
    """
    if len(values) != len(parameters):
        raise ModelError(
            owner,
            "template_arguments",
            tuple(values),
            f"expects {len(parameters)} template arguments, got {len(values)}",
        )
    bound: list[TemplateArgument] = []
    for parameter, value in zip(parameters, values, strict=True):
        name = parameter.name.text
        if isinstance(parameter, TypeParameter):
            if isinstance(value, TypeArg):
                bound.append(value)
            elif isinstance(value, (str, QualifiedName, FundamentalType)):
                bound.append(TypeArg(value))
            else:
                raise ModelError(owner, f"template_arguments[{name}]", value, "expects a type")
        elif parameter.kind is ValueKind.INT:
            if isinstance(value, IntArg):
                bound.append(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                bound.append(IntArg(value))
            else:
                raise ModelError(owner, f"template_arguments[{name}]", value, "expects an int")
        else:
            if isinstance(value, BoolArg):
                bound.append(value)
            elif isinstance(value, bool):
                bound.append(BoolArg(value))
            else:
                raise ModelError(owner, f"template_arguments[{name}]", value, "expects a bool")
    return tuple(bound)


# Types, parameters, signatures, statements ------------------------------------------------------


class Declarator(enum.Enum):
    """How a parameter or alias refers to its type."""

    VALUE = ""
    POINTER = "*"
    REFERENCE = "&"


@dataclass(frozen=True, slots=True)
class Type:
    """A type as written in a declaration: `const T`, `Flash_fwd_params &`, `CUstream_st *`."""

    name: TypeName
    const: bool = False
    declarator: Declarator = Declarator.VALUE

    def __post_init__(self) -> None:
        if isinstance(self.name, str):
            try:
                _assign(self, "name", type_name(self.name))
            except ModelError as error:
                raise ModelError("Type", "name", self.name, error.problem) from None
        if not isinstance(self.name, (QualifiedName, FundamentalType)):
            raise ModelError("Type", "name", self.name, "must be a QualifiedName, FundamentalType or str")
        _flag(self, "const")
        if not isinstance(self.declarator, Declarator):
            raise ModelError("Type", "declarator", self.declarator, "must be a Declarator")


def _type(node: object, name: str) -> None:
    value = getattr(node, name)
    if isinstance(value, (str, QualifiedName, FundamentalType)):
        value = Type(value)
    if not isinstance(value, Type):
        raise ModelError(type(node).__name__, name, value, "must be a Type or a type name")
    _assign(node, name, value)


@dataclass(frozen=True, slots=True)
class Parameter:
    """One function parameter, `Flash_fwd_params &params`."""

    type: Type
    name: Identifier

    def __post_init__(self) -> None:
        _type(self, "type")
        _identifier(self, "name")


@dataclass(frozen=True, slots=True)
class FunctionSignature:
    """The declarator of a template specialization or instantiation: `void f<A, 3>(T &p, U q)`."""

    return_type: Type
    name: QualifiedName
    template_arguments: tuple[TemplateArgument, ...]
    parameters: tuple[Parameter, ...]

    def __post_init__(self) -> None:
        _type(self, "return_type")
        _qualified(self, "name")
        _tuple_of(self, "template_arguments", TEMPLATE_ARGUMENT_TYPES, "template argument")
        _tuple_of(self, "parameters", (Parameter,), "Parameter")
        names = [parameter.name for parameter in self.parameters]
        for name in names:
            if names.count(name) > 1:
                raise ModelError("FunctionSignature", "parameters", name.text, "parameter names must be unique")


@dataclass(frozen=True, slots=True)
class CallStatement:
    """`f<A>(params, stream);` — a call that forwards the enclosing function's parameters."""

    function: QualifiedName
    template_arguments: tuple[TemplateArgument, ...] = ()
    arguments: tuple[Identifier, ...] = ()

    def __post_init__(self) -> None:
        _qualified(self, "function")
        _tuple_of(self, "template_arguments", TEMPLATE_ARGUMENT_TYPES, "template argument")
        raw = self.arguments
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
            raise ModelError("CallStatement", "arguments", raw, "must be a sequence of parameter names")
        converted = []
        for argument in raw:
            if isinstance(argument, str):
                try:
                    argument = Identifier(argument)
                except ModelError as error:
                    raise ModelError("CallStatement", "arguments", argument, error.problem) from None
            if not isinstance(argument, Identifier):
                raise ModelError("CallStatement", "arguments", argument, "must be an Identifier or a str")
            converted.append(argument)
        _assign(self, "arguments", tuple(converted))


# Declarations ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlankLine:
    """One empty line. Vertical space is structure here, so parity quirks need no strings."""


@dataclass(frozen=True, slots=True)
class LineComment:
    """`// text` on a line of its own; an empty text prints `//`."""

    text: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ModelError("LineComment", "text", self.text, "must be a str")
        if "\n" in self.text or "\r" in self.text:
            raise ModelError("LineComment", "text", self.text, "a line comment cannot contain a newline")
        if self.text.endswith("\\"):
            raise ModelError("LineComment", "text", self.text, "a trailing backslash would splice the next line")
        _require_unicode("LineComment", self.text)


@dataclass(frozen=True, slots=True)
class Include:
    """`#include "path"`, or `#include <path>` when `angled`."""

    path: IncludePath
    angled: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.path, str):
            try:
                _assign(self, "path", IncludePath(self.path))
            except ModelError as error:
                raise ModelError("Include", "path", self.path, error.problem) from None
        if not isinstance(self.path, IncludePath):
            raise ModelError("Include", "path", self.path, "must be an IncludePath or a str")
        _flag(self, "angled")


@dataclass(frozen=True, slots=True)
class PragmaOnce:
    """`#pragma once`, for the virtual contract headers."""


@dataclass(frozen=True, slots=True)
class MacroDefinition:
    """`#define NAME replacement` (object-like; the replacement is one identifier or empty)."""

    name: MacroName
    replacement: Identifier | None = None

    def __post_init__(self) -> None:
        if isinstance(self.name, str):
            try:
                _assign(self, "name", MacroName(self.name))
            except ModelError as error:
                raise ModelError("MacroDefinition", "name", self.name, error.problem) from None
        if not isinstance(self.name, MacroName):
            raise ModelError("MacroDefinition", "name", self.name, "must be a MacroName or a str")
        if self.replacement is not None:
            _identifier(self, "replacement")


@dataclass(frozen=True, slots=True)
class Namespace:
    """`namespace name { … }`; the name is an identifier, a nested name (`a::b`, C++17), or a macro
    that expands to one."""

    name: Identifier | QualifiedName | MacroName
    body: tuple[Declaration, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.name, str) and "::" in self.name:
            _qualified(self, "name")
        elif not isinstance(self.name, (Identifier, QualifiedName, MacroName)):
            _identifier(self, "name")
        if isinstance(self.name, QualifiedName) and self.name.absolute:
            raise ModelError("Namespace", "name", str(self.name), "a namespace name cannot start with '::'")
        _tuple_of(self, "body", DECLARATION_TYPES, "declaration")


def _guard(node: IfNotDefined | IfDefined) -> None:
    owner = type(node).__name__
    if isinstance(node.macro, str):
        try:
            _assign(node, "macro", MacroName(node.macro))
        except ModelError as error:
            raise ModelError(owner, "macro", node.macro, error.problem) from None
    if not isinstance(node.macro, MacroName):
        raise ModelError(owner, "macro", node.macro, "must be a MacroName or a str")
    _tuple_of(node, "body", DECLARATION_TYPES, "declaration")


@dataclass(frozen=True, slots=True)
class IfNotDefined:
    """`#ifndef MACRO` … `#endif`: code a build can switch off (FA3's `FLASHATTENTION_DISABLE_*`).

    Verification never defines the macro, so the guarded code is always checked.
    """

    macro: MacroName
    body: tuple[Declaration, ...] = ()

    def __post_init__(self) -> None:
        _guard(self)


@dataclass(frozen=True, slots=True)
class IfDefined:
    """`#ifdef MACRO` … `#endif`: code a build switches on (a fork's `FLASHATTENTION_NFUNC_*`).

    Contract verification defines the macro for the file's parse, so the guarded code is checked.
    """

    macro: MacroName
    body: tuple[Declaration, ...] = ()

    def __post_init__(self) -> None:
        _guard(self)


@dataclass(frozen=True, slots=True)
class ClassDeclaration:
    """`struct Name;` (an opaque type a contract provides), or `struct Name {};` when `complete`."""

    name: Identifier
    complete: bool = False

    def __post_init__(self) -> None:
        _identifier(self, "name")
        _flag(self, "complete")


@dataclass(frozen=True, slots=True)
class TypeAlias:
    """`using name = target;`, e.g. `using cudaStream_t = CUstream_st *;`."""

    name: Identifier
    target: Type

    def __post_init__(self) -> None:
        _identifier(self, "name")
        _type(self, "target")


@dataclass(frozen=True, slots=True)
class ExplicitSpecialization:
    """`template<> signature { calls }` — a full specialization with a body of forwarding calls."""

    signature: FunctionSignature
    body: tuple[CallStatement, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.signature, FunctionSignature):
            raise ModelError("ExplicitSpecialization", "signature", self.signature, "must be a FunctionSignature")
        _tuple_of(self, "body", (CallStatement,), "CallStatement")
        known = {parameter.name for parameter in self.signature.parameters}
        for statement in self.body:
            for argument in statement.arguments:
                if argument not in known:
                    raise ModelError(
                        "ExplicitSpecialization",
                        "body",
                        argument.text,
                        f"is not a parameter of {self.signature.name}",
                    )


@dataclass(frozen=True, slots=True)
class ExplicitInstantiation:
    """`template signature;`, or with `extern=True` the explicit instantiation declaration."""

    signature: FunctionSignature
    extern: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.signature, FunctionSignature):
            raise ModelError("ExplicitInstantiation", "signature", self.signature, "must be a FunctionSignature")
        _flag(self, "extern")


@dataclass(frozen=True, slots=True)
class FunctionTemplate:
    """A primary function template, as a contract declares it; `defined` adds an empty body.

    Kinds build their specializations, instantiations and calls through `specialize`, `instantiate`
    and `call`, so the template arguments are checked against these parameters when the node is
    made and the parameter list cannot drift from the contract.
    """

    template_parameters: tuple[TemplateParameter, ...]
    return_type: Type
    name: Identifier
    parameters: tuple[Parameter, ...] = ()
    defined: bool = False

    def __post_init__(self) -> None:
        _tuple_of(self, "template_parameters", (TypeParameter, ValueParameter), "template parameter")
        _type(self, "return_type")
        _identifier(self, "name")
        _tuple_of(self, "parameters", (Parameter,), "Parameter")
        _flag(self, "defined")

    def signature(self, *template_arguments: object) -> FunctionSignature:
        owner = f"FunctionTemplate({self.name})"
        arguments = bind_template_arguments(owner, self.template_parameters, template_arguments)
        return FunctionSignature(self.return_type, QualifiedName((self.name,)), arguments, self.parameters)

    def specialize(self, *template_arguments: object, body: Sequence[CallStatement] = ()) -> ExplicitSpecialization:
        return ExplicitSpecialization(self.signature(*template_arguments), tuple(body))

    def instantiate(self, *template_arguments: object, extern: bool = False) -> ExplicitInstantiation:
        return ExplicitInstantiation(self.signature(*template_arguments), extern)

    def call(self, *template_arguments: object, arguments: Sequence[str | Identifier] | None = None) -> CallStatement:
        """A call forwarding `arguments` (by default every parameter of this template, in order)."""
        bound = bind_template_arguments(f"FunctionTemplate({self.name})", self.template_parameters, template_arguments)
        names = tuple(parameter.name for parameter in self.parameters) if arguments is None else tuple(arguments)
        return CallStatement(QualifiedName((self.name,)), bound, names)


@dataclass(frozen=True, slots=True)
class Verbatim:
    """The escape hatch: lines of C++ the model cannot express. Still verified; presets never use it."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ModelError("Verbatim", "text", self.text, "must be a str")
        _require_unicode("Verbatim", self.text)


def _require_unicode(owner: str, text: str) -> None:
    """A file is written as UTF-8: a lone surrogate (from a mis-decoded byte) has no encoding."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError(owner, "text", text, "holds a lone surrogate, which no UTF-8 file can hold") from None


Declaration = (
    BlankLine
    | LineComment
    | Include
    | PragmaOnce
    | MacroDefinition
    | Namespace
    | IfNotDefined
    | IfDefined
    | ClassDeclaration
    | TypeAlias
    | FunctionTemplate
    | ExplicitSpecialization
    | ExplicitInstantiation
    | Verbatim
)
DECLARATION_TYPES: tuple[type, ...] = (
    BlankLine,
    LineComment,
    Include,
    PragmaOnce,
    MacroDefinition,
    Namespace,
    IfNotDefined,
    IfDefined,
    ClassDeclaration,
    TypeAlias,
    FunctionTemplate,
    ExplicitSpecialization,
    ExplicitInstantiation,
    Verbatim,
)


@dataclass(frozen=True, slots=True)
class TranslationUnit:
    """One source file: a sequence of top-level declarations."""

    declarations: tuple[Declaration, ...] = field(default=())

    def __post_init__(self) -> None:
        _tuple_of(self, "declarations", DECLARATION_TYPES, "declaration")

    def walk(self) -> Iterable[Declaration]:
        """Every declaration, depth first, including those nested in namespaces and guards."""
        stack = list(reversed(self.declarations))
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, (Namespace, IfNotDefined, IfDefined)):
                stack.extend(reversed(node.body))
