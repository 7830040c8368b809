"""Reading libclang's diagnostics into `Diagnostic` records, located where the user can act.

A diagnostic in a generated file is reported at that file's own line and column. One inside a header
that a generated line caused (a note points at that line, or the line explicitly instantiates the
template whose body failed) is reported at that line, with a note at the header. One that no
generated line caused is a header's own problem, reported once per run (`Report.add`). Errors fail
the run, and so do warnings located in a generated file (such a warning is a real defect:
"explicit instantiation after specialization has no effect"); warnings in headers fail only under
`--strict`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from flashast.generated import GeneratedFile
from flashast.verify.checks import origin
from flashast.verify.diagnostics import ERROR_LIMIT_MESSAGE, Diagnostic, Location, Note
from flashast.verify.toolchain import VIRTUAL_INCLUDE

HeaderKey = tuple[str, int, int, str]
# The first note of an error inside a header that a generated line caused (reported at that line).
HEADER_NOTE = "the error is here, in a header, instantiated for this line"


@dataclass(frozen=True)
class ParseContext:
    """What names the files of one parse: the generated file it verifies, the path its text was
    served at, where the run's other generated files are served, and their texts."""

    cindex: ModuleType
    generated: GeneratedFile
    main_path: str
    source_root: str
    texts: Mapping[str, str]
    strict: bool
    # A real-header batch's files (`generated` is the first), when one parse verifies them all: a line
    # of its text is no line of any one file, so a header warning names the files, not a line.
    together: tuple[str, ...] = ()

    def generated_name(self, path: str) -> str | None:
        """The generated file `path` is (the main file or a member it includes), or None."""
        if path == self.main_path:
            return self.generated.name
        prefix = self.source_root + "/"
        if path.startswith(prefix) and path[len(prefix):] in self.texts:
            return path[len(prefix):]
        return None

    def location(self, location: Any) -> Location | None:
        path = path_of(location)
        if not path:
            return None
        name = self.generated_name(path)
        return Location(name if name is not None else spell_header(path), location.line, location.column)

    def notes(self, notes: list[Any]) -> tuple[Note, ...]:
        return tuple(Note(note.spelling, self.location(note.location)) for note in notes)


def reportable(cindex: ModuleType, unit: Any) -> Iterator[Any]:
    """Warnings and errors, up to and including the first fatal error: clang's own driver stops
    there, and what libclang reports after it (an unknown name the missing header would have
    declared) only follows from it."""
    for diagnostic in unit.diagnostics:
        if diagnostic.severity < cindex.Diagnostic.Warning:
            continue
        yield diagnostic
        if diagnostic.severity >= cindex.Diagnostic.Fatal:
            return


def header_problems(context: ParseContext, unit: Any) -> tuple[list[Diagnostic], set[HeaderKey]]:
    """What the headers get wrong with only the includes parsed (real-header mode's first parse of a
    group), and the identities of those diagnostics, so the files' parses can leave them out."""
    found = []
    keys = set()
    for diagnostic in reportable(context.cindex, unit):
        path = path_of(diagnostic.location)
        if path and context.generated_name(path) is not None:
            continue  # a generated line's own error (a failing `#include`) is reported per file
        keys.add(_key(diagnostic))
        found.append(_header_diagnostic(context, diagnostic, _notes_of(diagnostic), None))
    return found, keys


def file_diagnostics(context: ParseContext, unit: Any, header_keys: set[HeaderKey] | None) -> list[Diagnostic]:
    """One file's diagnostics. `header_keys`: in real-header mode, the headers' own problems."""
    found = []
    for diagnostic in reportable(context.cindex, unit):
        is_error = diagnostic.severity >= context.cindex.Diagnostic.Error
        path = path_of(diagnostic.location)
        notes = _notes_of(diagnostic)
        if path and context.generated_name(path) is not None:
            found.append(_generated_diagnostic(context, diagnostic, diagnostic.location, notes, is_error))
            continue
        if header_keys is not None and _key(diagnostic) in header_keys:
            continue  # a header's own problem, reported by the includes-alone parse
        cause = next(
            (note.location for note in notes
             if path_of(note.location) and context.generated_name(path_of(note.location)) is not None),
            None,
        )
        if cause is None and header_keys is not None:
            # Not there with the includes alone, so this file's lines caused it; clang names no line
            # of ours when the request was an explicit instantiation, so find that line.
            cause = _instantiation_cause(context, unit, diagnostic, notes)
        if cause is None or not is_error:
            # A warning inside a header does not fail the run even when a file's line led clang
            # there (unless --strict); it is reported once, like any header problem.
            found.append(_header_diagnostic(context, diagnostic, notes, cause))
            continue
        header_note = Note(
            HEADER_NOTE,
            Location(spell_header(path), diagnostic.location.line, diagnostic.location.column),
        )
        remaining = [note for note in notes if note.location != cause]
        found.append(_generated_diagnostic(context, diagnostic, cause, remaining, is_error, header_note))
    return found


