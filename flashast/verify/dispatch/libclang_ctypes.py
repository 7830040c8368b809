"""The C functions of libclang that the Python binding does not wrap, called through ctypes.

The dispatcher reader (`flashast.verify.dispatch.indexer`) needs three things `clang.cindex` lacks: where a
location is *spelled* (a call in a macro argument is on its own line, not the macro's), the value of
a constant expression (`if constexpr`), and libclang's indexing API with implicit template
instantiations (the only way to see the calls inside instantiated template bodies). They are
declared here on a handle of our own to the library the binding loaded: the binding's function
objects are shared, and keep their own declarations.

The structures mirror `Index.h` of libclang 18 (the pinned wheel): a change there is a change here.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from types import ModuleType
from typing import Any

# CXIndexOpt_IndexImplicitTemplateInstantiations; CXIdxEntity_Function, _CXXStaticMethod,
# _CXXInstanceMethod; CXIdxEntity_Template; CXEval_Int.
INDEX_IMPLICIT_INSTANTIATIONS, FUNCTION_ENTITIES, TEMPLATE_ENTITY, EVALUATED_INT = 0x4, frozenset({2, 20, 21}), 1, 1
Pointer = ctypes.c_void_p


class _String(ctypes.Structure):
    """`CXString`."""

    _fields_ = [("data", Pointer), ("private_flags", ctypes.c_uint)]


class _IndexLocation(ctypes.Structure):
    """`CXIdxLoc`."""

    _fields_ = [("ptr_data", Pointer * 2), ("int_data", ctypes.c_uint)]


class _Callbacks(ctypes.Structure):
    """`IndexerCallbacks`: only `indexEntityReference` is set."""

    _fields_ = [(name, Pointer) for name in ("abort_query", "diagnostic", "entered_main_file", "included_file",
                                             "imported_ast_file", "started_translation_unit", "index_declaration",
                                             "index_entity_reference")]


def _reference_info(cursor_type: type) -> type[ctypes.Structure]:
    """`CXIdxEntityRefInfo`, which holds cursors: built on the binding's `Cursor` structure."""

    class Entity(ctypes.Structure):  # CXIdxEntityInfo
        _fields_ = [("kind", ctypes.c_int), ("template_kind", ctypes.c_int), ("language", ctypes.c_int),
                    ("name", ctypes.c_char_p), ("usr", ctypes.c_char_p), ("cursor", cursor_type),
                    ("attributes", Pointer), ("attribute_count", ctypes.c_uint)]

    class Container(ctypes.Structure):  # CXIdxContainerInfo
        _fields_ = [("cursor", cursor_type)]

    class ReferenceInfo(ctypes.Structure):
        _fields_ = [("kind", ctypes.c_int), ("cursor", cursor_type), ("location", _IndexLocation),
                    ("entity", ctypes.POINTER(Entity)), ("parent", ctypes.POINTER(Entity)),
                    ("container", ctypes.POINTER(Container)), ("role", ctypes.c_int)]

    return ReferenceInfo


class LibclangFunctions:
    """The unwrapped functions, declared on our own handle to the library `cindex` loaded."""

    def __init__(self, cindex: ModuleType) -> None:
        self.cindex = cindex
        self.library = ctypes.CDLL(cindex.conf.lib._name)
        location, unsigned = cindex.SourceLocation, ctypes.POINTER(ctypes.c_uint)
        for name, arguments, result in (
            ("clang_getSpellingLocation", [location, ctypes.POINTER(Pointer), unsigned, unsigned, unsigned], None),
            ("clang_getCursorLocation", [cindex.Cursor], location),
            ("clang_getFileName", [Pointer], _String),
            ("clang_getCString", [_String], ctypes.c_char_p),
            ("clang_disposeString", [_String], None),
            ("clang_Cursor_Evaluate", [cindex.Cursor], Pointer),
            ("clang_EvalResult_getKind", [Pointer], ctypes.c_int),
            ("clang_EvalResult_getAsLongLong", [Pointer], ctypes.c_longlong),
            ("clang_EvalResult_dispose", [Pointer], None),
            ("clang_IndexAction_create", [Pointer], Pointer),
            ("clang_IndexAction_dispose", [Pointer], None),
            ("clang_indexTranslationUnit",
             [Pointer, Pointer, ctypes.POINTER(_Callbacks), ctypes.c_uint, ctypes.c_uint, Pointer], ctypes.c_int),
            ("clang_indexLoc_getCXSourceLocation", [_IndexLocation], location),
        ):
            function = getattr(self.library, name)
            function.argtypes, function.restype = arguments, result
        self._file_names: dict[int, str] = {}
        self._reference_info = _reference_info(cindex.Cursor)

    def spelling(self, location: Any) -> tuple[str, int, int, int]:
        """(file, line, column, offset) where the text at `location` is written."""
        file, line, column, offset = Pointer(), ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
        self.library.clang_getSpellingLocation(location, *map(ctypes.byref, (file, line, column, offset)))
        if file.value and file.value not in self._file_names:
            text = self.library.clang_getFileName(file.value)
            self._file_names[file.value] = (self.library.clang_getCString(text) or b"").decode(errors="replace")
            self.library.clang_disposeString(text)
        return self._file_names.get(file.value or 0, ""), line.value, column.value, offset.value

    def cursor_spelling(self, cursor: Any) -> tuple[str, int, int, int]:
        """`spelling` of where `cursor` is."""
        return self.spelling(self.library.clang_getCursorLocation(cursor))

    def index_spelling(self, location: Any) -> tuple[str, int, int, int]:
        """`spelling` of an indexer location (`CXIdxLoc`)."""
        return self.spelling(self.library.clang_indexLoc_getCXSourceLocation(location))

    def evaluate(self, cursor: Any) -> int | None:
        """The integer value of a constant expression, or None."""
        result = self.library.clang_Cursor_Evaluate(cursor)
        if not result:
            return None
        try:
            kind = self.library.clang_EvalResult_getKind(result)
            return int(self.library.clang_EvalResult_getAsLongLong(result)) if kind == EVALUATED_INT else None
        finally:
            self.library.clang_EvalResult_dispose(result)

    def index_references(self, unit: Any, on_reference: Callable[[Any], None]) -> None:
        """Call `on_reference` with every entity reference (`CXIdxEntityRefInfo`) in `unit`, implicit
        template instantiations included. An exception `on_reference` raises stops nothing in C (it
        must not cross into it); the first one is raised once indexing is done."""
        failures: list[BaseException] = []

        def called(_client: Any, pointer: Any) -> None:
            try:
                on_reference(pointer.contents)
            except BaseException as error:  # nothing may raise into C; re-raised below
                failures.append(error)

        callback = ctypes.CFUNCTYPE(None, Pointer, ctypes.POINTER(self._reference_info))(called)
        callbacks = _Callbacks(index_entity_reference=ctypes.cast(callback, Pointer))
        index = self.cindex.Index.create()
        action = self.library.clang_IndexAction_create(index.obj)
        try:
            self.library.clang_indexTranslationUnit(action, None, ctypes.byref(callbacks), ctypes.sizeof(callbacks),
                                                    INDEX_IMPLICIT_INSTANTIATIONS, unit.obj)
        finally:
            self.library.clang_IndexAction_dispose(action)
        if failures:
            raise failures[0]
