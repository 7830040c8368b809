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

Real-header parses (host and device side) are batched too, in smaller batches (`batch_limit`): there
the headers and the templates the files instantiate are most of a parse, and files of one prelude
share them (four FA2 backward files: 76 s one by one, 18 s as one batch). A real-header batch is
clean when nothing in it fails and nothing is located in a generated line; warnings inside
third-party headers are the headers' own, as in any real-header parse (reported once, failing only
under `--strict`), and so are the errors nvcc accepts on the device side. The argument below is
unchanged: whatever a file alone would be told (an error anywhere, a warning at one of its lines),
the shared parse is told too.

Why nothing reported means each file is clean alone. A plain file F alone is `prelude + rest(F)`;
its batch is `prelude + rest(F1) + ... + rest(Fn)`, all with the same prelude text, contract and
`-D` macros. Whatever F alone would be told, the shared parse tells too, unless another file's text
changes what F's text means, or how it is split into tokens and declarations. The argument is made
on the model (a file's text is always its model's rendering), so a file is batched only if neither it
nor its batch holds any of these:

- a declaration that introduces a name (class, alias, function template, macro) or anything
  `Verbatim`: only comments (line and block), blank lines, namespaces, `#ifdef`/`#ifndef` guards, explicit
  specializations and explicit instantiations are allowed; nor a contract with `Verbatim` text,
  which is opaque (it can make one instantiation depend on another);
