"""Reading a dispatcher with libclang: the specializations of function templates its translation
unit needs from other translation units (`required`), kept in the store while its inputs are unchanged.

A specialization is needed when the file odr-uses it (a call, an address taken) in code that is
compiled, and cannot instantiate it itself (the template is only declared there, or an `extern
template` spares it). Two readings:

- the **walk**: the cursors of the dispatcher file's own declarations, outside any template. A call
  in a lambda of a switch macro (flash-attention 2's `BOOL_SWITCH`) names constants, so it is a
  concrete specialization already. Code in a template (a function or class template, a generic
  lambda) is not walked: what it calls depends on how it is instantiated.
- the **indexer**, when a tracked template is referenced inside a template (flash-attention 3 calls
  its kernels from `run_mha_fwd_constexpr<Arch, Split, ...>`): libclang's indexing API with implicit
  template instantiations visits every instantiated body, so each call has concrete arguments. The
  Python binding does not wrap it; `flashast.verify.dispatch.libclang_ctypes` calls it through ctypes.
  References in uninstantiated templates (a container whose USR names a template pattern) are dropped.

Both leave out unevaluated operands (`decltype`, `sizeof`, ...) and, outside templates, the discarded
branch of an `if constexpr`. A call in a macro argument is located where it is spelled (its own line,
not the macro's first line). Arguments are spelled as the model spells them: types canonical and
fully qualified, integers in decimal, booleans `true`/`false` (the binding returns -1 for `true`, so
values are read through the primary template's parameter types).

The parse: a `.cu` dispatcher with the real-header command line (CUDA host code); any other file
(`flash_api.cpp`) as the host compiler sees it: C++ with the same include directories, defines and
resource directory, CUDA-only driver options dropped and CUDA's `include` a system directory. Both
are served the stand-ins for CUDA headers the toolkit lacks (`setup.cuda_stand_ins`: torch's
headers include CUDA's library headers in either language). The result is a verdict in the one
verdict store (`keys`), keyed by that command line, libclang and flashast (`setup.ParseSetup`), the
file and the tracked templates, with the digest of every file the parse read (its inclusion list)
and of the places where a new header would shadow one as its readings, and the references as its
payload; any change is a miss, and so is a damaged entry: the store reads it as untrusted
(`flashast.untrusted`: a regular file, bounded in size, depth and numbers) and every field of the
payload is checked here.

Reading is linear in the dispatcher's size: the unevaluated operands' and discarded branches' byte
ranges are `flashast.verify.dispatch.spans.Spans` (a reference in one is found by bisection), and each file's
text is read once.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from flashast.compat import FlashastDeprecationWarning
from flashast.errors import UsageError
from flashast.verify.diagnostics import Diagnostic, Location
from flashast.verify.dispatch.libclang_ctypes import FUNCTION_ENTITIES, TEMPLATE_ENTITY, LibclangFunctions
from flashast.verify.dispatch.spans import Spans, file_text, unevaluated_ranges
from flashast.verify.keys import STORE_NAME, Verdict, VerdictStore
from flashast.verify.reading import message_of, reportable
from flashast.verify.setup import parse_setup
from flashast.verify.sources import Sources
from flashast.verify.toolchain import VIRTUAL_SOURCE, VerifyOptions, clang_arguments, load_cindex, resource_dir_hint

_POSITION_MAXIMUM = (1 << 31) - 1  # libclang's lines and columns are unsigned 32-bit
# Driver options that mean something only for CUDA, dropped when a dispatcher is parsed as C++.
# The stand-ins' folder (`-idirafter`) stays: torch's headers want CUDA's library headers in C++ too.
CUDA_ONLY_ARGUMENTS = frozenset({"--cuda-host-only", "-nocudalib", "-nocudainc", "-Wno-unknown-cuda-version"})
# USR pieces of an uninstantiated template: a function template, a class template, a partial specialization.
PATTERN_MARKERS = ("@FT@", "@ST>", "@SP>")
_IF_CONSTEXPR = re.compile(rb"if\s+constexpr\b")


@dataclass(frozen=True)
class Reference:
    """One odr-use of a specialization: its primary template's qualified name, its arguments (None
    when one cannot be spelled, such as a parameter pack), where, and whether its template is tracked."""

    template: str
    arguments: tuple[str, ...] | None
    location: Location
    tracked: bool


@dataclass(frozen=True)
class Required:
    """What one dispatcher needs: its references, the parse's errors (then what it calls is
    unknown), whether the indexer was needed, whether the store answered, and this call's time."""

    dispatcher: str
    references: tuple[Reference, ...]
    problems: tuple[Diagnostic, ...] = ()
    indexed: bool = False
    cached: bool = False
    seconds: float = 0.0


