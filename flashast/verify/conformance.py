"""Contract conformance: does each kind's contract declare what the real headers declare?

Contract verification is fast because it parses against a contract a person wrote; this check keeps
that contract honest. Both sides are read by libclang the same way: the contract's headers, printed
and served from memory, and the real headers at the same include paths (one parse for every header
the selected kinds' contracts name). Each declaration of a contract is then looked up by its
qualified name among the real declarations and compared as clang sees both:

- a function template: its template parameters (kind, and the type of a non-type parameter, in
  order), its return type and its parameter types, all as canonical types (so `cudaStream_t` is
  `CUstream_st *` on both sides and `FLASH_NAMESPACE` is the namespace it expands to);
- a class: that one of that name exists there; a type alias: its canonical type;
- an object-like macro: that it is defined, with the same replacement.

A mismatch is reported at the contract's declaration, with a note at the real header's line. A
conforming result is remembered like a file's verdict (`keys`): rerunning over unchanged headers
parses nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from flashast.contract import Contract
from flashast.errors import VerificationError
from flashast.nodes import Include, TranslationUnit
from flashast.preprocessor import CUDA_STAND_IN_MACROS
from flashast.printer import render
from flashast.verify.command_line import refused_command_line
from flashast.verify.diagnostics import Diagnostic, Location, Note, Report
from flashast.verify.keys import Verdict, VerdictStore
from flashast.verify.reading import path_of, spell_header
from flashast.verify.setup import parse_setup
from flashast.verify.sources import Sources, contract_headers
from flashast.verify.toolchain import CONTRACT_MODE, VIRTUAL_SOURCE, VerifyOptions, load_cindex

# Detailed preprocessing record: macro definitions become cursors.
_DETAILED_PREPROCESSING_RECORD = 0x01
_SKIP_FUNCTION_BODIES = 0x40


@dataclass(frozen=True)
class Declared:
    """One declaration as clang sees it: what it is, its qualified name, what is compared, where."""

    what: str
    name: str
    shape: tuple[str, ...]
    location: Location | None

    def describe(self) -> str:
        if self.what == "function template":
            template, result, *parameters = self.shape
            return f"{result} {self.name}{template}({', '.join(parameters)})"
        return f"{self.what} {self.name}" + (f" = {self.shape[0]}" if self.shape and self.shape[0] else "")


def check_conformance(
    contracts: Sequence[Contract], options: VerifyOptions, store: VerdictStore | None = None
) -> Report:
    """Compare every declaration of `contracts` with the real headers `options` names; raise
    `VerificationError` with one error per declaration that is missing or differs."""
    store = store or VerdictStore(None)
    distinct = list(dict.fromkeys(contracts))
    paths = sorted({path for contract in distinct for path, _ in contract.headers}, key=str)
    real_text = render(TranslationUnit(tuple(Include(path) for path in paths)))
    main_path = f"{VIRTUAL_SOURCE}/.flashast-conformance.cpp"
    setup = parse_setup(options, "conformance")
    # The contracts' printed headers are what the real declarations are compared with: part of the key.
    key = setup.key(real_text, (), [header for contract in distinct for header in contract_headers(contract)])
    sources = Sources([], setup, VIRTUAL_SOURCE)
    served = [(main_path, real_text), *setup.stand_ins]
    report = Report(files=len(distinct))
    if store.lookup(key, sources.current(served)) is not None:
        report.reused = len(distinct)
        return report
    cindex = load_cindex()
    index = cindex.Index.create()
    flags = _DETAILED_PREPROCESSING_RECORD | _SKIP_FUNCTION_BODIES
    try:
        real_unit = index.parse(main_path, list(setup.arguments), served, flags)
    except cindex.TranslationUnitLoadError:
        raise refused_command_line(cindex, index, options, main_path) from None
    problems = [diagnostic for diagnostic in real_unit.diagnostics if diagnostic.severity >= cindex.Diagnostic.Error]
    if problems:
        first = problems[0]
        where = path_of(first.location)
        report.add(Diagnostic(
            Location(spell_header(where), first.location.line, first.location.column) if where else None,
            f"the real headers do not parse: {first.spelling}", fails=True,
            remarks=("(conformance needs the headers the contracts name to parse on their own)",),
        ))
        raise VerificationError("conformance failed: the real headers do not parse", report)
    real = _declarations(cindex, real_unit, real_unit.cursor, ())
    for contract in distinct:
        report.parsed += 1
        for declared in _contract_declarations(cindex, index, contract):
            _compare(declared, real, report, contract.origin)
    if report.failed:
        raise VerificationError(
            f"conformance failed: {len(report.errors)} contract declaration(s) differ from the real headers",
            report,
        )
    store.remember([Verdict(key, tuple(sources.readings(real_unit, served)))])
    return report


def _contract_declarations(cindex: ModuleType, index: Any, contract: Contract) -> list[Declared]:
    """The contract's declarations, parsed from its printed headers."""
    served = list(contract_headers(contract))
    main_path = f"{VIRTUAL_SOURCE}/.flashast-contract.cpp"
    text = render(TranslationUnit(tuple(Include(path) for path, _ in contract.headers)))
    unit = index.parse(main_path, list(parse_setup(CONTRACT_MODE).arguments), [(main_path, text), *served],
                       _DETAILED_PREPROCESSING_RECORD)
    found = _declarations(cindex, unit, unit.cursor, ())
    return [declared for group in found.values() for declared in group if declared.location is not None
            and not (declared.what == "macro" and declared.name in CUDA_STAND_IN_MACROS)]


