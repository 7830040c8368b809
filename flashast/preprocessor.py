"""Preprocessor conditionals with expressions: `#ifdef __CUDA_ARCH__`, `#if __CUDA_ARCH__ >= 800`.

`IfSection` is the file-level form (its body holds declarations); `flashast.statements.ConditionalStatements`
is the same directive inside a function body. Both take a condition checked here: `Defined(MACRO)`
(printed `#ifdef MACRO`, or `#ifndef MACRO` when `negated`), or an expression the preprocessor can
evaluate — integer and boolean literals, unqualified names (macros), unary and binary operators. A
string, a call or a qualified name in an `#if` is refused when the node is made, since the
preprocessor would reject it (or silently read an unknown name as 0). `#endif` may carry a trailing
comment (`#endif // FLASHATTENTION_DISABLE_SM8x`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flashast.errors import ModelError
from flashast.expressions import (
    BinaryExpression,
    BooleanLiteral,
    Expression,
    IntegerLiteral,
    Name,
    UnaryExpression,
    subexpressions,
)
from flashast.fields import as_atom, as_flag, as_trailing_comment, store_fields
from flashast.names import Identifier, MacroName, TrailingComment

if TYPE_CHECKING:
    from flashast.nodes import Declaration


@dataclass(frozen=True, slots=True, init=False)
class Defined:
    """The condition `#ifdef MACRO`, or `#ifndef MACRO` when `negated`."""

    macro: MacroName
    negated: bool

    def __init__(self, macro: MacroName | str, negated: bool = False) -> None:
        store_fields(self, macro=as_atom(self, "macro", macro, MacroName), negated=as_flag(self, "negated", negated))


Condition = Defined | Expression


def check_condition(owner: str, condition: object) -> Condition:
    """`condition` if it is a `Defined` or an expression the preprocessor evaluates; `ModelError` otherwise."""
    if isinstance(condition, Defined):
        return condition
    if not isinstance(condition, Expression):
        raise ModelError(owner, "condition", condition, "must be a Defined or an Expression")
    for part in subexpressions(condition):
        if isinstance(part, Name) and (part.qualified or not isinstance(part.parts[0], Identifier)):
            raise ModelError(owner, "condition", condition, "an #if names only macros (unqualified identifiers)")
        if not isinstance(part, (IntegerLiteral, BooleanLiteral, Name, UnaryExpression, BinaryExpression)):
            problem = f"the preprocessor cannot evaluate a {type(part).__name__}"
            raise ModelError(owner, "condition", condition, problem)
    return condition


def as_endif_comment(owner: object, value: object) -> TrailingComment | None:
    """An `#endif`'s trailing comment: None, a `TrailingComment`, or its text."""
    try:
        return as_trailing_comment(owner, value)
    except ModelError as error:
        raise ModelError(type(owner).__name__, "endif_comment", error.value, error.problem) from None


@dataclass(frozen=True, slots=True, init=False)
class IfSection:
    """`#if condition` (or `#ifdef`/`#ifndef`) … `#endif` around declarations at file or namespace level.

    Contract verification defines nothing for it: an `#if` whose condition is false there leaves its
    declarations unchecked (use `IfDefined` for code a build switches on and verification must see).
    """

    condition: Condition
    body: tuple[Declaration, ...]
    endif_comment: TrailingComment | None

    def __init__(
        self, condition: Condition, body: Iterable[Declaration] = (), endif_comment: TrailingComment | str | None = None
    ) -> None:
        # Imported here: the declarations union includes this node, so nodes.py imports this module.
        from flashast.nodes import TranslationUnit

        try:
            declarations = TranslationUnit(body).declarations
        except ModelError as error:
            raise ModelError("IfSection", "body", error.value, error.problem) from None
        store_fields(
            self, condition=check_condition("IfSection", condition), body=declarations,
            endif_comment=as_endif_comment(self, endif_comment),
        )


# The macros `CudaStandIns` defines. They stand in for what CUDA's headers define differently (a
# conformance check against the real headers leaves them out: they are not the real header's).
CUDA_STAND_IN_MACROS = frozenset(
    {"__global__", "__host__", "__device__", "__forceinline__", "__launch_bounds__", "__CUDA_ARCH__"}
)


@dataclass(frozen=True, slots=True, init=False)
class CudaStandIns:
    """What CUDA's headers give a kernel definition, for a contract's plain C++ parse.

    Prints object-like macros for `__global__`, `__host__`, `__device__` and `__forceinline__`, a
    function-like `__launch_bounds__(…)` that keeps its arguments as constant expressions (so a
    misspelt `kNumThreads` is still an error at the generated line), and a declaration of `printf`.
    A contract parse is one parse: `checked_architecture` (`800` for sm_80) defines `__CUDA_ARCH__`
    so that the code under `#if __CUDA_ARCH__ >= 800` is checked too; None leaves it undefined, as
    a host-side compilation does.
    """

    checked_architecture: int | None

    def __init__(self, checked_architecture: int | None = None) -> None:
        if checked_architecture is not None and (
            isinstance(checked_architecture, bool) or not isinstance(checked_architecture, int)
            or not 100 <= checked_architecture <= 9990
        ):
            problem = "must be None or an int such as 800 (what __CUDA_ARCH__ is for sm_80)"
            raise ModelError("CudaStandIns", "checked_architecture", checked_architecture, problem)
        store_fields(self, checked_architecture=checked_architecture)
