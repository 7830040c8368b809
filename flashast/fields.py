"""How node constructors turn their arguments into the values their fields hold.

Each function takes the node being built (for its class name), the field's name and the argument, and
returns the atom, flag or tuple the field holds, or raises `ModelError` naming the class, the field
and the value. Keeping them in one place is what makes every node report mistakes the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeGuard, TypeVar

from flashast.errors import ModelError
from flashast.names import (
    FundamentalType,
    Identifier,
    IncludePath,
    MacroName,
    QualifiedName,
    TrailingComment,
    TypeName,
    type_name,
)
from flashast.style import Layout

Atom = TypeVar("Atom", Identifier, MacroName, IncludePath)
Item = TypeVar("Item")


def store_fields(node: object, **values: object) -> None:
    """Set the converted fields of a frozen node (only ever called from the node's own `__init__`)."""
    for name, value in values.items():
        object.__setattr__(node, name, value)


def as_atom(node: object, field: str, value: object, atom: type[Atom]) -> Atom:
    """`value` as an `Identifier`, `MacroName` or `IncludePath`: the atom itself, or a str to check."""
    if isinstance(value, atom):
        return value
    if isinstance(value, str):
        try:
            return atom(value)
        except ModelError as error:
            raise ModelError(type(node).__name__, field, value, error.problem) from None
    raise ModelError(type(node).__name__, field, value, f"must be a str or a {atom.__name__}")


def as_qualified_name(node: object, field: str, value: object) -> QualifiedName:
    """`value` as a `QualifiedName`: one, an `Identifier`, or its C++ spelling (`cutlass::half_t`)."""
    if isinstance(value, QualifiedName):
        return value
    if isinstance(value, Identifier):
        return QualifiedName((value,))
    if isinstance(value, str):
        try:
            return QualifiedName.parse(value)
        except ModelError as error:
            raise ModelError(type(node).__name__, field, value, error.problem) from None
    raise ModelError(type(node).__name__, field, value, "must be a QualifiedName, an Identifier or a str")


def as_type_name(node: object, field: str, value: object) -> TypeName:
    """`value` as a type name: an atom, or its spelling (keyword spellings become `FundamentalType`)."""
    if isinstance(value, (QualifiedName, FundamentalType)):
        return value
    if isinstance(value, str):
        try:
            return type_name(value)
        except ModelError as error:
            raise ModelError(type(node).__name__, field, value, error.problem) from None
    raise ModelError(type(node).__name__, field, value, "must be a QualifiedName, FundamentalType or str")


def as_flag(node: object, field: str, value: object) -> bool:
    """`value` itself, which must be a real `bool` (an int would print as a number)."""
    if not isinstance(value, bool):
        raise ModelError(type(node).__name__, field, value, "must be a bool")
    return value


def as_tuple(
    node: object, field: str, value: object, accepts: Callable[[object], TypeGuard[Item]], what: str
) -> tuple[Item, ...]:
    """`value` as a tuple, each item one that `accepts`; a str is refused (it is not a sequence of nodes)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ModelError(type(node).__name__, field, value, f"must be a sequence of {what}")
    checked: list[Item] = []
    for item in value:
        if not accepts(item):
            raise ModelError(type(node).__name__, field, item, f"is not a {what}")
        checked.append(item)
    return tuple(checked)


def as_text(node: object, field: str, value: object) -> str:
    """A comment's or verbatim block's text: a str that a UTF-8 file can hold."""
    if not isinstance(value, str):
        raise ModelError(type(node).__name__, field, value, "must be a str")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        problem = "holds a lone surrogate, which no UTF-8 file can hold"
        raise ModelError(type(node).__name__, field, value, problem) from None
    return value


def as_trailing_comment(node: object, value: object) -> TrailingComment | None:
    """A node's `comment`: None, a `TrailingComment`, or a str (its text, one space after the code)."""
    if value is None or isinstance(value, TrailingComment):
        return value
    if isinstance(value, str):
        try:
            return TrailingComment(value)
        except ModelError as error:
            raise ModelError(type(node).__name__, "comment", value, error.problem) from None
    raise ModelError(type(node).__name__, "comment", value, "must be a TrailingComment, a str or None")


def as_layout(node: object, value: object) -> Layout:
    """A node's `layout`, which must be a `Layout`."""
    if not isinstance(value, Layout):
        raise ModelError(type(node).__name__, "layout", value, "must be a Layout")
    return value