def dispatcher_arguments(options: VerifyOptions, dispatcher: Path) -> list[str]:
    """The command line a dispatcher is parsed with (see the module's docstring)."""
    arguments = clang_arguments(options)
    if dispatcher.suffix == ".cu":
        return arguments
    converted = ["c++" if argument == "cuda" and arguments[position - 1] == "-x" else argument
                 for position, argument in enumerate(arguments)
                 if argument not in CUDA_ONLY_ARGUMENTS and not argument.startswith("--cuda-path=")]
    if options.cuda_includes and options.cuda_path is not None:
        converted.append(f"-isystem{options.cuda_path / 'include'}")
    return converted


def required(dispatcher: Path, options: VerifyOptions, templates: Collection[str],
             store: VerdictStore | Path | None = None,
             mode: Literal["auto", "walk", "index"] = "auto") -> Required:
    """What `dispatcher` needs from other translation units: specializations of `templates`
    (qualified names, or unqualified names matching any scope) from anywhere in its translation
    unit, of other templates from the file itself. Real-header mode only. `store`: the verdict
    store that keeps results (or None). `mode` forces the walk or the indexer."""
    if not options.real_headers:
        raise UsageError(f"--dispatcher {dispatcher}: reading a dispatcher needs the real headers (--include-dir)")
    path = Path(os.path.abspath(dispatcher))
    if not path.is_file():
        raise UsageError(f"--dispatcher {dispatcher}: no such file")
    if store is not None and not isinstance(store, VerdictStore):
        warnings.warn("required(..., store_directory) is deprecated: pass a VerdictStore (VerdictStore.default())",
                      FlashastDeprecationWarning, stacklevel=2)
        store = VerdictStore(Path(store) / STORE_NAME)
    store = store or VerdictStore(None)
    started = time.perf_counter()
    setup = parse_setup(options, f"dispatcher-{mode}", dispatcher_arguments(options, path))
    key = setup.key(setup.portable(str(path)), sorted(templates))
    sources = Sources([], setup, VIRTUAL_SOURCE)
    disk = sources.current(setup.stand_ins)
    stored = store.lookup(key, disk)
    found = _stored(stored.payload, setup.local) if stored is not None else None
    if found is not None:
        return Required(str(path), found[0], (), found[1], True, time.perf_counter() - started)
    cindex = load_cindex()
    try:
        unit = cindex.Index.create().parse(str(path), list(setup.arguments), list(setup.stand_ins), 0)
    except cindex.TranslationUnitLoadError as error:
        raise UsageError(f"--dispatcher {dispatcher}: libclang cannot parse it ({error})") from None
    problems = tuple(_problem(diagnostic, path, options) for diagnostic in reportable(cindex, unit)
                     if diagnostic.severity >= cindex.Diagnostic.Error)
    reader = _Reader(cindex, unit, str(path), frozenset(templates))
    references = reader.walk()
    indexed = mode == "index" or (mode == "auto" and reader.dependent)
    if indexed:
        references = reader.index()
    if not problems:
        readings = ((setup.portable(str(path)), disk(setup.portable(str(path))) or ""),
                    *sources.readings(unit, setup.stand_ins))
        store.remember([Verdict(key, readings, _payload(references, indexed, setup.portable))])
    return Required(str(path), tuple(references), problems, indexed, False, time.perf_counter() - started)