def _generated_diagnostic(
    context: ParseContext, diagnostic: Any, location: Any, notes: list[Any], is_error: bool,
    first_note: Note | None = None,
) -> Diagnostic:
    """A diagnostic a generated line is responsible for: always fails, warnings included."""
    where = context.location(location)
    remarks: list[str] = []
    if where is not None and where.file != context.generated.name:
        remarks.append(f"included from: {context.generated.name}")
    suffix = "" if is_error else " (a warning; warnings in generated files fail verification)"
    return Diagnostic(
        where,
        message_of(diagnostic) + suffix,
        fails=True,
        file=context.generated.name,
        notes=((first_note,) if first_note else ()) + context.notes(notes),
        remarks=tuple(remarks),
        origin=origin(context.generated),
    )


def _header_diagnostic(context: ParseContext, diagnostic: Any, notes: list[Any], cause: Any) -> Diagnostic:
    """A problem of a header itself (or of the command line), reported once per run."""
    is_error = diagnostic.severity >= context.cindex.Diagnostic.Error
    path = path_of(diagnostic.location)
    where = Location(spell_header(path), diagnostic.location.line, diagnostic.location.column) if path else None
    if context.together:
        seen = f"first seen verifying {', '.join(context.together)} in one parse"
    elif cause is not None:
        seen = f"instantiated for {context.location(cause)}"
    else:
        seen = f"first seen verifying {context.generated.name}"
    strict = "; --strict makes header warnings fail" if not is_error and not context.strict else ""
    remark = f"(in a header: reported once; {seen}{strict})"
    if where is None and message_of(diagnostic).startswith(ERROR_LIMIT_MESSAGE):
        remark = f"(reached verifying {context.generated.name}; clang reports no error after this)"
    return Diagnostic(
        where,
        message_of(diagnostic),
        fails=is_error or context.strict,
        notes=context.notes(notes),
        remarks=(remark,),
        in_header=True,
    )


def _instantiation_cause(context: ParseContext, unit: Any, diagnostic: Any, notes: list[Any]) -> Any:
    """The explicit instantiation in the generated text whose template body the diagnostic came from.

    The outermost "in instantiation of" frame (or the diagnostic itself) sits in the body of the
    template that a line of ours instantiated; its enclosing function names that template.
    """
    cindex = context.cindex
    instantiations = explicit_instantiations(unit, context.main_path, context.generated.text)
    for member in context.generated.included_files():  # an aggregator's members hold its instantiations
        instantiations += explicit_instantiations(unit, f"{context.source_root}/{member}", context.texts[member])
    if not instantiations:
        return None
    frames = [note for note in notes if note.spelling.startswith("in instantiation of")]
    location = frames[-1].location if frames else diagnostic.location
    enclosing = cindex.Cursor.from_location(unit, location).semantic_parent
    kinds = cindex.CursorKind
    function_kinds = {kinds.FUNCTION_DECL, kinds.FUNCTION_TEMPLATE, kinds.CXX_METHOD}
    while enclosing is not None and enclosing.kind not in function_kinds:
        if enclosing.kind == cindex.CursorKind.TRANSLATION_UNIT:
            enclosing = None
            break
        enclosing = enclosing.semantic_parent
    name = enclosing.spelling if enclosing is not None else None
    return next((token.location for token in instantiations if token.spelling == name), instantiations[0].location)


def explicit_instantiations(unit: Any, path: str, text: str) -> list[Any]:
    """The name token of each explicit instantiation definition in the file at `path`, from its
    tokens: libclang has no cursor for an explicit instantiation."""
    extent = unit.get_extent(path, (0, len(text.encode())))
    tokens = list(unit.get_tokens(extent=extent))
    found = []
    for index, token in enumerate(tokens):
        if token.spelling != "template" or index + 1 == len(tokens) or tokens[index + 1].spelling == "<":
            continue
        if index and tokens[index - 1].spelling == "extern":
            continue
        for following in range(index + 1, len(tokens)):
            if tokens[following].spelling in ("<", ";", "{", "("):
                if tokens[following].spelling == "<" and following > index + 1:
                    found.append(tokens[following - 1])
                break
    return found


def _notes_of(diagnostic: Any) -> list[Any]:
    """The notes worth showing: libclang also attaches the include stack as notes, which point at
    `#include` lines (naming a placeholder main file) and never say what went wrong."""
    return [note for note in diagnostic.children if not note.spelling.startswith("in file included from")]


def _key(diagnostic: Any) -> HeaderKey:
    location = diagnostic.location
    return (path_of(location), location.line, location.column, diagnostic.spelling)


def path_of(location: Any) -> str:
    return str(location.file.name) if location.file else ""


def message_of(diagnostic: Any) -> str:
    option = diagnostic.option
    return f"{diagnostic.spelling} [{option}]" if option and option.startswith("-W") else str(diagnostic.spelling)


def spell_header(path: str) -> str:
    if path.startswith(VIRTUAL_INCLUDE + "/"):
        return "<contract>/" + path[len(VIRTUAL_INCLUDE) + 1:]
    return path
