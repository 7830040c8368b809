"""A generated file's prelude and preamble, read from its model, never from its text.

- The **prelude** is the run of leading comments, blank lines and directives (`#include`,
  `#pragma once`, `#define`) of a file's `TranslationUnit`: what files of a contract-mode batch share
  (`batching`, which admits only comments and includes there), and it renders, in the file's style,
  as exactly the first lines of the file's text.
- The **preamble** is what libclang precompiles for a real-header parse: the prelude and, when the
  file's first declaration sits inside `#ifndef`/`#ifdef` guards (flash-attn-3's
  `FLASHATTENTION_DISABLE_*`), the guards' opening lines and what leads their bodies, since clang's
  preamble runs on through conditional directives. `includes_alone` is that preamble closed over one
  declaration: the unit whose parse builds the preamble a group of files reuses (`parsing`) and shows
  what the headers get wrong by themselves. Files whose includes-alone units render alike share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from flashast.generated import GeneratedFile
from flashast.names import Identifier
from flashast.nodes import (
    BlankLine,
    BlockComment,
    ClassDeclaration,
    Declaration,
    IfDefined,
    IfNotDefined,
    Include,
    LineComment,
    MacroDefinition,
    PragmaOnce,
    TranslationUnit,
)
from flashast.printer import render

PRELUDE_TYPES = (BlankLine, LineComment, BlockComment, Include, PragmaOnce, MacroDefinition)
# The one declaration of an includes-alone parse: libclang's preamble then ends exactly where it
# ends in every file of the group (a text of directives only would make a longer preamble, which the
# files could not reuse).
INCLUDES_ONLY = ClassDeclaration(Identifier("flashast_includes_only_"))
INCLUDES_ONLY_BODY = render(TranslationUnit((INCLUDES_ONLY,)))


def prelude(unit: TranslationUnit) -> tuple[Declaration, ...]:
    """The leading comments, blank lines and directives of `unit`."""
    return unit.declarations[:_prelude_length(unit.declarations)]


def after_prelude(unit: TranslationUnit) -> tuple[Declaration, ...]:
    """Every top-level declaration of `unit` after its prelude."""
    return unit.declarations[_prelude_length(unit.declarations):]


def includes_alone(generated: GeneratedFile) -> TranslationUnit:
    """`generated`'s preamble closed over `INCLUDES_ONLY`. An aggregator's includes of generated files
    are left out: what those files cause is theirs."""
    return TranslationUnit(_leading(generated.unit.declarations, frozenset(generated.included_files())))


def includes_alone_text(generated: GeneratedFile) -> str:
    """`includes_alone` in the file's style: its first lines are the file's own, byte for byte."""
    return render(includes_alone(generated), generated.style)


def _leading(declarations: tuple[Declaration, ...], members: Collection[str]) -> tuple[Declaration, ...]:
    length = _prelude_length(declarations)
    kept = tuple(node for node in declarations[:length]
                 if not (isinstance(node, Include) and not node.angled and node.path.text in members))
    guard = declarations[length] if length < len(declarations) else None
    if isinstance(guard, (IfNotDefined, IfDefined)):
        return (*kept, dataclasses.replace(guard, body=_leading(guard.body, members)))
    return (*kept, INCLUDES_ONLY)


def _prelude_length(declarations: tuple[Declaration, ...]) -> int:
    length = 0
    while length < len(declarations) and isinstance(declarations[length], PRELUDE_TYPES):
        length += 1
    return length
