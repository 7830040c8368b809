"""Running code that plugins wrote: one place that decides what a failure there becomes.

That is a plugin's import, its `register(registry)`, and the code it gave a kind (builder,
constraint, file-name function, architectures; a built-in kind's is flashast's own). Such code may
raise anything at all: a mistake flashast can name (`ModelError` from a node), an ordinary bug, a
`sys.exit()`, its own `BaseException` subclass, a `KeyboardInterrupt` it raises itself. None of it
may end the run with a traceback or take over the exit code: each is one `PluginError` line. Only a
signal the user sent (`user_interrupt`) passes through untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flashast.axes import Configuration
from flashast.errors import (
    FlashastError,
    ModelError,
    PluginError,
    defined_by_flashast,
    one_line,
    plugin_frame,
    user_interrupt,
)


@contextlib.contextmanager
def kind_code(kind: str, role: str, code: object, configuration: Configuration) -> Iterator[None]:
    """Run kind `kind`'s `role` code (`code`, the callable itself) for `configuration` inside this block.

    - a `FlashastError` is a `ModelError` naming the kind, the role and the configuration;
    - anything else (short of the user's signal) is one `PluginError` line naming the kind, the
      configuration and the plugin's own source line, when the code is a plugin's: a frame of a file
      outside flashast and the standard library raised it, or the code is not flashast's own
      (`build=int` has no frame of the plugin's). Otherwise the bug is flashast's, and it escapes as
      it is, to be reported as an internal error.
    """
    try:
        yield
    except FlashastError as error:
        raise ModelError(f"Kind({kind})", role, configuration.describe(), str(error)) from None
    except BaseException as error:
        if user_interrupt(error):
            raise
        where = plugin_frame(error)
        if not where and defined_by_flashast(code):
            raise
        message = one_line(f"{type(error).__name__}: {error}")
        raise PluginError(
            f"kind {kind}: {role} failed for {configuration.describe()}: {message}{where}", kind=kind
        ) from None


@contextlib.contextmanager
def plugin_import(label: str) -> Iterator[None]:
    """Import plugin `label` (a file, a module, an entry point) inside this block: whatever its
    import raises, short of the user's signal, is one `PluginError` line naming the plugin and its
    own source line (a `SyntaxError` names its line itself)."""
    try:
        yield
    except BaseException as error:
        if user_interrupt(error):
            raise
        message = one_line(f"{type(error).__name__}: {error}")
        where = "" if isinstance(error, SyntaxError) else plugin_frame(error)
        raise PluginError(f"plugin {label}: failed to import: {message}{where}") from None


@contextlib.contextmanager
def plugin_registration(label: str) -> Iterator[None]:
    """Call plugin `label`'s `register(registry)` inside this block: a `FlashastError` (a clash with
    what is registered, a node built wrong) keeps its message, anything else short of the user's
    signal is `register() failed` with the exception; each is one `PluginError` line naming the plugin."""
    try:
        yield
    except FlashastError as error:
        raise PluginError(f"plugin {label}: {one_line(str(error))}{plugin_frame(error)}") from None
    except BaseException as error:
        if user_interrupt(error):
            raise
        message = one_line(f"{type(error).__name__}: {error}")
        raise PluginError(f"plugin {label}: register() failed: {message}{plugin_frame(error)}") from None