- an explicit specialization or an `extern template` of a function template that some file of the
  batch calls or instantiates (compared by unqualified name), or both for one name: alone, that
  file would get the primary template, or would instantiate what the `extern` spares (clang says
  "explicit instantiation of undefined function template" or "non-void function does not return a
  value" only for instantiations it performs);
- an `#include` after the prelude (F would see a header it does not include), or any directive there
  but a conditional (`#define`, `#pragma`, ...): these are nodes the first rule leaves out.

Nothing is read back from text: the prelude is the model's (`preamble.prelude`), and a batch is a
`TranslationUnit` of one prelude and every file's declarations after it, rendered. What the model
admits cannot run from one file into the next: every node renders whole (braces, guards and
namespaces closed), a comment can neither splice the next line (a trailing backslash) nor open or
close a block comment early (`names.check_line_comment_text`, `check_block_comment_text`).

Errors that only the shared parse has (a specialization after an instantiation of the same thing,
the same definition in two files) make it report something, which only sends the batch back to
per-file parses.

Aggregators (files that include other generated files, flash-attn-3's `*_hdimall_*`) are batched
the same way: several aggregators in turn are their members in turn, each member with its own
prelude; an aggregator alone is a run of that sequence. Each is batched only when every declaration
of its own is a comment, a blank line or an `#include` of a member, every member is a batchable plain file with no
`#ifdef` macros (an aggregator's own parse defines none) and the aggregator's contract, and all the
members of the batch share one prelude (else a member could use a header only an earlier member of
another aggregator includes). The same rules on specializations and `extern` hold over all members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from flashast.contract import Contract
from flashast.generated import GeneratedFile
from flashast.nodes import (
    BlankLine,
    BlockComment,
    CallStatement,
    Declaration,
    ExplicitInstantiation,
    ExplicitSpecialization,
    IfDefined,
    IfNotDefined,
    Include,
    LineComment,
    Namespace,
    TranslationUnit,
    Verbatim,
)
from flashast.printer import render
from flashast.verify.preamble import after_prelude, prelude
from flashast.verify.sources import switched_on

_PLAIN_NODE_TYPES = (BlankLine, LineComment, BlockComment, Include, Namespace, IfNotDefined, IfDefined,
                     ExplicitSpecialization, ExplicitInstantiation)
_AGGREGATOR_NODE_TYPES = (BlankLine, LineComment, BlockComment, Include)

Prelude = tuple[Declaration, ...]


@dataclass(frozen=True)
class Batch:
    """Files one parse verifies: the text to parse (a rendered `TranslationUnit`), the `-D`
    arguments, and the generated files the text includes (an aggregator batch's members, served next
    to it)."""

    files: tuple[GeneratedFile, ...]
    text: str
    defines: tuple[str, ...] = ()
    members: tuple[str, ...] = ()


# The most files one real-header batch holds, host and device side. Measured on FA2 2.8.3 (2 cores,
# libclang 18): four bwd files cost 76 s parsed one by one and 18 s as one batch on the host side;
# two cost 82 s and 54 s on the device side, where a parse also holds more memory per file.
REAL_HEADER_BATCH_FILES = 8
DEVICE_BATCH_FILES = 4


def batch_limit(files: int, jobs: int, device: bool) -> int:
    """The most files a real-header batch of this run holds: few enough that `files` make at least
    `jobs` batches (every thread has one), and no more than the side's cap."""
    cap = DEVICE_BATCH_FILES if device else REAL_HEADER_BATCH_FILES
    return max(2, min(cap, -(-files // max(1, jobs))))


def plan_batches(
    to_parse: Sequence[GeneratedFile], run: Mapping[str, GeneratedFile], most: int | None = None
) -> list[Batch]:
    """The batches of two or more files among `to_parse` (`run`: every file of the run by name, for
    aggregators whose members an earlier run verified). Files in no batch are parsed alone. `most`
    (at least 2) caps a batch's files: a set of compatible files larger than that is cut into
    near-equal batches (real-header parses grow with what a batch instantiates, and several batches
    keep several threads busy)."""
    plain: dict[tuple[Prelude, Contract, tuple[str, ...]], list[GeneratedFile]] = {}
    aggregators: dict[tuple[Prelude, Contract], list[GeneratedFile]] = {}
    preludes: dict[str, Prelude | None] = {}  # by file name: aggregators ask again about their members

    def prelude_of(generated: GeneratedFile) -> Prelude | None:
        if generated.name not in preludes:
            preludes[generated.name] = _batchable_prelude(generated)
        return preludes[generated.name]

    for generated in to_parse:
        if generated.included_files():
            shared = _members_prelude(generated, run, prelude_of)
            if shared is not None:
                aggregators.setdefault((shared, generated.contract), []).append(generated)
        else:
            own = prelude_of(generated)
            if own is not None:
                plain.setdefault((own, generated.contract, tuple(switched_on(generated))), []).append(generated)
    batches = []
    for (shared, contract, defines), files in plain.items():
        if _contract_is_transparent(contract):
            for part in _cut(_compatible_parts(files, lambda generated: [generated]), most):
                bodies = (node for generated in part for node in after_prelude(generated.unit))
                unit = TranslationUnit((*shared, *bodies))
                batches.append(Batch(tuple(part), render(unit, part[0].style), defines))
    for (_, contract), files in aggregators.items():
        if _contract_is_transparent(contract):
            parts = _compatible_parts(files, lambda generated: [run[name] for name in generated.included_files()])
            for part in _cut(parts, most):
                unit = TranslationUnit(node for generated in part for node in generated.unit.declarations)
                members = tuple(name for generated in part for name in generated.included_files())
                batches.append(Batch(tuple(part), render(unit, part[0].style), (), members))
    return batches


def _cut(parts: list[list[GeneratedFile]], most: int | None) -> list[list[GeneratedFile]]:
    """Each part of more than `most` files cut, in order, into the fewest near-equal runs of at most
    `most` (any run of a compatible part is compatible: compatibility is about names, and a subset
    names less); a run of one file is parsed alone."""
    if most is None:
        return parts
    most = max(2, most)
    cut = []
    for part in parts:
        pieces = -(-len(part) // most)
        size, extra = divmod(len(part), pieces)
        start = 0
        for piece in range(pieces):
            end = start + size + (1 if piece < extra else 0)
            cut.append(part[start:end])
            start = end
    return [part for part in cut if len(part) > 1]


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


def _batchable_prelude(generated: GeneratedFile) -> Prelude | None:
    """The file's prelude (its leading comments, blank lines and includes) if the file can be
    batched: only the nodes the batching argument admits, and no `#include` after the prelude."""
    if not all(isinstance(node, _PLAIN_NODE_TYPES) for node in generated.unit.walk()):
        return None
    if any(isinstance(node, Include) for node in TranslationUnit(after_prelude(generated.unit)).walk()):
        return None
    return prelude(generated.unit)


def _members_prelude(
    generated: GeneratedFile, run: Mapping[str, GeneratedFile], prelude_of: Callable[[GeneratedFile], Prelude | None]
) -> Prelude | None:
    """The one prelude all members of an aggregator share, if the aggregator can be batched (its
    own declarations are comments and member includes, and each member is a batchable plain file
    with no `#ifdef` macros and the aggregator's contract), else None. Aggregators are batched only
    with aggregators whose members have that prelude too: no member sees a header it does not include."""
    if not all(isinstance(node, _AGGREGATOR_NODE_TYPES) for node in generated.unit.walk()):
        return None
    members = generated.included_files()
    includes = [node for node in generated.unit.walk() if isinstance(node, Include)]
    if not members or len(includes) != len(members):
        return None  # it includes a header too: its members would not be its whole text
    preludes = set()
    for name in members:
        member = run.get(name)
        if member is None or member.included_files() or member.contract != generated.contract:
            return None
        preludes.add(prelude_of(member) if not switched_on(member) else None)
    return preludes.pop() if len(preludes) == 1 else None
