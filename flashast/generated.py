"""`GeneratedFile`: one output file, as a kind made it; and which of a run's files a build compiles.

A file is its name, where it came from (preset, kind, axis values), its tree and the style it is
printed in. Its text is derived from the tree and the style (once, on first use), never stored beside
them, so the bytes written and the tree verified cannot disagree.

An aggregator `#include`s other generated files, so a build compiles either it or its members, never
both: an explicit instantiation compiled twice is wasted time, an explicit specialization compiled
twice is a "multiple definition" at link. `compiled_files` decides, from the files themselves (what
each includes, what its kind says upstream's build compiles) and a `CompilePolicy`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from flashast.axes import AxisValue, Configuration
from flashast.contract import Contract
from flashast.errors import UsageError
from flashast.nodes import IfDefined, Include, TranslationUnit
from flashast.printer import render
from flashast.style import Style

# Suffixes of the files generators write (as opposed to the headers their contracts declare).
SOURCE_SUFFIXES = (".cu", ".cpp", ".cc", ".cxx")


@dataclass(frozen=True)
class GeneratedFile:
    """One output file: its name, where it came from, and its tree. `text` is the rendered file."""

    name: str
    preset: str
    kind: str
    axes: Configuration
    unit: TranslationUnit
    style: Style
    contract: Contract
    aggregator: bool = False
    # The GPU architectures the file is built for (its kind says; empty: any the user names).
    architectures: tuple[str, ...] = ()
    # An aggregator's kind: whether a build compiles it in place of its members by default.
    compiled_by_default: bool = True

    @cached_property
    def text(self) -> str:
        """The file's bytes (as text): the tree printed in the file's style."""
        return render(self.unit, self.style)

    @property
    def axis_values(self) -> dict[str, AxisValue]:
        """The axis values as a plain dict (for manifests and records)."""
        return dict(self.axes.items())

    def describe(self) -> str:
        """`kind=fwd dtype=fp16 head_dim=128`, for diagnostics."""
        return f"kind={self.kind} {self.axes.describe()}".rstrip()

    def included_files(self) -> tuple[str, ...]:
        """The generated files this one includes (an aggregator's members): quoted includes of source files.

        A quoted `#include "x.cu"` (or `.cpp`, `.cc`, `.cxx`) names another generated file, which
        verification then requires the run to generate; headers are the contract's business.
        """
        return self._included_files

    @cached_property
    def ifdef_macros(self) -> tuple[str, ...]:
        """The macros the file tests with `#ifdef`, sorted: code a build can switch on, which
        verification defines to see it."""
        return tuple(sorted({str(node.macro) for node in self.unit.walk() if isinstance(node, IfDefined)}))

    @cached_property
    def _included_files(self) -> tuple[str, ...]:
        # Derived from the unit like `text`; selection, batching and keys all ask, many times each.
        return tuple(
            node.path.text
            for node in self.unit.walk()
            if isinstance(node, Include) and not node.angled and node.path.text.endswith(SOURCE_SUFFIXES)
        )


class CompilePolicy(enum.Enum):
    """Which side of an aggregator a build compiles, when the selection holds both it and its members."""

    UPSTREAM = "upstream"  # as each aggregator's kind says: what the preset's upstream build compiles
    MEMBERS = "members"  # the members, one by one; no aggregator
    AGGREGATORS = "aggregators"  # every aggregator, in place of the files it includes


def compiled_files(files: Sequence[GeneratedFile], policy: CompilePolicy) -> list[GeneratedFile]:
    """The files of `files` a build compiles, in their order: every kernel file exactly once, on its
    own or inside one compiled aggregator.

    A header a preset generates (pytorch-mem-eff's `cutlassF.h`) is never compiled on its own. The
    policy chooses between an aggregator and its members where `files` holds both. An aggregator
    none of whose members is in `files` is compiled whatever the policy (a selection of aggregators
    alone compiles them), and a file inside a compiled aggregator, directly or through another one, is
    not. A file two compiled aggregators include would be compiled twice: that is a `UsageError`
    naming both, since another policy (or leaving one aggregator out) avoids it.
    """
    by_name = {generated.name: generated for generated in files}

    def chosen(generated: GeneratedFile) -> bool:
        if not generated.name.endswith(SOURCE_SUFFIXES):
            return False
        if not generated.aggregator:
            return True
        if not any(member in by_name for member in generated.included_files()):
            return True
        if policy is CompilePolicy.UPSTREAM:
            return generated.compiled_by_default
        return policy is CompilePolicy.AGGREGATORS

    candidates = [generated for generated in files if chosen(generated)]
    inside: dict[str, str] = {}  # file name -> the compiled aggregator it is compiled in
    for aggregator in candidates:
        for name in _included_transitively(aggregator, by_name):
            other = inside.setdefault(name, aggregator.name)
            if other != aggregator.name and not _includes(by_name, other, aggregator.name) and not _includes(
                by_name, aggregator.name, other
            ):
                raise UsageError(
                    f"{name}: included by both {other} and {aggregator.name}, so a build would compile it twice;"
                    " choose --compile members, or leave one of the aggregators out"
                )
    return [generated for generated in candidates if generated.name not in inside]


def _included_transitively(generated: GeneratedFile, by_name: dict[str, GeneratedFile]) -> list[str]:
    """The names of the files of `by_name` that `generated` includes, directly or through them."""
    found: list[str] = []
    pending = [generated]
    while pending:
        for name in pending.pop().included_files():
            if name in by_name and name not in found:
                found.append(name)
                pending.append(by_name[name])
    return found


def _includes(by_name: dict[str, GeneratedFile], outer: str, inner: str) -> bool:
    """Whether aggregator `outer` includes `inner`, directly or through other files (nested aggregators)."""
    return inner in _included_transitively(by_name[outer], by_name)
