"""Dispatch coverage: what the dispatcher calls against what the selected files provide.

A build that compiles a subset of the files fails late in two ways: the dispatcher calls a
specialization no compiled file defines (`undefined symbol` when the module is imported), or a file
is compiled that nothing calls (minutes of nvcc for nothing). This module checks both, before
anything is written:

- **provided** comes from the model, never from text (`flashast.verify.dispatch.provided`): every explicit
  specialization and explicit instantiation definition of each selected file, its namespaces and
  guards resolved under the run's defines; `extern template` lines are requirements too.
- **required** is what the dispatchers call, read with libclang (`flashast.verify.dispatch.indexer`, which
  also keeps it in the store while every file the parse read is unchanged). Only the templates the
  preset's files write are checked; the others called are listed as not checked.
- **compare** makes `Diagnostic` records: a missing specialization is an error at the dispatcher's
  line, naming the file that would provide it, the filter that left that file out, and the guard
  macros whose `--define` would switch the call off; an unused file is a warning (an error when
  `strict`). `check_dispatch` runs all three and offers the guard `--define`s only after re-reading
  the dispatcher with them finds nothing missing.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from flashast.compat import FlashastDeprecationWarning
from flashast.generated import GeneratedFile
from flashast.selection import Filter, excluding_filter
from flashast.verify.checks import origin
from flashast.verify.diagnostics import Diagnostic, Location, Note
from flashast.verify.dispatch.indexer import Required, display_path, required
from flashast.verify.dispatch.provided import (
    Guard,
    Provided,
    Provision,
    Specialization,
    natural_order,
    provided,
    would_provide,
    written_templates,
)
from flashast.verify.keys import STORE_NAME, VerdictStore
from flashast.verify.toolchain import VerifyOptions

__all__ = [
    "DispatchReport", "Guard", "Missing", "Provided", "Provision", "Required", "Requirement", "Specialization",
    "Unused", "check_dispatch", "compare", "excluding_filter", "guard_defines", "provided", "required",
    "requirements", "would_provide", "written_templates",
]


@dataclass(frozen=True)
class Requirement:
    """A specialization the dispatchers need from other translation units, and every place it is used."""

    specialization: Specialization
    locations: tuple[Location, ...]


def requirements(reads: Iterable[Required], tracked: bool = True) -> tuple[Requirement, ...]:
    """The dispatchers' references merged per specialization: of tracked templates (`tracked`), or
    the others (also those whose arguments cannot be spelled, shown as `...`)."""
    # Places as a dict's keys: a specialization called from thousands of lines stays linear to merge.
    found: dict[Specialization, dict[Location, None]] = {}
    for read in reads:
        for reference in read.references:
            if (reference.tracked and reference.arguments is not None) == tracked:
                places = found.setdefault(Specialization(reference.template, reference.arguments or ("...",)), {})
                places[reference.location] = None
    return tuple(Requirement(specialization, tuple(sorted(places, key=_place)))
                 for specialization, places in sorted(found.items(), key=lambda pair: pair[0].reading_order()))


def _place(location: Location) -> tuple[str, int, int]:
    return location.file, location.line, location.column



@dataclass(frozen=True)
class Missing:
    """A specialization required (by a dispatcher, or by a selected file's `extern template`) that no
    selected file provides: where it is required, the file that would provide it, and why that file
    does not (the filter that left it out, a define that switched it off, or no file makes it)."""

    specialization: Specialization
    locations: tuple[Location, ...]
    provider: Provision | None
    reason: str
    extern_in: Provision | None = None
    switches: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unused:
    """A selected file providing specializations nothing requires (`of`: how many it provides)."""

    file: GeneratedFile
    specializations: tuple[Specialization, ...]
    of: int
    location: Location
    aggregators: tuple[str, ...] = ()


@dataclass(frozen=True)
class DispatchReport:
    """The outcome of a dispatch check, as data; `diagnostics` renders it as verification records."""

    missing: tuple[Missing, ...]
    unused: tuple[Unused, ...]
    unchecked: tuple[Requirement, ...]
    problems: tuple[Diagnostic, ...] = ()
    strict: bool = False
    suggested_defines: tuple[str, ...] = ()
    dispatchers: tuple[Required, ...] = field(default=(), compare=False)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return (*self.problems, *map(_missing_diagnostic, self.missing),
                *(_unused_diagnostic(unused, self.strict) for unused in self.unused))

    @property
    def failed(self) -> bool:
        return any(diagnostic.fails for diagnostic in self.diagnostics)

    def text(self, header_warnings: bool = True) -> str:
        """Every diagnostic (errors first), the templates not checked, and the suggested defines (none
        lies inside a header: `header_warnings` changes nothing, it is there for `VerificationError`)."""
        diagnostics = self.diagnostics
        lines = [diagnostic.render() for diagnostic in diagnostics if diagnostic.fails]
        lines += [diagnostic.render() for diagnostic in diagnostics if not diagnostic.fails]
        by_template: dict[str, list[Requirement]] = {}
        for requirement in self.unchecked:
            by_template.setdefault(requirement.specialization.template, []).append(requirement)
        for template, found in sorted(by_template.items()):
            lines.append(f"{_shown(found[0].locations[0])}: note: not checked: {len(found)} specialization(s) of"
                         f" {template} (no kind of this preset writes it), e.g. {found[0].specialization}")
        if self.suggested_defines:
            lines.append(f"flashast: hint: {self.suggestion()}")
        return "\n".join(lines)

    def suggestion(self) -> str:
        defines = " ".join(f"--define {define}" for define in self.suggested_defines)
        return f"building with {defines} switches off every missing call (checked by re-reading the dispatcher)"

    def summary(self) -> str:
        calls = len(requirements(self.dispatchers))
        if not self.failed:
            return (f"dispatch: {calls} specialization(s) called, all provided;"
                    f" {len(self.unused)} file(s) provide only what nothing calls")
        parts = [f"{len(self.missing)} specialization(s) required but not provided"] if self.missing else []
        if self.problems:
            parts.append(f"{len(self.problems)} error(s) reading the dispatcher")
        if self.strict and self.unused:
            parts.append(f"{len(self.unused)} file(s) compiled for nothing (--strict)")
        return "dispatch check failed: " + ", ".join(parts) + "; nothing was written"


def compare(have: Provided, reads: Sequence[Required], candidates: Mapping[Specialization, Provision] | None = None,
            filters: Sequence[Filter] = (), strict: bool = False) -> DispatchReport:
    """Required against provided: missing specializations (errors), unused files (warnings, errors
    when `strict`), templates not checked. `candidates` (`would_provide` over the preset's every file)
    names the file a missing specialization needs; `filters` the `--only`/`--exclude` that left it out."""
    candidates = candidates or {}
    called = {requirement.specialization: requirement.locations for requirement in requirements(reads)}
    in_order = sorted(called.items(), key=lambda pair: (_place(pair[1][0]), *pair[0].reading_order()))
    missing = [_missing(specialization, places, None, have, candidates, filters)
               for specialization, places in in_order if specialization not in have.provisions]
    missing += [_missing(extern.specialization, (extern.location(),), extern, have, candidates, filters)
                for extern in have.externs if extern.specialization not in have.provisions]
    per_file: dict[str, list[Provision]] = {}
    for provision in have.provisions.values():
        per_file.setdefault(provision.file.name, []).append(provision)
    # An `extern template` line makes its target used only when its own file is used.
    used, waiting = set(called), list(have.externs)
    while any(_in_use(extern, per_file, used) for extern in waiting):
        used.update(extern.specialization for extern in waiting if _in_use(extern, per_file, used))
        waiting = [extern for extern in waiting if extern.specialization not in used]
    problems = tuple(problem for read in reads for problem in read.problems)
    unused = []
    for name, provisions in sorted(per_file.items()) if not problems else ():  # unknown calls: no verdict
        idle = [provision for provision in provisions if provision.specialization not in used]
        if idle:
            unused.append(Unused(idle[0].file, tuple(provision.specialization for provision in idle), len(provisions),
                                 idle[0].location(), have.aggregators.get(name, ())))
    return DispatchReport(tuple(missing), tuple(unused), requirements(reads, tracked=False), problems, strict, (),
                          tuple(reads))


def _in_use(extern: Provision, per_file: Mapping[str, list[Provision]], used: set[Specialization]) -> bool:
    return any(provision.specialization in used for provision in per_file.get(extern.file.name, ()))


def _missing(specialization: Specialization, places: tuple[Location, ...], extern: Provision | None, have: Provided,
             candidates: Mapping[Specialization, Provision], filters: Sequence[Filter]) -> Missing:
    off = have.switched_off.get(specialization)
    if off is not None:
        macros = ", ".join(guard.macro for guard in off.guards)
        return Missing(specialization, places, off, f"its guard ({macros}) is switched off by this run's defines",
                       extern)
    provider = candidates.get(specialization)
    if provider is None:
        return Missing(specialization, places, None, "no file of this preset provides it", extern)
    switches = tuple(guard.macro for guard in provider.guards
                     if not guard.defined and guard.macro not in have.guard_macros)
    return Missing(specialization, places, provider, f"left out by {excluding_filter(provider.file, filters)}",
                   extern, switches)


def guard_defines(missing: Sequence[Missing]) -> tuple[str, ...]:
    """The `#ifndef` macros (tested by no selected file) whose definition switches off every missing
    call, or () when some missing call has none (or is an `extern template` line's)."""
    if not missing or any(item.extern_in is not None or not item.switches for item in missing):
        return ()
    return tuple(sorted({macro for item in missing for macro in item.switches}, key=natural_order))


def check_dispatch(dispatchers: Sequence[Path], selected: Sequence[GeneratedFile], every_file: Sequence[GeneratedFile],
                   options: VerifyOptions, filters: Sequence[Filter] = (), store: VerdictStore | Path | None = None,
                   strict: bool | None = None, progress: Callable[[Required], None] | None = None, *,
                   store_directory: Path | None = None) -> DispatchReport:
    """The whole check for a run: `selected` files against every dispatcher, `every_file` (the
    preset's full output) naming what a missing call needs. Guard `--define`s are suggested only when
    re-reading the dispatchers with them leaves nothing missing. `store`: the verdict store that
    keeps what each dispatcher needs (`VerdictStore.default()` is the user cache; None keeps nothing).
    `store_directory` (a folder, or a folder as `store`) is 0.1.0's spelling, deprecated."""
    if store_directory is not None or (store is not None and not isinstance(store, VerdictStore)):
        warnings.warn("check_dispatch(store_directory=FOLDER) is deprecated: pass store=VerdictStore(...)"
                      " (VerdictStore.default() is the user cache)", FlashastDeprecationWarning, stacklevel=2)
        store = VerdictStore(Path(store_directory or store) / STORE_NAME)  # type: ignore[arg-type]
    defines = list(options.effective_defines)
    templates = written_templates(every_file, defines)
    candidates = would_provide(every_file, defines)

    def read(with_options: VerifyOptions) -> list[Required]:
        reads = []
        for dispatcher in dispatchers:
            reads.append(required(dispatcher, with_options, templates, store))
            if progress is not None:
                progress(reads[-1])
        return reads

    strict = options.strict if strict is None else strict
    report = compare(provided(selected, defines), read(options), candidates, filters, strict)
    suggested = guard_defines(report.missing) if not report.problems else ()
    if suggested:
        again = replace(options, defines=(*options.defines, *suggested))
        recheck = compare(provided(selected, [*defines, *suggested]), read(again), candidates, filters, strict)
        if not recheck.missing and not recheck.problems:
            report = replace(report, suggested_defines=suggested)
    return report


def _shown(location: Location) -> Location:
    return replace(location, file=display_path(location.file)) if os.path.isabs(location.file) else location


def _missing_diagnostic(item: Missing) -> Diagnostic:
    first, *others = item.locations
    remarks = []
    if item.provider is not None:
        remarks.append(f"provided by {item.provider.file.name}; {item.reason}")
    else:
        remarks.append(f"({item.reason})")
    if item.switches:
        remarks.append("or switch the call off: " + " ".join(f"--define {macro}" for macro in item.switches))
    message = f"{item.specialization} is called but no selected file provides it (an undefined symbol when the" \
              " module is imported)"
    file: str | None = None
    source = origin(item.provider.file) if item.provider is not None else None
    if item.extern_in is not None:
        message = f"{item.specialization} is declared `extern template` here but no selected file provides it" \
                  " (an undefined symbol when linking)"
        file, source = item.extern_in.file.name, origin(item.extern_in.file)
    notes = tuple(Note("also called here", _shown(other)) for other in others)
    return Diagnostic(_shown(first), message, fails=True, file=file, notes=notes, remarks=tuple(remarks), origin=source)


def _unused_diagnostic(unused: Unused, strict: bool) -> Diagnostic:
    names = ", ".join(map(str, unused.specializations))
    count = len(unused.specializations)
    what = "nothing it provides is" if count == unused.of else f"{count} of its {unused.of} specializations are"
    remarks = [f"(compiled for nothing{'' if strict else '; --strict makes this an error'})"]
    remarks += [f"included by aggregator {name}" for name in unused.aggregators]
    return Diagnostic(unused.location, f"{what} called by the dispatcher or required by an extern template: {names}",
                      fails=strict, file=unused.file.name, remarks=tuple(remarks), origin=origin(unused.file))
