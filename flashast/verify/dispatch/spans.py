"""Byte ranges of a file that reading a dispatcher leaves out, and whether an offset lies in one.

A reference inside `decltype(...)`, `sizeof(...)` and the like is not an odr-use, nor is one in the
discarded branch of an `if constexpr`. A dispatcher can have tens of thousands of both, so the
ranges are found in one pass over the tokens (each parenthesis matched once) and kept sorted and
merged (`Spans`): whether an offset lies in one is a bisection, and reading stays linear in the file.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

UNEVALUATED_OPERATORS = frozenset({"decltype", "sizeof", "alignof", "noexcept", "typeid", "__alignof__"})
_UNEVALUATED_WORD = re.compile(rb"\b(?:" + b"|".join(map(str.encode, sorted(UNEVALUATED_OPERATORS))) + rb")\b")


class Spans:
    """Byte ranges of one file, kept sorted and merged, so whether an offset lies in one is a bisection
    (a dispatcher can have tens of thousands of `sizeof` or `decltype` operands)."""

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for start, end in sorted(spans):
            if self.ends and start <= self.ends[-1]:
                self.ends[-1] = max(self.ends[-1], end)
            else:
                self.starts.append(start)
                self.ends.append(end)

    def add(self, start: int, end: int) -> None:
        """Take in `[start, end)`, merged with every range it touches."""
        first = bisect_left(self.ends, start)
        last = bisect_right(self.starts, end)
        if first < last:
            start, end = min(start, self.starts[first]), max(end, self.ends[last - 1])
        self.starts[first:last] = [start]
        self.ends[first:last] = [end]

    def __contains__(self, offset: int) -> bool:
        index = bisect_right(self.starts, offset) - 1
        return index >= 0 and offset < self.ends[index]


def file_text(file: str) -> bytes:
    """The file's bytes, or none if it cannot be read (then no range is found in it)."""
    try:
        with open(file, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def unevaluated_ranges(unit: Any, file: str, text: bytes) -> Iterator[tuple[int, int]]:
    """The byte ranges of `decltype(...)`, `sizeof(...)` and the like in `file`, from its tokens:
    each parenthesis is matched once, in one pass, so the operands cost what the tokens do."""
    size = len(text)
    if not _UNEVALUATED_WORD.search(text) and b"\\\n" not in text and b"\\\r" not in text:
        return  # no such word (unless a line splice hides one): no operand, and no tokens to list
    tokens = [(token.spelling, token.extent.start.offset)
              for token in unit.get_tokens(extent=unit.get_extent(file, (0, size)))]
    closing: dict[int, int] = {}  # the position of each `(` to the offset just past its `)`
    opened: list[int] = []
    for position, (spelling, offset) in enumerate(tokens):
        if spelling == "(":
            opened.append(position)
        elif spelling == ")" and opened:
            closing[opened.pop()] = offset + 1
    for position, (spelling, offset) in enumerate(tokens[:-1]):
        if spelling in UNEVALUATED_OPERATORS and tokens[position + 1][0] == "(":
            yield offset, closing.get(position + 1, size)
