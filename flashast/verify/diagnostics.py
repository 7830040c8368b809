"""What verification found, as frozen records, rendered to text once at the end of a run.

A `Diagnostic` says where (a generated file's own name, line and column; a header's path; or the
command line), whether it fails the run, clang's message and notes, and the configuration the
generated file came from. Parsing code builds records and never text, so the same problem seen by
two parses is the same record (compared by value), and reports are de-duplicated as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """A place in a file as the user knows it: a generated file's name, a header's path, or
    `<contract>/NAME` for a contract's virtual header."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True)
class Note:
    """A note clang attached (a candidate it rejected, an instantiation frame)."""

    message: str
    location: Location | None = None

    def render(self) -> str:
        return f"    {self.location}: note: {self.message}" if self.location else f"    note: {self.message}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem, located where the user can act on it.

    `file` names the generated file the problem is charged to (None for a header's own problem);
    `fails` decides whether it fails the run (an error, a warning in a generated file, a header
    warning under `--strict`); `remarks` are the lines flashast adds to explain it; `origin` is the
    preset, kind and axis values of the generated file, so the user knows which configuration to fix.
    """

    location: Location | None
    message: str
    fails: bool
    file: str | None = None
    notes: tuple[Note, ...] = ()
    remarks: tuple[str, ...] = ()
    origin: str | None = None
    in_header: bool = False

    def render(self) -> str:
        where = str(self.location) if self.location else "<command line>"
        lines = [f"{where}: {'error' if self.fails else 'warning'}: {self.message}"]
        lines += [note.render() for note in self.notes]
        lines += [f"    {remark}" for remark in self.remarks]
        if self.origin:
            lines.append(f"    from: {self.origin}")
        return "\n".join(lines)


@dataclass
class Report:
    """Everything one verification found, in the order it was found.

    `parsed` counts the files libclang parsed this run and `reused` those whose verdict an earlier
    run proved for exactly these inputs (see `flashast.verify.keys`).
    """

    files: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    parsed: int = 0
    reused: int = 0

    def add(self, diagnostic: Diagnostic) -> None:
        """Record a diagnostic; a header's own problem seen again (by another parse) is not repeated."""
        if diagnostic.in_header and any(
            known.in_header and known.location == diagnostic.location and known.message == diagnostic.message
            for known in self.diagnostics
        ):
            return
        self.diagnostics.append(diagnostic)

    @property
    def errors(self) -> list[Diagnostic]:
        return [diagnostic for diagnostic in self.diagnostics if diagnostic.fails]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [diagnostic for diagnostic in self.diagnostics if not diagnostic.fails]

    @property
    def failing_files(self) -> set[str]:
        return {diagnostic.file for diagnostic in self.errors if diagnostic.file is not None}

    @property
    def header_problems(self) -> int:
        return sum(1 for diagnostic in self.errors if diagnostic.in_header)

    @property
    def failed(self) -> bool:
        return any(diagnostic.fails for diagnostic in self.diagnostics)

    def text(self, header_warnings: bool = True) -> str:
        """Every diagnostic, errors first, each rendered once; without `header_warnings`, the warnings
        inside headers (third-party ones are many, and never a generated file's fault) are counted."""
        shown = [*self.errors, *(warning for warning in self.warnings if header_warnings or not warning.in_header)]
        lines = [diagnostic.render() for diagnostic in shown]
        hidden = len(self.errors) + len(self.warnings) - len(shown)
        if hidden:
            lines.append(f"({hidden} warning(s) inside headers not shown; --header-warnings lists them)")
        return "\n".join(lines)

    def summary(self, levels: Sequence[str] = ()) -> str:
        """`levels`: how many files failed at which level ("1 on the host side", ...), when there are several."""
        parts = [f"{len(self.errors)} error(s) in {len(self.failing_files)} of {self.files} file(s)"]
        if levels:
            parts[0] += f" ({', '.join(levels)})"
        if self.header_problems:
            parts.append(f"{self.header_problems} problem(s) in headers")
        return "verification failed: " + ", ".join(parts) + "; nothing was written"
