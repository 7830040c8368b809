"""Statements: the few a kernel wrapper or a dispatch function template holds.

An expression statement (a call, through a template-id or not), `return`, `if` with a typed
condition, a block, a blank line, and `#if`/`#ifdef` … `#endif` around statements
(`ConditionalStatements`). That is what PyTorch's memory-efficient attention generator, xformers and
CK's dispatch wrappers write; loops, declarations of locals and `else` wait for a generator that
needs them. Each node is frozen, slotted and checked on construction (`ModelError` names the class,
the field and the value).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from flashast.blank_line import BlankLine
from flashast.errors import ModelError
from flashast.expressions import CallExpression, Expression, as_expression
from flashast.fields import as_flag, as_tuple, store_fields
from flashast.names import TrailingComment
from flashast.preprocessor import Condition, as_endif_comment, check_condition
from flashast.style import check_int


@dataclass(frozen=True, slots=True)
class StatementLayout:
    """Where an expression statement's line breaks go (a layout changes spaces and breaks, never a token).

    - `arguments_one_per_line`: the call's arguments start on a new line after `(`, one per line,
      `continuation_indent_width` columns in (clang-format: `AlignAfterOpenBracket: AlwaysBreak` with
      `BinPackArguments: false`); PyTorch's memory-efficient kernels print their `printf` so.
    - `indent_offset`: columns added to the body's indent for this statement alone; the same
      `printf` sits two columns deeper than its sibling statements.
    """

    arguments_one_per_line: bool = False
    continuation_indent_width: int = 4
    indent_offset: int = 0

    def __post_init__(self) -> None:
        as_flag(self, "arguments_one_per_line", self.arguments_one_per_line)
        for field in ("continuation_indent_width", "indent_offset"):
            check_int("StatementLayout", field, getattr(self, field), 0, 32)


DEFAULT_STATEMENT_LAYOUT = StatementLayout()


@dataclass(frozen=True, slots=True, init=False)
class ExpressionStatement:
    """`expression;` — in practice a call: `Kernel<…>::attention_kernel(p);`, `cb(Kernel<…>(), f);`.

    `arguments_one_per_line` in the layout needs a call to break (`ModelError` otherwise).
    """

    expression: Expression
    layout: StatementLayout

    def __init__(self, expression: Expression, layout: StatementLayout = DEFAULT_STATEMENT_LAYOUT) -> None:
        checked = as_expression(self, "expression", expression)
        if not isinstance(layout, StatementLayout):
            raise ModelError("ExpressionStatement", "layout", layout, "must be a StatementLayout")
        if layout.arguments_one_per_line and not (isinstance(checked, CallExpression) and checked.arguments):
            problem = "arguments one per line needs a call with arguments"
            raise ModelError("ExpressionStatement", "layout", layout, problem)
        store_fields(self, expression=checked, layout=layout)


@dataclass(frozen=True, slots=True, init=False)
class ReturnStatement:
    """`return;`, or `return value;`."""

    value: Expression | None

    def __init__(self, value: Expression | int | bool | str | None = None) -> None:
        store_fields(self, value=None if value is None else as_expression(self, "value", value))


@dataclass(frozen=True, slots=True, init=False)
class Block:
    """`{ statements }`: a compound statement, its statements one indent deeper."""

    statements: tuple[Statement, ...]

    def __init__(self, statements: Iterable[Statement] = ()) -> None:
        store_fields(self, statements=as_statements(self, "statements", statements))


@dataclass(frozen=True, slots=True, init=False)
class IfStatement:
    """`if (condition) body`, optionally `else else_body`. A `Block` body prints `if (…) {` … `}`; a
    single statement stays on the `if` line (`if (cc == 86 || cc == 89) cb(…);`), as PyTorch's dispatch
    functions write it. `else_body` (a `Block`, or an `IfStatement` for `} else if (…) {`) needs a
    `Block` body, so the `else` follows its `}`. A blank line or a preprocessor section cannot be the
    body of an `if`."""

    condition: Expression
    body: Block | ExpressionStatement | ReturnStatement | IfStatement
    else_body: Block | IfStatement | None

    def __init__(
        self,
        condition: Expression | str,
        body: Block | ExpressionStatement | ReturnStatement | IfStatement,
        else_body: Block | IfStatement | None = None,
    ) -> None:
        if not isinstance(body, (Block, ExpressionStatement, ReturnStatement, IfStatement)):
            problem = "must be a Block, an ExpressionStatement, a ReturnStatement or an IfStatement"
            raise ModelError("IfStatement", "body", body, problem)
        if else_body is not None and not isinstance(else_body, (Block, IfStatement)):
            raise ModelError("IfStatement", "else_body", else_body, "must be a Block, an IfStatement or None")
        if else_body is not None and not isinstance(body, Block):
            raise ModelError("IfStatement", "else_body", else_body, "an else needs a Block body before it")
        store_fields(self, condition=as_expression(self, "condition", condition), body=body, else_body=else_body)


@dataclass(frozen=True, slots=True, init=False)
class ConditionalStatements:
    """`#if condition` (or `#ifdef`/`#ifndef`, see `flashast.preprocessor.Defined`) … `#endif` around
    statements inside a body; the directives start in column 0, the statements keep the body's indent."""

    condition: Condition
    body: tuple[Statement, ...]
    endif_comment: TrailingComment | None

    def __init__(
        self, condition: Condition, body: Iterable[Statement] = (), endif_comment: TrailingComment | str | None = None
    ) -> None:
        store_fields(
            self, condition=check_condition("ConditionalStatements", condition),
            body=as_statements(self, "body", body), endif_comment=as_endif_comment(self, endif_comment),
        )


Statement = ExpressionStatement | ReturnStatement | IfStatement | Block | BlankLine | ConditionalStatements


def is_statement(value: object) -> TypeGuard[Statement]:
    return isinstance(value, Statement)


def as_statements(owner: object, field: str, statements: object) -> tuple[Statement, ...]:
    """A body's statements as a tuple; anything else (a declaration, an expression) is refused."""
    return as_tuple(owner, field, statements, is_statement, "statement")