def display_path(path: str) -> str:
    """A path as the user would write it: relative to the working directory when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _problem(diagnostic: Any, path: Path, options: VerifyOptions) -> Diagnostic:
    location = diagnostic.location
    where = Location(display_path(str(location.file.name)), location.line, location.column) if location.file else None
    remarks = [f"(reading the dispatcher {display_path(str(path))}: what it calls is unknown until this is fixed)"]
    if "file not found" in str(diagnostic.spelling) and options.resource_dir is None:
        remarks.append(resource_dir_hint())
    return Diagnostic(where, message_of(diagnostic), fails=True, remarks=tuple(remarks), in_header=True)


def _payload(references: list[Reference], indexed: bool, portable: Callable[[str], str]) -> object:
    """What the store keeps of a reading besides its readings (file names `portable`, as in keys)."""
    return {"indexed": indexed, "references": [
        [reference.template, reference.arguments, portable(reference.location.file), reference.location.line,
         reference.location.column, reference.tracked] for reference in references]}


def _stored(data: object, local: Callable[[str], str]) -> tuple[tuple[Reference, ...], bool] | None:
    """The stored references, if every field is what `_payload` writes (file names `local` again);
    a damaged entry is a miss."""
    if not isinstance(data, dict) or not isinstance(data.get("indexed"), bool):
        return None
    stored = data.get("references")
    if not isinstance(stored, list):
        return None
    references = [_stored_reference(item) for item in stored]
    if any(reference is None for reference in references):
        return None
    return tuple(replace(reference, location=replace(reference.location, file=local(reference.location.file)))
                 for reference in references if reference is not None), data["indexed"]


def _stored_reference(item: object) -> Reference | None:
    """One stored `[template, arguments, file, line, column, tracked]`, if each field is what `_store` writes."""
    if not isinstance(item, list) or len(item) != 6:
        return None
    template, arguments, file, line, column, tracked = item
    if not (isinstance(template, str) and isinstance(file, str) and isinstance(tracked, bool)
            and _is_position(line) and _is_position(column)):
        return None
    if arguments is not None and not (isinstance(arguments, list)
                                      and all(isinstance(argument, str) for argument in arguments)):
        return None
    return Reference(template, None if arguments is None else tuple(arguments), Location(file, line, column), tracked)


def _is_position(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _POSITION_MAXIMUM


class _Reader:
    """One parse's references, by walk or by indexer."""

    def __init__(self, cindex: ModuleType, unit: Any, main_path: str, tracked: frozenset[str]) -> None:
        self.cindex, self.unit, self.main_path, self.tracked = cindex, unit, main_path, tracked
        self.names = {name.rsplit("::", 1)[-1] for name in tracked}
        self.library = LibclangFunctions(cindex)
        kinds = self.kinds = cindex.CursorKind
        self.functions = {kinds.FUNCTION_DECL, kinds.CXX_METHOD}
        self.templates = {kinds.FUNCTION_TEMPLATE, kinds.CLASS_TEMPLATE, kinds.CLASS_TEMPLATE_PARTIAL_SPECIALIZATION}
        self.discarded: dict[str, Spans] = {}  # per file, the `if constexpr` branches not compiled
        self.dependent = False  # a tracked template referenced inside a template: the indexer is needed
        self._spelled: dict[Any, tuple[str, tuple[str, ...] | None]] = {}
        self._unevaluated: dict[str, Spans] = {}
        self._texts: dict[str, bytes] = {}

    def text(self, file: str) -> bytes:
        """The file's bytes, read once per parse (every `if constexpr` in it asks)."""
        if file not in self._texts:
            self._texts[file] = file_text(file)
        return self._texts[file]

    def walk(self) -> list[Reference]:
        found = []
        stack = [(cursor, False) for cursor in reversed(list(self.unit.cursor.get_children()))
                 if cursor.location.file is not None and cursor.location.file.name == self.main_path]
        while stack:
            cursor, templated = stack.pop()
            kind = cursor.kind
            templated = templated or self._opens_template(cursor)
            if kind in (self.kinds.DECL_REF_EXPR, self.kinds.MEMBER_REF_EXPR, self.kinds.OVERLOADED_DECL_REF):
                if templated:
                    self.dependent = self.dependent or cursor.spelling in self.names
                elif kind != self.kinds.OVERLOADED_DECL_REF:
                    where = self.library.cursor_spelling(cursor)
                    found += self._reference(cursor.referenced, where)
            children = list(cursor.get_children())
            if kind == self.kinds.IF_STMT and not templated:
                children = self._live_branches(cursor, children)
            stack.extend((child, templated) for child in reversed(children))
        return found

    def _opens_template(self, cursor: Any) -> bool:
        """A template, a member of a class template defined outside it, or a generic lambda."""
        kind = cursor.kind
        if kind in self.functions or kind == self.kinds.CONSTRUCTOR:
            return cursor.semantic_parent is not None and cursor.semantic_parent.kind in self.templates
        if kind == self.kinds.LAMBDA_EXPR:
            return any(child.kind == self.kinds.TEMPLATE_TYPE_PARAMETER
                       or (child.kind == self.kinds.PARM_DECL and "auto" in child.type.spelling)
                       for child in cursor.get_children())
        return kind in self.templates

    def _live_branches(self, cursor: Any, children: list[Any]) -> list[Any]:
        """An `if constexpr` outside templates: its condition and the branch that is compiled; the
        other's extent is remembered, so the indexer leaves its calls out too."""
        if len(children) not in (2, 3) or not children[0].kind.is_expression():
            return children
        file, _, _, offset = self.library.cursor_spelling(cursor)
        value = self.library.evaluate(children[0]) if _IF_CONSTEXPR.match(self.text(file), offset) else None
        if value is None:
            return children
        condition, then, *otherwise = children
        live, dead = ([condition, then], otherwise) if value else ([condition, *otherwise], [then])
        for branch in dead:
            start, end = self.library.spelling(branch.extent.start), self.library.spelling(branch.extent.end)
            self.discarded.setdefault(start[0], Spans()).add(start[3], end[3])
        return live

    def index(self) -> list[Reference]:
        found: list[Reference] = []
        names = {name.encode() for name in self.names}
        self.library.index_references(self.unit, lambda info: found.extend(self._indexed(info, names)))
        return found

    def _indexed(self, info: Any, names: set[bytes]) -> list[Reference]:
        entity = info.entity.contents if info.entity else None
        if entity is None or (entity.name not in names and not (
                entity.template_kind == TEMPLATE_ENTITY and entity.kind in FUNCTION_ENTITIES)):
            return []
        if info.container and any(marker in self._copy(info.container.contents.cursor).get_usr()
                                  for marker in PATTERN_MARKERS):
            return []  # inside a template that is not instantiated: nothing there is compiled
        where = self.library.index_spelling(info.location)
        return self._reference(self._copy(info.cursor).referenced, where)

    def _copy(self, cursor: Any) -> Any:
        copy = self.cindex.Cursor.from_buffer_copy(cursor)
        copy._tu = self.unit
        return copy

    def _reference(self, declaration: Any, where: tuple[str, int, int, int]) -> list[Reference]:
        """The specialization `declaration` is, if this file needs it from elsewhere: of a tracked
        template from anywhere in the unit, of any other only from the dispatcher file itself."""
        if declaration is None or declaration.kind not in self.functions:
            return []
        if declaration.get_num_template_arguments() < 0:
            return []
        file, line, column, offset = where
        if declaration not in self._spelled:
            primary = self.cindex.conf.lib.clang_getSpecializedCursorTemplate(declaration)
            self._spelled[declaration] = (qualified_name(primary or declaration),
                                          spell_arguments(self.cindex, declaration, primary))
        template, arguments = self._spelled[declaration]
        tracked = template in self.tracked or template.rsplit("::", 1)[-1] in self.tracked
        if (not tracked and file != self.main_path) or declaration.get_definition() is not None:
            return []  # another file's business, or instantiated here: no other translation unit needed
        if file in self.discarded and offset in self.discarded[file]:
            return []
        if file not in self._unevaluated:
            self._unevaluated[file] = Spans(unevaluated_ranges(self.unit, file, self.text(file)))
        if offset in self._unevaluated[file]:
            return []
        return [Reference(template, arguments, Location(file, line, column), tracked)]


