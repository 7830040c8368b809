"""`GeneratedFile`: one output file, as a kind made it.

A file is its name, where it came from (preset, kind, axis values), its tree and the style it is
printed in. Its text is derived from the tree and the style (once, on first use), never stored beside
them, so the bytes written and the tree verified cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from flashast.axes import AxisValue, Configuration
from flashast.contract import Contract
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
