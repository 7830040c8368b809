"""The object model: frozen, slotted, value-compared nodes for the declarations our files contain.

Nodes hold validated atoms (`flashast.names`) and other nodes, never C++ text; every value is checked
once, on construction, and a value that is not valid C++ raises `ModelError` naming the class, field
and value. Edits are `dataclasses.replace`, which re-runs the checks. Text is produced only by
`printer.py`. This module holds the declarations and the closed `Declaration` union; the parts they
are made of (template arguments, types, signatures, calls) live in `flashast.signatures` and are
re-exported here, so `flashast.nodes` is the one place to import nodes from.

One construction pattern, for every node and part: a field is annotated with what it holds
(`name: Identifier`, `body: tuple[Declaration, ...]`). A node whose constructor also accepts plain
Python values (a `str` for an identifier, any iterable for a tuple) writes its own `__init__`, whose
signature says exactly what it accepts (`name: Identifier | str`), and stores the converted value
(`flashast.fields`), so building a tree reads like the C++ it stands for and a type checker sees both
sides truthfully. A node that takes its values as they are keeps the generated `__init__` and checks
them in `__post_init__`. Either way the parameters are named like the fields, which is what
`dataclasses.replace` relies on: it goes through `__init__`, so an edit is converted and checked like a
construction (type checkers type its arguments by the fields, so typed code passes atoms there).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeGuard

from flashast.errors import ModelError
from flashast.fields import as_atom, as_flag, as_qualified_name, as_text, as_tuple, store_fields
from flashast.names import Identifier, IncludePath, MacroName, QualifiedName, TypeName
from flashast.signatures import (
    BoolArg,
    CallStatement,
    Declarator,
    FunctionSignature,
    IntArg,
    Parameter,
    TemplateArgument,
    TemplateArgumentValue,
    TemplateParameter,
    Type,
    TypeArg,
    TypeParameter,
    ValueKind,
    ValueParameter,
    as_type,
    bind_template_arguments,
    is_call,
    is_parameter,
    is_template_parameter,
)

__all__ = [
    "BlankLine",
    "BoolArg",
    "CallStatement",
    "ClassDeclaration",
    "Declaration",
    "Declarator",
    "ExplicitInstantiation",
    "ExplicitSpecialization",
    "FunctionSignature",
    "FunctionTemplate",
    "IfDefined",
    "IfNotDefined",
    "Include",
    "IntArg",
    "LineComment",
    "MacroDefinition",
    "Namespace",
    "Parameter",
    "PragmaOnce",
    "TemplateArgument",
    "TemplateArgumentValue",
    "TemplateParameter",
    "TranslationUnit",
    "Type",
    "TypeAlias",
    "TypeArg",
    "TypeParameter",
    "ValueKind",
    "ValueParameter",
    "Verbatim",
    "bind_template_arguments",
]


@dataclass(frozen=True, slots=True)
class BlankLine:
    """One empty line. Vertical space is structure here, so parity quirks need no strings."""


@dataclass(frozen=True, slots=True)
class LineComment:
    """`// text` on a line of its own; an empty text prints `//`."""

    text: str = ""

    def __post_init__(self) -> None:
        as_text(self, "text", self.text)
        if "\n" in self.text or "\r" in self.text:
            raise ModelError("LineComment", "text", self.text, "a line comment cannot contain a newline")
        if self.text.endswith("\\"):
            raise ModelError("LineComment", "text", self.text, "a trailing backslash would splice the next line")
        if self.text.endswith("??/"):
            # `??/` is the trigraph for a backslash before C++17: it would splice the next line there.
            raise ModelError("LineComment", "text", self.text, "a trailing '??/' (a backslash trigraph) would splice")
        if "\0" in self.text:
            raise ModelError("LineComment", "text", self.text, "a comment cannot hold a NUL character")


@dataclass(frozen=True, slots=True, init=False)
class Include:
    """`#include "path"`, or `#include <path>` when `angled`."""

    path: IncludePath
    angled: bool

    def __init__(self, path: IncludePath | str, angled: bool = False) -> None:
        store_fields(self, path=as_atom(self, "path", path, IncludePath), angled=as_flag(self, "angled", angled))


@dataclass(frozen=True, slots=True)
class PragmaOnce:
    """`#pragma once`, for the virtual contract headers."""


@dataclass(frozen=True, slots=True, init=False)
class MacroDefinition:
    """`#define NAME replacement` (object-like; the replacement is one identifier or empty)."""

    name: MacroName
    replacement: Identifier | None

    def __init__(self, name: MacroName | str, replacement: Identifier | str | None = None) -> None:
        store_fields(
            self,
            name=as_atom(self, "name", name, MacroName),
            replacement=None if replacement is None else as_atom(self, "replacement", replacement, Identifier),
        )


def _is_declaration(value: object) -> TypeGuard[Declaration]:
    return isinstance(value, Declaration)


@dataclass(frozen=True, slots=True, init=False)
class Namespace:
    """`namespace name { … }`; the name is an identifier, a nested name (`a::b`, C++17), or a macro
    that expands to one. A str with `::` is a nested name, any other str an identifier."""

    name: Identifier | QualifiedName | MacroName
    body: tuple[Declaration, ...]

    def __init__(self, name: Identifier | QualifiedName | MacroName | str, body: Iterable[Declaration] = ()) -> None:
        checked: Identifier | QualifiedName | MacroName
        if isinstance(name, (Identifier, QualifiedName, MacroName)):
            checked = name
        elif isinstance(name, str) and "::" in name:
            checked = as_qualified_name(self, "name", name)
        else:
            checked = as_atom(self, "name", name, Identifier)
        if isinstance(checked, QualifiedName) and checked.absolute:
            raise ModelError("Namespace", "name", str(checked), "a namespace name cannot start with '::'")
        store_fields(self, name=checked, body=as_tuple(self, "body", body, _is_declaration, "declaration"))


@dataclass(frozen=True, slots=True, init=False)
class IfNotDefined:
    """`#ifndef MACRO` … `#endif`: code a build can switch off (FA3's `FLASHATTENTION_DISABLE_*`).

    Verification never defines the macro, so the guarded code is always checked.
    """

    macro: MacroName
    body: tuple[Declaration, ...]

    def __init__(self, macro: MacroName | str, body: Iterable[Declaration] = ()) -> None:
        store_fields(
            self,
            macro=as_atom(self, "macro", macro, MacroName),
            body=as_tuple(self, "body", body, _is_declaration, "declaration"),
        )


@dataclass(frozen=True, slots=True, init=False)
class IfDefined:
    """`#ifdef MACRO` … `#endif`: code a build switches on (a fork's `FLASHATTENTION_NFUNC_*`).

    Contract verification defines the macro for the file's parse, so the guarded code is checked.
    """

    macro: MacroName
    body: tuple[Declaration, ...]

    def __init__(self, macro: MacroName | str, body: Iterable[Declaration] = ()) -> None:
        store_fields(
            self,
            macro=as_atom(self, "macro", macro, MacroName),
            body=as_tuple(self, "body", body, _is_declaration, "declaration"),
        )


@dataclass(frozen=True, slots=True, init=False)
class ClassDeclaration:
    """`struct Name;` (an opaque type a contract provides), or `struct Name {};` when `complete`."""

    name: Identifier
    complete: bool

    def __init__(self, name: Identifier | str, complete: bool = False) -> None:
        store_fields(self, name=as_atom(self, "name", name, Identifier), complete=as_flag(self, "complete", complete))


@dataclass(frozen=True, slots=True, init=False)
class TypeAlias:
    """`using name = target;`, e.g. `using cudaStream_t = CUstream_st *;`."""

    name: Identifier
    target: Type

    def __init__(self, name: Identifier | str, target: Type | TypeName | str) -> None:
        store_fields(self, name=as_atom(self, "name", name, Identifier), target=as_type(self, "target", target))


@dataclass(frozen=True, slots=True, init=False)
class ExplicitSpecialization:
    """`template<> signature { calls }` — a full specialization with a body of forwarding calls."""

    signature: FunctionSignature
    body: tuple[CallStatement, ...]

    def __init__(self, signature: FunctionSignature, body: Iterable[CallStatement] = ()) -> None:
        if not isinstance(signature, FunctionSignature):
            raise ModelError("ExplicitSpecialization", "signature", signature, "must be a FunctionSignature")
        calls = as_tuple(self, "body", body, is_call, "CallStatement")
        known = {parameter.name for parameter in signature.parameters}
        for statement in calls:
            for argument in statement.arguments:
                if argument not in known:
                    problem = f"is not a parameter of {signature.name}"
                    raise ModelError("ExplicitSpecialization", "body", argument.text, problem)
        store_fields(self, signature=signature, body=calls)


@dataclass(frozen=True, slots=True)
class ExplicitInstantiation:
    """`template signature;`, or with `extern=True` the explicit instantiation declaration."""

    signature: FunctionSignature
    extern: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.signature, FunctionSignature):
            raise ModelError("ExplicitInstantiation", "signature", self.signature, "must be a FunctionSignature")
        as_flag(self, "extern", self.extern)


@dataclass(frozen=True, slots=True, init=False)
class FunctionTemplate:
    """A primary function template, as a contract declares it; `defined` adds an empty body.

    Kinds build their specializations, instantiations and calls through `specialize`, `instantiate`
    and `call`, so the template arguments are checked against these parameters when the node is
    made and the parameter list cannot drift from the contract.
    """

    template_parameters: tuple[TemplateParameter, ...]
    return_type: Type
    name: Identifier
    parameters: tuple[Parameter, ...]
    defined: bool

    def __init__(
        self,
        template_parameters: Iterable[TemplateParameter],
        return_type: Type | TypeName | str,
        name: Identifier | str,
        parameters: Iterable[Parameter] = (),
        defined: bool = False,
    ) -> None:
        store_fields(
            self,
            template_parameters=as_tuple(
                self, "template_parameters", template_parameters, is_template_parameter, "template parameter"
            ),
            return_type=as_type(self, "return_type", return_type),
            name=as_atom(self, "name", name, Identifier),
            parameters=as_tuple(self, "parameters", parameters, is_parameter, "Parameter"),
            defined=as_flag(self, "defined", defined),
        )

    def _bind(self, template_arguments: Iterable[TemplateArgumentValue]) -> tuple[TemplateArgument, ...]:
        return bind_template_arguments(f"FunctionTemplate({self.name})", self.template_parameters, template_arguments)

    def signature(self, *template_arguments: TemplateArgumentValue) -> FunctionSignature:
        """This template's declarator with the given template arguments, checked against its parameters."""
        arguments = self._bind(template_arguments)
        return FunctionSignature(self.return_type, QualifiedName((self.name,)), arguments, self.parameters)

    def specialize(
        self, *template_arguments: TemplateArgumentValue, body: Iterable[CallStatement] = ()
    ) -> ExplicitSpecialization:
        return ExplicitSpecialization(self.signature(*template_arguments), body)

    def instantiate(self, *template_arguments: TemplateArgumentValue, extern: bool = False) -> ExplicitInstantiation:
        return ExplicitInstantiation(self.signature(*template_arguments), extern)

    def call(
        self, *template_arguments: TemplateArgumentValue, arguments: Iterable[Identifier | str] | None = None
    ) -> CallStatement:
        """A call forwarding `arguments` (by default every parameter of this template, in order)."""
        names = tuple(parameter.name for parameter in self.parameters) if arguments is None else tuple(arguments)
        return CallStatement(QualifiedName((self.name,)), self._bind(template_arguments), names)


@dataclass(frozen=True, slots=True)
class Verbatim:
    """The escape hatch: lines of C++ the model cannot express. Still verified; presets never use it."""

    text: str

    def __post_init__(self) -> None:
        as_text(self, "text", self.text)


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


@dataclass(frozen=True, slots=True, init=False)
class TranslationUnit:
    """One source file: a sequence of top-level declarations."""

    declarations: tuple[Declaration, ...]

    def __init__(self, declarations: Iterable[Declaration] = ()) -> None:
        store_fields(self, declarations=as_tuple(self, "declarations", declarations, _is_declaration, "declaration"))

    def walk(self) -> Iterator[Declaration]:
        """Every declaration, depth first, including those nested in namespaces and guards."""
        stack = list(reversed(self.declarations))
        while stack:
            node = stack.pop()
            yield node
            if isinstance(node, (Namespace, IfNotDefined, IfDefined)):
                stack.extend(reversed(node.body))
