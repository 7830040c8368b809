"""The spellings of flashast 0.1.0's extension API that 0.2.0 changed, kept working with a warning.

A plugin is code its user wrote against one version and runs with the next, so a public name or
signature that changes keeps working for at least one minor version: it does what it did, and emits a
`FlashastDeprecationWarning` (a `DeprecationWarning`) naming what to write instead and the version
that removes it. `CHANGELOG.md` lists each one under "Deprecated".

Python hides a `DeprecationWarning` raised outside `__main__`, which is where plugin code runs, so
the CLI shows them itself (`deprecations_reported`): one line per deprecated spelling, at the first
place the plugin used it.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO, TypeVar

DEPRECATED_SINCE = "0.2.0"
REMOVED_IN = "0.3.0"


class FlashastDeprecationWarning(DeprecationWarning):
    """A spelling of flashast's API that still works and will stop working in `REMOVED_IN`."""


def warn_deprecated(old: str, new: str, stacklevel: int = 2) -> None:
    """Warn that `old` is deprecated; `new` is what to write instead.

    `stacklevel` counts from the caller of this function, as `warnings.warn` does from its own caller,
    so that the warning names the user's line, not flashast's.
    """
    warnings.warn(
        f"{old} is deprecated since flashast {DEPRECATED_SINCE} and stops working in {REMOVED_IN}; {new}",
        FlashastDeprecationWarning,
        stacklevel=stacklevel + 1,
    )


Class = TypeVar("Class", bound=type)


def positional_fields(*names: str) -> Callable[[Class], Class]:
    """Class decorator: the class's fields after its first one are keyword-only, but 0.1.0 took
    them positionally in the order `names`; such a call still works, with a warning.

    It wraps the `__init__` the dataclass generated, so type checkers see only the keyword-only
    signature (typed code is told at check time) while old plugins run.
    """

    def decorate(cls: Class) -> Class:
        keyword_only_init = cls.__dict__["__init__"]  # the one the dataclass generated
        class_name = cls.__name__

        # `wraps`: help() and editors show the keyword-only signature (through `__wrapped__`).
        @functools.wraps(keyword_only_init)
        def __init__(self: Any, *arguments: Any, **keywords: Any) -> None:
            positional = arguments[1:]  # the first is the name, positional as ever
            if positional:
                if len(positional) > len(names):
                    raise TypeError(
                        f"{class_name}() takes 1 positional argument and at most {len(names)} deprecated"
                        f" positional ones ({', '.join(names)}), but {len(arguments)} were given"
                    )
                given = names[: len(positional)]
                for name in given:
                    if name in keywords:
                        raise TypeError(f"{class_name}() got multiple values for argument {name!r}")
                keywords.update(zip(given, positional, strict=True))
                old = f"{class_name}(name, {', '.join(given)}) with positional arguments"
                new = f"write {class_name}(name, {', '.join(f'{name}=...' for name in given)})"
                warn_deprecated(old, new)
            keyword_only_init(self, *arguments[:1], **keywords)

        cls.__init__ = __init__  # type: ignore[misc]
        return cls

    return decorate


@contextlib.contextmanager
def deprecations_reported(stream: TextIO | None = None) -> Iterator[None]:
    """Inside the block, flashast's deprecation warnings are collected; when it ends (even by an
    error), each deprecated spelling is printed once to `stream` (stderr by default) as one line:
    `flashast: warning: FILE:LINE: <what> is deprecated ...; <what to write instead>`.

    Other warnings are shown as Python would have shown them. A user who chose warning filters
    (`python -W ...`) keeps them: then nothing is collected.
    """
    if sys.warnoptions:
        yield
        return
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always", FlashastDeprecationWarning)
            caught = recorded
            yield
    finally:
        # Outside `catch_warnings`, so that other warnings reach Python's own display again.
        printed: set[str] = set()
        for record in caught:
            if not issubclass(record.category, FlashastDeprecationWarning):
                warnings.showwarning(record.message, record.category, record.filename, record.lineno,
                                     record.file, record.line)
            elif str(record.message) not in printed:
                printed.add(str(record.message))
                print(f"flashast: warning: {record.filename}:{record.lineno}: {record.message}",
                      file=stream or sys.stderr)
