"""Which generated files one libclang parse can verify together, and why a clean shared parse
proves every one of them clean on its own.

A parse costs about half a millisecond per file; flash-attn-3's 450 files (110 of them aggregators
that parse their members again) took a quarter of a second. Yet most generated files are a prelude
of comments and `#include` lines followed by explicit instantiations or specializations, and nothing
in such a file can change what another such file means. So `verify` parses each batch planned here
as one translation unit, and:

- if that parse reports nothing at all (no error, no warning, in any file or header), every file of
  the batch passes;
- if it reports anything, the shared parse is forgotten and each file is parsed on its own, so what
  the user reads (file, line, column, notes) is exactly what a per-file parse says.

Why nothing reported means each file is clean alone. A plain file F alone is `prelude + rest(F)`;
its batch is `prelude + rest(F1) + ... + rest(Fn)`, all with the same prelude text, contract and
`-D` macros. Whatever F alone would be told, the shared parse tells too, unless another file's text
changes what F's text means, or how it is split into tokens and declarations. The argument is made
on the model (a file's text is always its model's rendering), so a file is batched only if neither it
nor its batch holds any of these:

- a declaration that introduces a name (class, alias, function template, macro) or anything
  `Verbatim`: only comments, blank lines, namespaces, `#ifdef`/`#ifndef` guards, explicit
  specializations and explicit instantiations are allowed; nor a contract with `Verbatim` text,
  which is opaque (it can make one instantiation depend on another);
- an explicit specialization or an `extern template` of a function template that some file of the
  batch calls or instantiates (compared by unqualified name), or both for one name: alone, that
  file would get the primary template, or would instantiate what the `extern` spares (clang says
  "explicit instantiation of undefined function template" or "non-void function does not return a
  value" only for instantiations it performs);
- an `#include` after the prelude (F would see a header it does not include), any directive there
  but a conditional (`#define`, `#pragma`, ...), a digraph `%:`, or a block comment;
- text that does not close what it opens (braces, parentheses, angle brackets, `#if`), or a line
  continued with a backslash, which would let a file's text run on into the next file's.

Errors that only the shared parse has (a specialization after an instantiation of the same thing,
the same definition in two files) make it report something, which only sends the batch back to
per-file parses.

Aggregators (files that include other generated files, flash-attn-3's `*_hdimall_*`) are batched
the same way: several aggregators in turn are their members in turn, each member with its own
prelude; an aggregator alone is a run of that sequence. Each is batched only when every line of its
own is a comment or an `#include` of a member, every member is a batchable plain file with no
`#ifdef` macros (an aggregator's own parse defines none) and the aggregator's contract, and all the
members of the batch share one prelude (else a member could use a header only an earlier member of
another aggregator includes). The same rules on specializations and `extern` hold over all members.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from flashast.contract import Contract
from flashast.generated import GeneratedFile
from flashast.nodes import (
    BlankLine,
    CallStatement,
    ExplicitInstantiation,
    ExplicitSpecialization,
    IfDefined,
    IfNotDefined,
    Include,
    LineComment,
    Namespace,
    Verbatim,
)

_PLAIN_NODE_TYPES = (BlankLine, LineComment, Include, Namespace, IfNotDefined, IfDefined, ExplicitSpecialization,
                     ExplicitInstantiation)
_INCLUDE_LINE = re.compile(r"\s*#\s*include\b")
_CONDITIONAL_OPENING = re.compile(r"\s*#\s*if")
_CONDITIONAL_CLOSING = re.compile(r"\s*#\s*endif\b")
_CONDITIONAL_BRANCH = re.compile(r"\s*#\s*(else|elif)\b")
_PAIRS = (("{", "}"), ("(", ")"), ("<", ">"))


@dataclass(frozen=True)
class Batch:
    """Files one parse verifies: the text to parse, the `-D` arguments, and the generated files the
    text includes (an aggregator batch's members, served next to it)."""

    files: tuple[GeneratedFile, ...]
    text: str
    defines: tuple[str, ...] = ()
    members: tuple[str, ...] = ()


def switched_on(generated: GeneratedFile) -> list[str]:
    """`-DMACRO` for each macro the file tests with `#ifdef`: contract verification must see the code
    a build can switch on (and never defines what `#ifndef` tests)."""
    return [f"-D{macro}" for macro in generated.ifdef_macros]


def plan_batches(to_parse: Sequence[GeneratedFile], run: Mapping[str, GeneratedFile]) -> list[Batch]:
    """The batches of two or more files among `to_parse` (`run`: every file of the run by name, for
    aggregators whose members an earlier run verified). Files in no batch are parsed alone."""
    plain: dict[tuple[str, int, tuple[str, ...]], list[GeneratedFile]] = {}
    aggregators: dict[tuple[str, int], list[GeneratedFile]] = {}
    preludes: dict[str, str | None] = {}  # by file name: aggregators ask again about their members

    def prelude_of(generated: GeneratedFile) -> str | None:
        if generated.name not in preludes:
            preludes[generated.name] = _prelude(generated)
        return preludes[generated.name]

    for generated in to_parse:
        if generated.included_files():
            prelude = _members_prelude(generated, run, prelude_of)
            if prelude is not None:
                aggregators.setdefault((prelude, id(generated.contract)), []).append(generated)
        else:
            prelude = prelude_of(generated)
            if prelude is not None:
                key = (prelude, id(generated.contract), tuple(switched_on(generated)))
                plain.setdefault(key, []).append(generated)
    batches = []
    for (prelude, _, defines), files in plain.items():
        if _contract_is_transparent(files[0].contract):
            for part in _compatible_parts(files, lambda generated: [generated]):
                rests = (_ending_with_newline(generated.text[len(prelude):]) for generated in part)
                batches.append(Batch(tuple(part), prelude + "".join(rests), defines))
    for files in aggregators.values():
        if _contract_is_transparent(files[0].contract):
            for part in _compatible_parts(files, lambda generated: [run[name] for name in generated.included_files()]):
                text = "".join(_ending_with_newline(generated.text) for generated in part)
                members = tuple(name for generated in part for name in generated.included_files())
                batches.append(Batch(tuple(part), text, (), members))
    return batches


class _Names:
    """The function-template names a set of files specializes, spares (`extern template`) and uses
    (calls or instantiates), compared unqualified."""

    def __init__(self) -> None:
        self.specialized: set[str] = set()
        self.spared: set[str] = set()
        self.used: set[str] = set()

    def merge(self, other: _Names) -> None:
        self.specialized |= other.specialized
        self.spared |= other.spared
        self.used |= other.used

    def add(self, files: Iterable[GeneratedFile]) -> None:
        for generated in files:
            for node in generated.unit.walk():
                if isinstance(node, ExplicitSpecialization):
                    self.specialized.add(str(node.signature.name.last))
                    self.used.update(str(statement.function.last) for statement in node.body
                                     if isinstance(statement, CallStatement))
                elif isinstance(node, ExplicitInstantiation):
                    (self.spared if node.extern else self.used).add(str(node.signature.name.last))

    def compatible(self, other: _Names) -> bool:
        """Whether no specialization or `extern` of either changes what either instantiates."""
        specialized = self.specialized | other.specialized
        spared = self.spared | other.spared
        used = self.used | other.used
        return not ((specialized | spared) & used or specialized & spared)


def _compatible_parts(
    files: Sequence[GeneratedFile], parsed_text: Callable[[GeneratedFile], list[GeneratedFile]]
) -> list[list[GeneratedFile]]:
    """`files` split, first fit in order, into parts of two or more whose files cannot change what
    another file of the part instantiates (`parsed_text`: the plain files a file's parse reads)."""
    parts: list[tuple[list[GeneratedFile], _Names]] = []
    for generated in files:
        names = _Names()
        names.add(parsed_text(generated))
        if not names.compatible(_Names()):
            continue  # the file alone already specializes (or spares) what it uses
        for part, part_names in parts:
            if part_names.compatible(names):
                part.append(generated)
                part_names.merge(names)
                break
        else:
            parts.append(([generated], names))
    return [part for part, _ in parts if len(part) > 1]


def _contract_is_transparent(contract: Contract) -> bool:
    """No `Verbatim` in the contract: its text is opaque to the batching argument."""
    return not any(isinstance(node, Verbatim) for unit in contract.header_units().values() for node in unit.walk())


def _prelude(generated: GeneratedFile) -> str | None:
    """The file's prelude (its leading comment, blank and `#include` lines) if the file can be
    batched, else None."""
    if not all(isinstance(node, _PLAIN_NODE_TYPES) for node in generated.unit.walk()):
        return None
    if not _lexically_plain(generated):
        return None
    lines = generated.text.splitlines(keepends=True)
    count = 0
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("//") and not _INCLUDE_LINE.match(line):
            break
        count += 1
    rest = lines[count:]
    if any(_INCLUDE_LINE.match(line) for line in rest) or not _self_contained(rest):
        return None
    return "".join(lines[:count])


def _self_contained(lines: Sequence[str]) -> bool:
    """Whether the lines close everything they open and end where a declaration may follow."""
    conditionals = 0
    code = []
    for line in lines:
        if line.rstrip("\r\n").endswith("\\"):
            return False
        if _CONDITIONAL_OPENING.match(line):
            conditionals += 1
        elif _CONDITIONAL_CLOSING.match(line):
            conditionals -= 1
        elif line.lstrip().startswith("#"):
            if not _CONDITIONAL_BRANCH.match(line):
                return False  # any other directive after the prelude (`#define`, `#pragma`, ...)
        else:
            code.append(line.split("//", 1)[0])
        if conditionals < 0:
            return False
    text = "".join(code)
    balanced = all(text.count(opening) == text.count(closing) for opening, closing in _PAIRS)
    ending = text.rstrip()
    return conditionals == 0 and balanced and (not ending or ending[-1] in ";}")


def _lexically_plain(generated: GeneratedFile) -> bool:
    """Whether the file's text holds nothing the batching argument does not see: no block comment
    (a `/*` in one file's comment text could be closed by a comment in the next) and no digraph `%:`
    (a directive that does not start with `#`). The text is always the model's rendering."""
    text = generated.text
    return "/*" not in text and "*/" not in text and "%:" not in text


def _members_prelude(
    generated: GeneratedFile, run: Mapping[str, GeneratedFile], prelude_of: Callable[[GeneratedFile], str | None]
) -> str | None:
    """The one prelude all members of an aggregator share, if the aggregator can be batched (its
    own lines are comments and member includes, and each member is a batchable plain file with no
    `#ifdef` macros and the aggregator's contract), else None. Aggregators are batched only with
    aggregators whose members have that prelude too: no member sees a header it does not include."""
    if not all(isinstance(node, (BlankLine, LineComment, Include)) for node in generated.unit.walk()):
        return None
    if not _lexically_plain(generated):
        return None
    if any(line.rstrip("\r\n").endswith("\\") for line in generated.text.splitlines()):
        return None
    members = generated.included_files()
    includes = [node for node in generated.unit.walk() if isinstance(node, Include)]
    if not members or len(includes) != len(members):
        return None  # it includes a header too: its members would not be its whole text
    preludes = set()
    for name in members:
        member = run.get(name)
        if member is None or member.included_files():
            return None
        if member.contract is not generated.contract and member.contract != generated.contract:
            return None
        preludes.add(prelude_of(member) if not switched_on(member) else None)
    return preludes.pop() if len(preludes) == 1 else None


def _ending_with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