def _compare(declared: Declared, real: dict[str, list[Declared]], report: Report, origin: str) -> None:
    candidates = [candidate for candidate in real.get(declared.name, []) if candidate.what == declared.what]
    if any(candidate.shape == declared.shape for candidate in candidates):
        return
    if not candidates:
        message = f"{declared.what} {declared.name} is not declared by the real headers"
        notes: tuple[Note, ...] = ()
    else:
        closest = candidates[0]
        message = f"{declared.what} {declared.name} differs from the real headers: the contract says" \
                  f" `{declared.describe()}`, the headers `{closest.describe()}`"
        notes = tuple(Note(f"the real declaration: {candidate.describe()}", candidate.location)
                      for candidate in candidates)
    report.add(Diagnostic(declared.location, message, fails=True, file=None, notes=notes,
                          remarks=("(the contract no longer matches the header it stands for)",
                                   f"(the contract is built at {origin})")))


def _declarations(cindex: ModuleType, unit: Any, cursor: Any, scope: tuple[str, ...]) -> dict[str, list[Declared]]:
    """Every function template, class, alias and object-like macro at namespace scope, by name."""
    found: dict[str, list[Declared]] = {}
    for declared in _walk(cindex, unit, cursor, scope):
        found.setdefault(declared.name, []).append(declared)
    return found


def _walk(cindex: ModuleType, unit: Any, cursor: Any, scope: tuple[str, ...]) -> Iterator[Declared]:
    kinds = cindex.CursorKind
    for child in cursor.get_children():
        kind = child.kind
        name = "::".join((*scope, child.spelling))
        if kind == kinds.NAMESPACE:
            yield from _walk(cindex, unit, child, (*scope, child.spelling))
        elif kind == kinds.LINKAGE_SPEC:
            yield from _walk(cindex, unit, child, scope)
        elif kind == kinds.FUNCTION_TEMPLATE:
            yield Declared("function template", name, _function_template_shape(cindex, child), _location(child))
        elif kind in (kinds.STRUCT_DECL, kinds.CLASS_DECL) and child.spelling:
            yield Declared("class", name, (), _location(child))
        elif kind in (kinds.TYPEDEF_DECL, kinds.TYPE_ALIAS_DECL):
            yield Declared("alias", name, (child.underlying_typedef_type.get_canonical().spelling,), _location(child))
        elif kind == kinds.MACRO_DEFINITION and not scope and child.location.file is not None:
            tokens = [token.spelling for token in child.get_tokens()]
            if len(tokens) > 1 and tokens[1] == "(" and _function_like(child):
                continue  # function-like macros are their expansions' business
            yield Declared("macro", child.spelling, (" ".join(tokens[1:]),), _location(child))


def _function_like(cursor: Any) -> bool:
    is_function_like = getattr(cursor, "is_macro_function_like", None)
    return bool(is_function_like()) if callable(is_function_like) else True


def _function_template_shape(cindex: ModuleType, cursor: Any) -> tuple[str, ...]:
    kinds = cindex.CursorKind
    template = []
    parameters = []
    for child in cursor.get_children():
        if child.kind == kinds.TEMPLATE_TYPE_PARAMETER:
            template.append("typename")
        elif child.kind == kinds.TEMPLATE_NON_TYPE_PARAMETER:
            template.append(child.type.get_canonical().spelling)
        elif child.kind == kinds.TEMPLATE_TEMPLATE_PARAMETER:
            template.append("template")
        elif child.kind == kinds.PARM_DECL:
            parameters.append(child.type.get_canonical().spelling)
    return (f"<{', '.join(template)}>", cursor.result_type.get_canonical().spelling, *parameters)


def _location(cursor: Any) -> Location | None:
    path = path_of(cursor.location)
    if not path:
        return None
    return Location(spell_header(path), cursor.location.line, cursor.location.column)
