"""The object model: frozen, slotted, value-compared nodes for the declarations our files contain.

Nodes hold validated atoms (`flashast.names`) and other nodes, never C++ text; every value is checked
once, on construction, and a value that is not valid C++ raises `ModelError` naming the class, field
and value. Edits are `dataclasses.replace`, which re-runs the checks. Text is produced only by
`printer.py`. This module holds the declarations and the closed `Declaration` union; the parts they
are made of (template arguments, enumerations, types, signatures, calls) live in
`flashast.signatures`, the template declarations (primary templates, explicit specializations and
instantiations) in `flashast.templates`, and function-like macros and their invocations in
`flashast.macros`; all are re-exported here, so `flashast.nodes` is the one place to import nodes from.

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

from flashast.blank_line import BlankLine
from flashast.classes import ClassDefinition, ClassTemplate, VariableTemplate
from flashast.definitions import FunctionDeclaration, FunctionDefinition, UsingDirective
from flashast.enumerations import EnumDeclaration, Enumerator, EnumeratorArg
from flashast.errors import ModelError
from flashast.fields import (
    as_atom,
    as_flag,
    as_qualified_name,
    as_text,
    as_trailing_comment,
    as_tuple,
    store_fields,
)
from flashast.macros import FunctionMacro, MacroInstantiation, MacroInvocation
from flashast.names import (
    Identifier,
    IncludePath,
    InlineComment,
    MacroName,
    QualifiedName,
    TrailingComment,
    TypeName,
    check_block_comment_text,
    check_line_comment_text,
)
from flashast.preprocessor import CudaStandIns, IfSection
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
)
from flashast.style import Layout
from flashast.templates import ExplicitInstantiation, ExplicitSpecialization, FunctionTemplate, MacroParameter

__all__ = [
    "BlankLine",
    "BlockComment",
    "BoolArg",
    "CallStatement",
    "ClassDeclaration",
    "ClassDefinition",
    "ClassTemplate",
    "CudaStandIns",
    "Declaration",
    "Declarator",
    "EnumDeclaration",
    "Enumerator",
    "EnumeratorArg",
    "ExplicitInstantiation",
    "ExplicitSpecialization",
    "FunctionDeclaration",
    "FunctionDefinition",
    "FunctionMacro",
    "FunctionSignature",
    "FunctionTemplate",
    "IfDefined",
    "IfNotDefined",
    "IfSection",
    "Include",
    "InlineComment",
    "IntArg",
    "Layout",
    "LineComment",
    "MacroDefinition",
    "MacroInstantiation",
    "MacroInvocation",
    "MacroParameter",
    "Namespace",
    "Parameter",
    "PragmaOnce",
    "TemplateArgument",
    "TemplateArgumentValue",
    "TemplateParameter",
    "TrailingComment",
    "TranslationUnit",
    "Type",
    "TypeAlias",
    "TypeArg",
    "TypeParameter",
    "UsingDirective",
    "ValueKind",
    "ValueParameter",
    "VariableTemplate",
    "Verbatim",
    "bind_template_arguments",
]


@dataclass(frozen=True, slots=True)
class LineComment:
    """`// text` on a line of its own; an empty text prints `//`."""

    text: str = ""

    def __post_init__(self) -> None:
        check_line_comment_text("LineComment", "text", self.text)


def _is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str)


@dataclass(frozen=True, slots=True, init=False)
class BlockComment:
    """A `/* … */` comment on lines of its own, such as a licence banner.

    `lines` are the exact text between `/*` and `*/`, one item per line: `BlockComment((" one line ",))`
    prints `/* one line */`; `BlockComment.starred(texts)` makes the common banner whose inner lines
    start with ` * `. No line can close the comment early or open a nested one (see
    `flashast.names.check_block_comment_text`), and the last cannot end with `/`, which the closing
    `*/` would turn into a nested `/*`.
    """

    lines: tuple[str, ...]

    def __init__(self, lines: Iterable[str]) -> None:
        checked = as_tuple(self, "lines", lines, _is_text, "str")
        if not checked:
            raise ModelError("BlockComment", "lines", checked, "needs at least one line")
        for line in checked:
            check_block_comment_text("BlockComment", "lines", line)
        if checked[-1].endswith("/"):
            raise ModelError("BlockComment", "lines", checked[-1], "a final '/' would spell '/*' with the closing '*/'")
        store_fields(self, lines=checked)

    @classmethod
    def starred(cls, texts: Iterable[str]) -> BlockComment:
        """`/*`, then ` * text` for each text (` *` for an empty one), then ` */`."""
        return cls(("", *(f" * {text}" if text else " *" for text in texts), " "))


@dataclass(frozen=True, slots=True, init=False)
class Include:
    """`#include "path"`, or `#include <path>` when `angled`; `comment` trails it on the same line."""

    path: IncludePath
    angled: bool
    comment: TrailingComment | None

    def __init__(
        self, path: IncludePath | str, angled: bool = False, comment: TrailingComment | str | None = None
    ) -> None:
        store_fields(
            self, path=as_atom(self, "path", path, IncludePath), angled=as_flag(self, "angled", angled),
            comment=as_trailing_comment(self, comment),
        )


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


@dataclass(frozen=True, slots=True)
class Verbatim:
    """The escape hatch: lines of C++ the model cannot express. Still verified; presets never use it."""

    text: str

    def __post_init__(self) -> None:
        as_text(self, "text", self.text)


Declaration = (
    BlankLine
    | LineComment
    | BlockComment
    | Include
    | PragmaOnce
    | MacroDefinition
    | Namespace
    | IfNotDefined
    | IfDefined
    | ClassDeclaration
    | TypeAlias
    | EnumDeclaration
    | FunctionTemplate
    | ExplicitSpecialization
    | ExplicitInstantiation
    | FunctionMacro
    | MacroInvocation
    | Verbatim
    # Definitions (flashast.definitions, flashast.classes, flashast.preprocessor).
    | FunctionDefinition
    | FunctionDeclaration
    | UsingDirective
    | ClassDefinition
    | ClassTemplate
    | VariableTemplate
    | IfSection
    | CudaStandIns
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
            if isinstance(node, (Namespace, IfNotDefined, IfDefined, IfSection)):
                stack.extend(reversed(node.body))
