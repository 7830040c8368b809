"""Plugins: Python files and modules given with `--plugin`, and installed distributions that
declare a `flashast.plugins` entry point. Each has a `register(registry)` function.

A plugin cannot take over the process: an exception or a `sys.exit()` in its import or its
`register` is a `PluginError` naming it (exit 2), never flashast's own exit code.

Only the CLI loads plugins; importing flashast never does. A plugin that fails to import or to
register is one `PluginError` line naming the plugin and, where there is one, its own source line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import sys
import types
from collections.abc import Sequence
from importlib import metadata
from importlib import util as import_util
from pathlib import Path

from flashast.errors import PluginError
from flashast.plugin_code import plugin_import, plugin_registration
from flashast.registry import Origin, Registry

ENTRY_POINT_GROUP = "flashast.plugins"


def _call_register(registry: Registry, target: object, label: str, origin: Origin) -> None:
    register = getattr(target, "register", None) if isinstance(target, types.ModuleType) else target
    if not callable(register):
        raise PluginError(f"plugin {label}: defines no register(registry) function")
    with plugin_registration(label), registry.transaction(), registry.origin(origin):
        register(registry)


def load_plugin(registry: Registry, spec: str) -> None:
    """Load `--plugin SPEC`: a path to a `.py` file, or an importable module name; call its `register`."""
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            problem = "is a directory, not a Python file" if path.is_dir() else "no such file"
            raise PluginError(f"plugin {spec}: {problem}")
        resolved = str(path.resolve())
        # A stable module name per file: tracebacks and pickles stay readable, and two files with
        # the same stem cannot replace each other in sys.modules.
        digest = hashlib.sha256(resolved.encode()).hexdigest()[:8]
        stem = re.sub(r"\W", "_", path.stem)
        module_name = f"flashast_plugin_{stem}_{digest}"

        module_spec = import_util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise PluginError(f"plugin {spec}: not a loadable Python file")
        module = import_util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            with plugin_import(spec):
                module_spec.loader.exec_module(module)
        except PluginError:
            del sys.modules[module_name]
            raise
        _call_register(registry, module, spec, Origin(f"file {spec}"))
        return
    with plugin_import(spec):
        module = importlib.import_module(spec)
    _call_register(registry, module, spec, Origin(f"module {spec}"))


def load_entry_points(registry: Registry) -> None:
    """Load every installed plugin of the `flashast.plugins` entry-point group, in name order.

    An entry point names a module with a `register(registry)` function, or the function itself
    (`my_fork = "my_fork_kinds:register"`).
    """
    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        distribution = entry_point.dist
        where = f"{distribution.name} {distribution.version}" if distribution else entry_point.value
        label = f"{entry_point.name} ({where})"
        with plugin_import(label):
            target = entry_point.load()
        _call_register(registry, target, label, Origin(f"distribution {where}"))


def load_plugins(registry: Registry, specs: Sequence[str], no_plugins: bool) -> None:
    """What the CLI loads: installed plugins (unless `no_plugins` or `$FLASHAST_NO_PLUGINS` turns
    them off), then each `--plugin`. Plugin code runs while plugins load and while kinds build files:
    what it prints goes to stderr, so that stdout holds only what flashast prints there (`--list`,
    `--diff`, the cost report)."""
    with contextlib.redirect_stdout(sys.stderr):
        if not (no_plugins or os.environ.get("FLASHAST_NO_PLUGINS", "") not in ("", "0")):
            load_entry_points(registry)
        for spec in specs:
            load_plugin(registry, spec)