def qualified_name(cursor: Any) -> str:
    """`flash::run_mha_fwd_`: the name with every enclosing namespace and class."""
    parts = [cursor.spelling]
    parent = cursor.semantic_parent
    while parent is not None and parent.kind.name != "TRANSLATION_UNIT":
        parts.append(parent.spelling or "(anonymous namespace)")
        parent = parent.semantic_parent
    return "::".join(reversed(parts))


def spell_arguments(cindex: ModuleType, declaration: Any, primary: Any) -> tuple[str, ...] | None:
    """The specialization's template arguments as the model spells them, or None if one is not a
    type or an integer (a parameter pack, a template)."""
    parameter_kinds = (cindex.CursorKind.TEMPLATE_TYPE_PARAMETER, cindex.CursorKind.TEMPLATE_NON_TYPE_PARAMETER,
                       cindex.CursorKind.TEMPLATE_TEMPLATE_PARAMETER)
    types = [child.type.kind for child in (primary.get_children() if primary is not None else ())
             if child.kind in parameter_kinds]
    unsigned = (cindex.TypeKind.UINT, cindex.TypeKind.ULONG, cindex.TypeKind.ULONGLONG, cindex.TypeKind.USHORT,
                cindex.TypeKind.UCHAR)
    spelled = []
    for index in range(declaration.get_num_template_arguments()):
        try:
            kind = declaration.get_template_argument_kind(index)
        except ValueError:  # kinds the binding does not name (a pack, a template)
            return None
        if kind == cindex.TemplateArgumentKind.TYPE:
            spelled.append(declaration.get_template_argument_type(index).get_canonical().spelling)
        elif kind != cindex.TemplateArgumentKind.INTEGRAL or index >= len(types):
            return None
        elif types[index] == cindex.TypeKind.BOOL:
            spelled.append("true" if declaration.get_template_argument_value(index) else "false")
        elif types[index] in unsigned:
            spelled.append(str(declaration.get_template_argument_unsigned_value(index)))
        else:
            spelled.append(str(declaration.get_template_argument_value(index)))
    return tuple(spelled)
