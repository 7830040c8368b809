"""Reading a file someone else made: one the user names (a ninja log) or one a cache holds (a store entry).

Such a file is whatever is at the path when we look, so each reader here assumes nothing:

- **regular files only**: the path is opened without waiting (`O_NONBLOCK`), so a FIFO is never
  blocked on, and refused, like a directory or a device (`/dev/zero` would be read until memory ran
  out);
- **bounded size**: at most `limit` bytes are read, and a larger file is refused rather than read
  further;
- **bounded numbers**, in ASCII: a format that says digits means `0`-`9` (Python's `int` and the
  regular expression `\\d` also take `٧`), with at most as many as the value's range has (`int` of a
  5,000-digit string raises, and a huge value overflows the float it later becomes);
- **JSON as data**: integers bounded, no floats, `NaN` or `Infinity` (a line number `1e999` is a
  float too large for `int`), and nesting bounded (100,000 `[` would exhaust the recursion limit).

Each failure is an `UntrustedFileError` with a reason worded for a one-line message: a user's file
makes it a usage error naming the file, a cache entry makes it a miss.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

MEBIBYTE = 1 << 20
# The deepest JSON flashast writes is a list of lists of lists; 32 leaves room and stays far below
# the interpreter's recursion limit.
JSON_DEPTH = 32
_JSON_INTEGER_DIGITS = 19  # every int of 63 bits, and nothing that could overflow later
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class UntrustedFileError(Exception):
    """A file handed to flashast is not what its format allows; `reason` says why, in a few words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class NotARegularFile(UntrustedFileError):
    """The path names a directory, a FIFO, a device or a socket: the user likely gave the wrong path."""


def read_regular_file(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file at `path`, if it holds at most `limit` of them."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise NotARegularFile("is a directory, not a regular file") from None
    except OSError as error:
        raise UntrustedFileError(f"cannot read ({error.strerror})") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a file")
            raise NotARegularFile(f"is {kind}, not a regular file")
        # Read one byte past the limit: a file that grows while it is read is caught too.
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, MEBIBYTE))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise UntrustedFileError(f"is larger than {_size(limit)}")
        return b"".join(chunks)
    except OSError as error:
        raise UntrustedFileError(f"cannot read ({error.strerror})") from None
    finally:
        os.close(descriptor)


def ascii_natural(text: str, digits: int, maximum: int | None = None) -> int | None:
    """`text` as a non-negative int if it is 1 to `digits` ASCII digits (and at most `maximum`),
    else None. The digits are checked before `int` sees them."""
    if not 0 < len(text) <= digits or not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return None if maximum is not None and value > maximum else value


_ASCII_DIGITS = re.compile(r"[0-9]+")


def load_json(data: bytes) -> Any:
    """`data` decoded as UTF-8 JSON holding only strings, bounded ints, booleans, null, lists and
    objects, nested at most `JSON_DEPTH` deep."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UntrustedFileError("is not UTF-8") from None
    _check_depth(text)
    try:
        return json.loads(text, parse_int=_json_integer, parse_float=_no_float, parse_constant=_no_float)
    except ValueError as error:  # JSONDecodeError included
        reason = error.reason if isinstance(error, _RefusedInJson) else f"is not JSON ({error})"
        raise UntrustedFileError(reason) from None


class _RefusedInJson(ValueError):
    """A hook of `json.loads` refusing a number (a `ValueError`, which `json` passes on as it is)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _json_integer(text: str) -> int:
    if len(text.lstrip("-")) > _JSON_INTEGER_DIGITS:
        raise _RefusedInJson(f"holds an integer of more than {_JSON_INTEGER_DIGITS} digits")
    return int(text)


def _no_float(text: str) -> float:
    raise _RefusedInJson(f"holds a number that is not an integer ({text[:20]})")


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than `JSON_DEPTH`, counted outside strings, before `json` recurses."""
    depth = 0
    for token in _STRUCTURE.finditer(text):
        character = token.group()
        if character in "[{":
            depth += 1
            if depth > JSON_DEPTH:
                raise UntrustedFileError(f"is nested more than {JSON_DEPTH} deep")
        elif character in "]}":
            depth -= 1


# A string literal (skipped whole, escapes included) or one bracket.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _size(limit: int) -> str:
    return f"{limit // MEBIBYTE} MiB" if limit >= MEBIBYTE and limit % MEBIBYTE == 0 else f"{limit} bytes"
