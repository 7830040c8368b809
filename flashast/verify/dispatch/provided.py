"""What generated files provide to a dispatcher, read from the model, never from text.

Every explicit specialization and explicit instantiation definition of each file (the expansion of a
function-like macro's invocation included), qualified by its namespaces (`FLASH_NAMESPACE` resolved
through a `--define`, else the file's contract's `#define`), with its `#ifdef`/`#ifndef` guards
evaluated under the run's defines. An `extern template` line is a
requirement the selected files must satisfy too. An aggregator provides nothing itself: its members
do, once. The files are walked by `flashast.scoped_definitions.definitions`, as the duplicate check
walks them, and each specialization is named by `flashast.definition_spelling.dispatch_key`: as
libclang reads it back from a dispatcher (`flashast.verify.dispatch.indexer`), so the dispatch check compares
the two as plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from flashast.definition_spelling import dispatch_key
from flashast.generated import GeneratedFile
from flashast.nodes import (
    ExplicitInstantiation,
    ExplicitSpecialization,
    FunctionDefinition,
    MacroInvocation,
)
from flashast.printer import render_declarations
from flashast.scoped_definitions import Guard, definitions
from flashast.verify.checks import FileMacros, FileTemplateDefaults, ifndef_macros
from flashast.verify.diagnostics import Location

# `Guard` is the walk's (`flashast.scoped_definitions`); the dispatch check imports it from here.
__all__ = ["Guard", "Provided", "Provision", "Specialization", "natural_order", "provided", "would_provide",
           "written_templates"]


@dataclass(frozen=True, order=True)
class Specialization:
    """`flash::run_mha_fwd_<cutlass::half_t, 128, true>`: a template's qualified name and its
    arguments (types fully qualified, integers in decimal, booleans `true`/`false`)."""

    template: str
    arguments: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.template}<{', '.join(self.arguments)}>"

    def reading_order(self) -> tuple[str, list[list[int | str]]]:
        """A sort key in reading order: `<T, 32>` before `<T, 128>`."""
        return self.template, [natural_order(argument) for argument in self.arguments]


def natural_order(text: str) -> list[int | str]:
    """`HDIM64` before `HDIM192`: digit runs compare as numbers (split parts alternate str, int)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@dataclass(frozen=True)
class Provision:
    """One definition a generated file makes (or, `extern`, requires), the guards around it, and
    whether they let it compile under the defines it was read with (`active`)."""

    specialization: Specialization
    file: GeneratedFile
    guards: tuple[Guard, ...]
    declaration: ExplicitSpecialization | ExplicitInstantiation
    active: bool = True
    # The line as the file writes it, when that is not `declaration` itself: the invocation of the
    # function-like macro that expands to it (`DECL_FATTN_VEC_CASE(64, GGML_TYPE_F16, GGML_TYPE_F16);`).
    written: MacroInvocation | None = None

    @property
    def extern(self) -> bool:
        return isinstance(self.declaration, ExplicitInstantiation) and self.declaration.extern

    def location(self) -> Location:
        """The generated file's line that makes (or declares) it."""
        if self.written is not None:
            lines = render_declarations((self.written,), self.file.style)
            wanted = next(line.strip() for line in lines if line.strip())
        else:
            wanted = next(line.strip() for line in render_declarations((self.declaration,), self.file.style)
                          if str(self.declaration.signature.name) in line)
        for number, line in enumerate(self.file.text.splitlines(), 1):
            if line.strip() == wanted:
                return Location(self.file.name, number, line.index(wanted) + 1)
        return Location(self.file.name)


@dataclass(frozen=True)
class Provided:
    """What the selected files define under the run's defines (`provisions`), what their guards
    switch off (`switched_off`), their `extern template` requirements, the `#ifndef` macros they
    test, and the aggregators that include each member."""

    provisions: Mapping[Specialization, Provision]
    switched_off: Mapping[Specialization, Provision]
    externs: tuple[Provision, ...]
    guard_macros: frozenset[str]
    aggregators: Mapping[str, tuple[str, ...]]


def provided(files: Iterable[GeneratedFile], defines: Sequence[str] = ()) -> Provided:
    """What `files` provide when compiled with `defines` (`NAME` or `NAME=VALUE`)."""
    files = list(files)
    provisions: dict[Specialization, Provision] = {}
    switched_off: dict[Specialization, Provision] = {}
    externs = []
    for provision in _read_model(files, defines):
        if provision.extern:
            externs += [provision] if provision.active else []
        else:
            (provisions if provision.active else switched_off).setdefault(provision.specialization, provision)
    aggregators: dict[str, tuple[str, ...]] = {}
    for generated in files:
        for member in generated.included_files() if generated.aggregator else ():
            aggregators[member] = (*aggregators.get(member, ()), generated.name)
    return Provided(provisions, switched_off, tuple(externs), ifndef_macros(files), aggregators)


def would_provide(files: Iterable[GeneratedFile], defines: Sequence[str] = ()) -> dict[Specialization, Provision]:
    """Every definition any of `files` (a preset's whole output) makes, guards not evaluated: which
    file would provide a specialization the selection lacks."""
    found: dict[Specialization, Provision] = {}
    for provision in _read_model(files, defines):
        if not provision.extern:
            found.setdefault(provision.specialization, provision)
    return found


def written_templates(files: Iterable[GeneratedFile], defines: Sequence[str] = ()) -> frozenset[str]:
    """The qualified names of the templates `files` specialize, instantiate or declare `extern`:
    the ones a dispatcher check tracks."""
    return frozenset(provision.specialization.template for provision in _read_model(files, defines))


def _read_model(files: Iterable[GeneratedFile], defines: Sequence[str]) -> Iterator[Provision]:
    """Every definition and `extern template` of the files that are not aggregators (an aggregator's
    are its members'), qualified by their namespaces, guards evaluated under the contract's macros
    and `defines`."""
    macros_of = FileMacros(defines)
    defaults_of = FileTemplateDefaults(macros_of)
    for generated in files:
        if generated.aggregator:
            continue
        macros, defaults = macros_of(generated), defaults_of(generated)
        for found in definitions(generated.unit, macros):
            if isinstance(found.node, FunctionDefinition):
                continue  # no template's specialization, so nothing a dispatcher check tracks
            yield Provision(Specialization(*dispatch_key(found.scope, found.node, defaults)), generated,
                            found.guards, found.node, all(guard.holds(macros) for guard in found.guards),
                            found.written)
