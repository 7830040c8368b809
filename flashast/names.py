"""Validated atoms: identifiers, qualified names, macro names, include paths, file names and the
text of comments that sit inside a line of code.

Each atom checks its text once, on construction, so every node built from atoms can only print C++
tokens that lex as intended. A rejected value raises `ModelError` naming the class, field and value.
Atoms are frozen and compare by value; `str()` gives their C++ spelling.

An include path is text for the compiler, not a place flashast writes, so it may climb with `..`
(`#include "../fattn-vec.cuh"`); a `FileName`, which does name a place flashast writes, is plain
segments (a name, or a path under subdirectories) and never leaves the output directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flashast.errors import ModelError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# C++17 keywords and alternative tokens (plus C++20's, which would break a later upgrade of the
# language standard), none of which can name anything.
CPP_KEYWORDS = frozenset(
    """
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
    char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
    co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
    extern false float for friend goto if inline int long mutable namespace new noexcept not not_eq
    nullptr operator or or_eq private protected public register reinterpret_cast requires return
    short signed sizeof static static_assert static_cast struct switch template this thread_local
    throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while
    xor xor_eq
    """.split()
)

# Types spelled with keywords; they may stand where a type is expected but never as a name.
FUNDAMENTAL_TYPES = frozenset(
    {
        "void", "bool", "char", "signed char", "unsigned char", "short", "unsigned short", "int",
        "unsigned", "unsigned int", "long", "unsigned long", "long long", "unsigned long long",
        "float", "double", "long double", "char16_t", "char32_t", "wchar_t",
    }
)

# The longest file name common file systems hold (ext4, XFS, Btrfs, APFS, NTFS: 255 bytes or units).
FILE_NAME_LIMIT = 255
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_.+-]+\Z")


def _require_text(owner: str, field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ModelError(owner, field, value, f"must be a str, not {type(value).__name__}")
    return value


def check_identifier(owner: str, field: str, value: object) -> str:
    """Return `value` if it is a C++ identifier that is not a keyword; raise `ModelError` otherwise."""
    text = _require_text(owner, field, value)
    if not text:
        raise ModelError(owner, field, value, "an identifier cannot be empty")
    if text[0].isdigit():
        raise ModelError(owner, field, value, "an identifier cannot start with a digit")
    if not _IDENTIFIER.match(text):
        raise ModelError(owner, field, value, "an identifier holds only letters, digits and '_'")
    if text in CPP_KEYWORDS:
        raise ModelError(owner, field, value, "a C++ keyword cannot be used as a name")
    return text


@dataclass(frozen=True, slots=True)
class Identifier:
    """One unqualified C++ name, such as `run_mha_fwd_` or `params`."""

    text: str

    def __post_init__(self) -> None:
        check_identifier("Identifier", "text", self.text)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class MacroName:
    """A preprocessor macro used as a name (`FLASH_NAMESPACE`) or tested by a guard."""

    text: str

    def __post_init__(self) -> None:
        check_identifier("MacroName", "text", self.text)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class QualifiedName:
    """A possibly qualified name, `cutlass::half_t`; `absolute` prints a leading `::`."""

    parts: tuple[Identifier, ...]
    absolute: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.parts, tuple) or not self.parts:
            raise ModelError("QualifiedName", "parts", self.parts, "needs a non-empty tuple of Identifier")
        for part in self.parts:
            if not isinstance(part, Identifier):
                raise ModelError("QualifiedName", "parts", self.parts, f"{part!r} is not an Identifier")

    @classmethod
    def parse(cls, text: str) -> QualifiedName:
        """Build from the C++ spelling, `"cutlass::half_t"`; every segment must be an identifier."""
        _require_text("QualifiedName", "text", text)
        absolute = text.startswith("::")
        body = text[2:] if absolute else text
        parts = []
        for segment in body.split("::"):
            try:
                parts.append(Identifier(segment))
            except ModelError as error:
                raise ModelError("QualifiedName", "text", text, error.problem) from None
        return cls(tuple(parts), absolute)

    @property
    def last(self) -> Identifier:
        return self.parts[-1]

    def __str__(self) -> str:
        return ("::" if self.absolute else "") + "::".join(part.text for part in self.parts)


@dataclass(frozen=True, slots=True)
class FundamentalType:
    """A type spelled with keywords (`void`, `int`, `unsigned long`), which no `Identifier` can hold."""

    text: str

    def __post_init__(self) -> None:
        _require_text("FundamentalType", "text", self.text)
        if self.text not in FUNDAMENTAL_TYPES:
            raise ModelError("FundamentalType", "text", self.text, "not a fundamental C++ type")

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class IncludePath:
    """The path inside an `#include`: relative, one line, no quotes or brackets.

    `..` segments are ordinary C++ (`../fattn-vec.cuh` names the header beside the including file's
    directory) and allowed; where such a path leads is the compiler's business, not flashast's.
    """

    text: str

    def __post_init__(self) -> None:
        text = _require_text("IncludePath", "text", self.text)
        if not text:
            raise ModelError("IncludePath", "text", text, "an include path cannot be empty")
        if text.startswith("/") or re.match(r"[A-Za-z]:", text):
            raise ModelError("IncludePath", "text", text, "an include path must be relative")
        for bad, why in (('"', "a quote"), ("<", "'<'"), (">", "'>'"), ("\\", "a backslash")):
            if bad in text:
                raise ModelError("IncludePath", "text", text, f"an include path cannot contain {why}")
        if "\n" in text or "\r" in text:
            raise ModelError("IncludePath", "text", text, "an include path cannot contain a newline")
        for segment in text.split("/"):
            if not _PATH_SEGMENT.match(segment):
                raise ModelError(
                    "IncludePath", "text", text, f"segment {segment!r} is empty or holds unusual characters"
                )

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class FileName:
    """The name of one generated file, relative to the output directory: a plain name (`cutlassF.h`),
    or one under subdirectories (`kernels/sm80/fwd.cu`) for a generator that writes them. Every
    segment is letters, digits and `_.+-`, never hidden (so never `..` or the manifest), never empty."""

    text: str

    def __post_init__(self) -> None:
        text = _require_text("FileName", "text", self.text)
        for segment in text.split("/"):
            if not _FILE_NAME.match(segment):
                raise ModelError(
                    "FileName",
                    "text",
                    text,
                    "a generated file name is '/'-separated segments of letters, digits and '_.+-', none empty"
                    " or starting with '.'",
                )
            if len(segment.encode()) > FILE_NAME_LIMIT:
                problem = f"longer than {FILE_NAME_LIMIT} bytes, which no common file system holds"
                raise ModelError("FileName", "text", text, problem)

    def __str__(self) -> str:
        return self.text


TypeName = QualifiedName | FundamentalType


def type_name(text: str | TypeName) -> TypeName:
    """Accept a type as C++ spelling or as an atom; keyword spellings become `FundamentalType`."""
    if isinstance(text, (QualifiedName, FundamentalType)):
        return text
    _require_text("TypeName", "text", text)
    if text in FUNDAMENTAL_TYPES:
        return FundamentalType(text)
    return QualifiedName.parse(text)


# Comment text ----------------------------------------------------------------------------------------


def check_comment_text(owner: str, field: str, value: object) -> str:
    """Text any comment may hold: a str of one line that a UTF-8 file can hold, without NUL."""
    text = _require_text(owner, field, value)
    if "\n" in text or "\r" in text:
        raise ModelError(owner, field, value, "comment text cannot contain a newline")
    if "\0" in text:
        raise ModelError(owner, field, value, "a comment cannot hold a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError(owner, field, value, "holds a lone surrogate, which no UTF-8 file can hold") from None
    return text


def check_line_comment_text(owner: str, field: str, value: object) -> str:
    """The text after `// `: one line that cannot reach into the next one."""
    text = check_comment_text(owner, field, value)
    # clang and gcc take a backslash followed only by spaces or tabs before the line break as a line
    # splice too (clang warns, -Wbackslash-newline-escape), so what counts is the end without them.
    end = text.rstrip(" \t\v\f")
    if end.endswith("\\"):
        raise ModelError(owner, field, value, "a trailing backslash would splice the next line into the comment")
    if end.endswith("??/"):
        # `??/` is the trigraph for a backslash before C++17: it would splice the next line there.
        raise ModelError(owner, field, value, "a trailing '??/' (a backslash trigraph) would splice the next line")
    return text


def check_block_comment_text(owner: str, field: str, value: object) -> str:
    """One line of the text between `/*` and `*/`: it cannot close the comment early (`*/`), open
    what clang's -Wcomment reports as a nested one (`/*`), or splice the next line (which could join a
    `*` and a `/` across the line break)."""
    text = check_line_comment_text(owner, field, value)
    if "*/" in text:
        raise ModelError(owner, field, value, "'*/' would end the block comment early")
    if "/*" in text:
        raise ModelError(owner, field, value, "'/*' inside a block comment is a warning (-Wcomment)")
    return text


@dataclass(frozen=True, slots=True)
class InlineComment:
    """`/*text*/` inside a line of code, such as the `/*Headdim=*/` before a template argument.

    The text is printed exactly as given (no spaces added), so it cannot end with `/` either: that
    `/` and the closing `*/` would spell `/*` inside the comment.
    """

    text: str

    def __post_init__(self) -> None:
        check_block_comment_text("InlineComment", "text", self.text)
        if self.text.endswith("/"):
            raise ModelError("InlineComment", "text", self.text, "a final '/' would spell '/*' with the closing '*/'")

    def __str__(self) -> str:
        return f"/*{self.text}*/"


@dataclass(frozen=True, slots=True)
class TrailingComment:
    """`// text` after a declaration or directive on the same line, `spaces` spaces after the code
    (`#include "x.h"  // IWYU pragma: export` has two)."""

    text: str
    spaces: int = 1

    def __post_init__(self) -> None:
        check_line_comment_text("TrailingComment", "text", self.text)
        if isinstance(self.spaces, bool) or not isinstance(self.spaces, int) or not 1 <= self.spaces <= 80:
            raise ModelError("TrailingComment", "spaces", self.spaces, "must be an int from 1 to 80")

    def __str__(self) -> str:
        return " " * self.spaces + (f"// {self.text}" if self.text else "//")
