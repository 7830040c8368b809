"""Kernel kinds, presets, the registry, and plugin discovery: flashast's extension point.

A `Kind` turns the cartesian product of its axes into `GeneratedFile`s: each surviving configuration
(the constraint may skip one, always with a stated reason) gets a file name from the kind's rule and
a `TranslationUnit` from its builder. A kind also carries its `Contract`, the interface its launch
header provides, written as nodes, which verification serves as virtual headers. A `Preset` is a named
collection of kinds with a `Style`. The built-in presets are registered through this same API.

Nothing here imports libclang, and nothing is discovered at import time: built-ins load on first use
of a registry, plugins only when the CLI calls `load_entry_points` and `load_plugin`.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from flashast.errors import FlashastError, ModelError, PluginError
from flashast.names import FileName, IncludePath, check_identifier
from flashast.nodes import DECLARATION_TYPES, Declaration, Include, TranslationUnit
from flashast.printer import render
from flashast.style import Style

AxisValue = int | bool | str
ENTRY_POINT_GROUP = "flashast.plugins"
RESERVED_AXES = frozenset({"kind", "preset", "name", "aggregator"})
# Suffixes of the files generators write (as opposed to the headers their contracts declare).
SOURCE_SUFFIXES = (".cu", ".cpp", ".cc", ".cxx")
_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def spell_axis_value(value: AxisValue) -> str:
    """How an axis value is written in filters, listings and messages (`true`, `128`, `bf16`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Configuration(Mapping[str, AxisValue]):
    """One point of a kind's axes, read as `config.head_dim` or `config["head_dim"]`."""

    items_: tuple[tuple[str, AxisValue], ...]
    # The same items for lookups: builders and constraints read axes tens of thousands of times.
    _values: dict[str, AxisValue] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        values = dict(self.items_)
        object.__setattr__(self, "_values", values)
        # Axes as plain instance attributes, so `config.head_dim` is an ordinary lookup (the
        # `__getattr__` fallback costs an exception per read); an axis named like a method of the
        # class (`get`, `keys`, ...) stays a key only, as `__getattr__` would leave it.
        if _NOT_ATTRIBUTES.isdisjoint(values):
            self.__dict__.update(values)
        else:
            self.__dict__.update((axis, value) for axis, value in values.items() if axis not in _NOT_ATTRIBUTES)

    def __getitem__(self, axis: str) -> AxisValue:
        return self._values[axis]

    def __getattr__(self, axis: str) -> AxisValue:
        if axis.startswith("__") or axis == "_values":
            raise AttributeError(axis)
        try:
            return self._values[axis]
        except KeyError:
            raise AttributeError(f"configuration has no axis {axis!r}") from None

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.items_)

    def __len__(self) -> int:
        return len(self.items_)

    def describe(self) -> str:
        return " ".join(f"{name}={spell_axis_value(value)}" for name, value in self.items_)


# Names a Configuration's own attributes (its methods and fields) have: axes so named are keys only.
_NOT_ATTRIBUTES = frozenset(dir(Configuration)) | {"items_", "_values"}


@dataclass(frozen=True, slots=True)
class Contract:
    """The headers a kind's files include, as declarations: what verification parses against.

    Built from a mapping of include path to declarations. Two contracts merge when every header
    they share is declared identically, so kinds of one preset can share a launch header.
    """

    headers: tuple[tuple[IncludePath, tuple[Declaration, ...]], ...] = ()

    def __init__(self, headers: Mapping[str | IncludePath, Sequence[Declaration]] | None = None) -> None:
        pairs: list[tuple[IncludePath, tuple[Declaration, ...]]] = []
        for path, declarations in (headers or {}).items():
            include_path = path if isinstance(path, IncludePath) else IncludePath(path)
            declarations = tuple(declarations)
            for declaration in declarations:
                if not isinstance(declaration, DECLARATION_TYPES):
                    raise ModelError("Contract", f"headers[{include_path}]", declaration, "is not a declaration")
            pairs.append((include_path, declarations))
        object.__setattr__(self, "headers", tuple(sorted(pairs, key=lambda pair: pair[0].text)))

    def header_units(self) -> dict[str, TranslationUnit]:
        return {path.text: TranslationUnit(declarations) for path, declarations in self.headers}

    def merge(self, other: Contract) -> Contract:
        merged = dict(self.headers)
        for path, declarations in other.headers:
            if path in merged and merged[path] != declarations:
                raise ModelError("Contract", "headers", path.text, "declared differently by two kinds")
            merged[path] = declarations
        return Contract(merged)


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    """One output file: its name, where it came from, and its tree. `text` is the rendered file."""

    name: str
    preset: str
    kind: str
    axes: Configuration
    unit: TranslationUnit
    style: Style
    contract: Contract
    aggregator: bool = False
    text: str = field(default="", compare=False)

    @property
    def axis_values(self) -> dict[str, AxisValue]:
        return dict(self.axes.items_)

    def describe(self) -> str:
        """`kind=fwd dtype=fp16 head_dim=128`, for diagnostics."""
        return f"kind={self.kind} {self.axes.describe()}".rstrip()

    def included_files(self) -> tuple[str, ...]:
        """The generated files this one includes (an aggregator's members): quoted includes of source files.

        A quoted `#include "x.cu"` (or `.cpp`, `.cc`, `.cxx`) names another generated file, which
        verification then requires the run to generate; headers are the contract's business.
        """
        return tuple(
            node.path.text for node in self.unit.walk() if isinstance(node, Include) and not node.angled
            and node.path.text.endswith(SOURCE_SUFFIXES)
        )


FileNameRule = str | Callable[[Configuration], str]
Constraint = Callable[[Configuration], str | None]
Builder = Callable[[Configuration], TranslationUnit]


@dataclass(frozen=True)
class Kind:
    """A named recipe for a family of files.

    - `axes`: axis name -> values, iterated as a cartesian product in the given order;
    - `build`: configuration -> `TranslationUnit`;
    - `file_name`: a `str.format` pattern over the axes, or a function of the configuration;
    - `contract`: the headers the files rely on (used by verification);
    - `constraint`: configuration -> a reason to skip it, or None to keep it;
    - `aggregator`: the files only include other generated files (build systems must not compile
      both); `style`: overrides the preset's style for this kind's files.
    """

    name: str
    axes: Mapping[str, Sequence[AxisValue]]
    build: Builder
    file_name: FileNameRule
    contract: Contract = field(default_factory=Contract)
    constraint: Constraint | None = None
    aggregator: bool = False
    style: Style | None = None
    description: str = ""
    # Constraint verdicts by configuration: aggregators ask again about their members' configurations.
    _reasons: dict[Configuration, str | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        check_identifier("Kind", "name", self.name)
        if not isinstance(self.axes, Mapping):
            raise ModelError("Kind", "axes", self.axes, "must map axis names to sequences of values")
        frozen_axes: dict[str, tuple[AxisValue, ...]] = {}
        for axis, values in self.axes.items():
            check_identifier("Kind", "axes", axis)
            if axis in RESERVED_AXES:
                raise ModelError("Kind", "axes", axis, "is reserved for flashast's own filters")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ModelError("Kind", f"axes[{axis}]", values, "must be a non-empty sequence of values")
            for value in values:
                if not isinstance(value, (int, bool, str)):
                    raise ModelError("Kind", f"axes[{axis}]", value, "an axis value is an int, bool or str")
            spelled = [spell_axis_value(value) for value in values]
            if len(set(spelled)) != len(spelled):
                raise ModelError("Kind", f"axes[{axis}]", values, "axis values must be distinct")
            frozen_axes[axis] = tuple(values)
        object.__setattr__(self, "axes", frozen_axes)
        if not callable(self.build):
            raise ModelError("Kind", "build", self.build, "must be callable")
        if not (isinstance(self.file_name, str) or callable(self.file_name)):
            raise ModelError("Kind", "file_name", self.file_name, "must be a pattern str or a callable")
        if not isinstance(self.contract, Contract):
            raise ModelError("Kind", "contract", self.contract, "must be a Contract")
        if self.style is not None and not isinstance(self.style, Style):
            raise ModelError("Kind", "style", self.style, "must be a Style")

    def configurations(self) -> Iterator[tuple[Configuration, str | None]]:
        """Every point of the axes, with the constraint's reason to skip it (None when kept).

        This is how a maintainer sees what a constraint does: `[(c.describe(), why) for c, why in
        kind.configurations() if why]` lists every skipped configuration with its stated reason.
        """
        names = tuple(self.axes)
        for values in itertools.product(*self.axes.values()):
            configuration = Configuration(tuple(zip(names, values, strict=True)))
            yield configuration, self._reason(configuration)

    def configuration(self, **values: AxisValue) -> Configuration:
        """The configuration with these axis values (every axis, each value one the axis has)."""
        missing = [axis for axis in self.axes if axis not in values]
        extra = [axis for axis in values if axis not in self.axes]
        if missing or extra:
            raise ModelError(f"Kind({self.name})", "axes", values, f"missing axes {missing}, unknown {extra}")
        for axis, value in values.items():
            if not any(value == known and type(value) is type(known) for known in self.axes[axis]):
                known_values = ", ".join(spell_axis_value(known) for known in self.axes[axis])
                raise ModelError(f"Kind({self.name})", f"axes[{axis}]", value, f"is not one of {known_values}")
        return Configuration(tuple((axis, values[axis]) for axis in self.axes))

    def skip_reason(self, **values: AxisValue) -> str | None:
        """Why the constraint skips this configuration, or None when the kind makes its file.

        Aggregators use it to include only the member files that exist.
        """
        return self._reason(self.configuration(**values))

    def name_for(self, **values: AxisValue) -> str:
        """The file name this kind gives to a configuration (aggregators name their members with it).

        Values need not be on the axes (an aggregator may name a file of any configuration), but every
        axis must be given, and nothing else.
        """
        missing = [axis for axis in self.axes if axis not in values]
        extra = [axis for axis in values if axis not in self.axes]
        if missing or extra:
            raise ModelError(f"Kind({self.name})", "name_for", values, f"missing axes {missing}, unknown {extra}")
        return self._name(Configuration(tuple((axis, values[axis]) for axis in self.axes)))

    def _reason(self, configuration: Configuration) -> str | None:
        if self.constraint is None:
            return None
        if configuration in self._reasons:
            return self._reasons[configuration]
        self._reasons[configuration] = reason = self._judge(configuration)
        return reason

    def _judge(self, configuration: Configuration) -> str | None:
        if self.constraint is None:
            return None
        try:
            reason = self.constraint(configuration)
        except FlashastError as error:
            raise self._failure("constraint", configuration, error) from None
        except Exception as error:
            self._blame_plugin("constraint", configuration, error)
            raise
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise ModelError(
                f"Kind({self.name})", "constraint", reason, "must return a non-empty reason str, or None to keep"
            )
        return reason

    def _name(self, configuration: Configuration) -> str:
        if isinstance(self.file_name, str):
            try:
                text = self.file_name.format(**configuration)
            except (KeyError, IndexError, ValueError) as error:
                raise ModelError(f"Kind({self.name})", "file_name", self.file_name, f"cannot format: {error}") from None
        else:
            try:
                text = self.file_name(configuration)
            except FlashastError as error:
                raise self._failure("file_name", configuration, error) from None
            except Exception as error:
                self._blame_plugin("file_name", configuration, error)
                raise
        try:
            return FileName(text).text
        except ModelError as error:
            raise self._failure("file_name", configuration, error) from None

    def _failure(self, role: str, configuration: Configuration, error: FlashastError) -> ModelError:
        """A mistake in a kind's own code, reported with the kind and configuration it happened for."""
        return ModelError(f"Kind({self.name})", role, configuration.describe(), str(error))

    def _blame_plugin(self, role: str, configuration: Configuration, error: Exception) -> None:
        """An ordinary exception in a kind's code: one line naming the kind, if the code is a plugin's.

        If no frame outside flashast and the standard library raised it, the bug is flashast's own
        (a built-in kind): this returns and the caller re-raises it as an internal error.
        """
        where = _where(error)
        if where:
            message = _one_line(f"{type(error).__name__}: {error}")
            raise PluginError(
                f"kind {self.name}: {role} failed for {configuration.describe()}: {message}{where}"
            ) from None

    def generate(self, preset: str, preset_style: Style) -> Iterator[GeneratedFile]:
        style = self.style or preset_style
        for configuration, reason in self.configurations():
            if reason is not None:
                continue
            try:
                unit = self.build(configuration)
            except FlashastError as error:
                raise self._failure("build", configuration, error) from None
            except Exception as error:
                self._blame_plugin("build", configuration, error)
                raise
            if not isinstance(unit, TranslationUnit):
                raise self._failure(
                    "build", configuration, ModelError("build", "return", unit, "must be a TranslationUnit")
                )
            yield GeneratedFile(
                name=self._name(configuration),
                preset=preset,
                kind=self.name,
                axes=configuration,
                unit=unit,
                style=style,
                contract=self.contract,
                aggregator=self.aggregator,
                text=render(unit, style),
            )

    def count(self) -> int:
        """How many files the kind makes (its configurations the constraint keeps)."""
        return sum(1 for _, reason in self.configurations() if reason is None)

    def skipped(self) -> list[tuple[Configuration, str]]:
        """The configurations the constraint skips, each with its reason."""
        return [(configuration, reason) for configuration, reason in self.configurations() if reason is not None]


@dataclass(frozen=True, slots=True)
class Preset:
    """A named set of kinds and the style their files are printed in."""

    name: str
    style: Style = field(default_factory=Style)
    description: str = ""
    kinds: tuple[Kind, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _PRESET_NAME.match(self.name):
            raise ModelError("Preset", "name", self.name, "a preset name is letters, digits, '-', '_' and '.'")
        if not isinstance(self.style, Style):
            raise ModelError("Preset", "style", self.style, "must be a Style")
        if isinstance(self.kinds, (str, bytes)) or not isinstance(self.kinds, Sequence):
            raise ModelError("Preset", "kinds", self.kinds, "must be a sequence of Kind")
        kinds = tuple(self.kinds)
        names: set[str] = set()
        for kind in kinds:
            if not isinstance(kind, Kind):
                raise ModelError("Preset", "kinds", kind, "is not a Kind")
            if kind.name in names:
                raise ModelError(f"Preset({self.name})", "kinds", kind.name, "two kinds have this name")
            names.add(kind.name)
        object.__setattr__(self, "kinds", kinds)

    def kind(self, name: str) -> Kind:
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise KeyError(name)

    def contract(self) -> Contract:
        merged = Contract()
        for kind in self.kinds:
            merged = merged.merge(kind.contract)
        return merged

    def generate(self) -> list[GeneratedFile]:
        """Every file of every kind, sorted by name; two kinds claiming one name is an error."""
        files: dict[str, GeneratedFile] = {}
        for kind in self.kinds:
            for generated in kind.generate(self.name, self.style):
                if generated.name in files:
                    other = files[generated.name]
                    raise ModelError(
                        f"Preset({self.name})",
                        "kinds",
                        generated.name,
                        f"made by both kind {other.kind} ({other.axes.describe()}) and kind {kind.name}"
                        f" ({generated.axes.describe()})",
                    )
                files[generated.name] = generated
        return [files[name] for name in sorted(files)]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a preset or kind came from, for `--list-kinds` and for error messages.

    `description` is what users read: `built-in`, `file examples/paged_kv.py`, `module my_kinds`,
    `distribution flashast-research-fork 0.1.0`, or `Python code` (registered outside any plugin).
    """

    description: str


BUILTIN = Origin("built-in")
# Each built-in preset's module, imported only when that preset is first asked for.
BUILTIN_PRESET_MODULES = {
    "pytorch": "flashast.presets.pytorch",
    "flash-attn-2": "flashast.presets.flash_attn_2",
    "flash-attn-3": "flashast.presets.flash_attn_3",
}


class Registry:
    """The presets and kinds one run knows about. Tests make fresh ones; `default_registry` is shared.

    Built-in presets are loaded on first use (not at import of flashast), each only when something
    asks for it by name (or for all of them), unless `builtins=False`.
    Registering a name that exists is a `PluginError` naming who registered it first; a failed
    registration leaves the registry as it was.
    """

    def __init__(self, builtins: bool = True) -> None:
        self._presets: dict[str, Preset] = {}
        self._origins: dict[tuple[str, str | None], Origin] = {}
        self._current_origin = Origin("Python code")
        self._builtins_pending = dict(BUILTIN_PRESET_MODULES) if builtins else {}

    # Loading -------------------------------------------------------------------------------------

    def _ensure_builtins(self, name: str | None = None) -> None:
        """Register the built-in preset `name` (None: every one) if it is not registered yet."""
        names = list(self._builtins_pending) if name is None else [name] * (name in self._builtins_pending)
        for preset in names:
            module = self._builtins_pending.pop(preset)
            with self.origin(BUILTIN):
                importlib.import_module(module).register(self)

    @contextlib.contextmanager
    def origin(self, origin: Origin) -> Iterator[None]:
        """Attribute everything registered inside the block to `origin`."""
        previous, self._current_origin = self._current_origin, origin
        try:
            yield
        finally:
            self._current_origin = previous

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: if the block raises, the registry is restored to what it was before it."""
        saved = (dict(self._presets), dict(self._origins), dict(self._builtins_pending))
        try:
            yield
        except BaseException:
            self._presets, self._origins, self._builtins_pending = saved
            raise

    # Registering ---------------------------------------------------------------------------------

    def add_preset(self, preset: Preset) -> Preset:
        """Register a new preset, with the kinds it already has."""
        if not isinstance(preset, Preset):
            raise ModelError("Registry", "add_preset", preset, "must be a Preset")
        self._ensure_builtins(preset.name)
        if preset.name in self._presets:
            first = self._origins[(preset.name, None)]
            raise PluginError(f"preset {preset.name!r} already exists (first registered: {first.description})")
        self._presets[preset.name] = preset
        self._origins[(preset.name, None)] = self._current_origin
        for kind in preset.kinds:
            self._origins[(preset.name, kind.name)] = self._current_origin
        return preset

    def add_kind(self, preset: str, kind: Kind) -> Kind:
        """Add `kind` to the registered preset named `preset` (a built-in one or a plugin's)."""
        if not isinstance(kind, Kind):
            raise ModelError("Registry", "add_kind", kind, "must be a Kind")
        existing = self.preset(preset)
        if any(other.name == kind.name for other in existing.kinds):
            first = self._origins[(preset, kind.name)]
            raise PluginError(
                f"kind {kind.name!r} of preset {preset!r} already exists (first registered: {first.description})"
            )
        self._presets[preset] = replace(existing, kinds=(*existing.kinds, kind))
        self._origins[(preset, kind.name)] = self._current_origin
        return kind

    def kind(
        self,
        preset: str,
        *,
        name: str | None = None,
        axes: Mapping[str, Sequence[AxisValue]],
        file_name: FileNameRule,
        contract: Contract | None = None,
        constraint: Constraint | None = None,
        aggregator: bool = False,
        style: Style | None = None,
        description: str = "",
    ) -> Callable[[Builder], Kind]:
        """Decorator: the decorated builder becomes a kind of `preset` (named after it by default).

        The decorated name is bound to the registered `Kind`, so an aggregator defined later can
        name its members with `kind.name_for(...)`. The description defaults to the docstring's first
        line.
        """

        def decorate(build: Builder) -> Kind:
            return self.add_kind(
                preset,
                Kind(
                    name=name or build.__name__,
                    axes=axes,
                    build=build,
                    file_name=file_name,
                    contract=contract or Contract(),
                    constraint=constraint,
                    aggregator=aggregator,
                    style=style,
                    description=description or (build.__doc__ or "").strip().split("\n")[0],
                ),
            )

        return decorate

    # Reading -------------------------------------------------------------------------------------

    def preset(self, name: str) -> Preset:
        self._ensure_builtins(name)
        try:
            return self._presets[name]
        except KeyError:
            known = ", ".join(self.preset_names()) or "none"
            raise PluginError(f"unknown preset {name!r} (known: {known})") from None

    def preset_names(self) -> list[str]:
        """Every preset's name (built-in ones included, without loading them)."""
        return sorted({*self._presets, *self._builtins_pending})

    def origin_of(self, preset: str, kind: str | None = None) -> Origin:
        """Who registered the preset (or, with `kind`, that kind of the preset)."""
        self.preset(preset)
        try:
            return self._origins[(preset, kind)]
        except KeyError:
            raise PluginError(f"preset {preset!r} has no kind {kind!r}") from None


default_registry = Registry()


# Plugin discovery --------------------------------------------------------------------------------

_FLASHAST_DIRECTORY = Path(__file__).resolve().parent
_STANDARD_LIBRARY = Path(os.__file__).resolve().parent


def _is_library(path: Path) -> bool:
    """Whether `path` is flashast's or the standard library's (installed plugins are neither)."""
    if _FLASHAST_DIRECTORY in path.parents:
        return True
    return _STANDARD_LIBRARY in path.parents and not {"site-packages", "dist-packages"} & set(path.parts)


def _one_line(text: str) -> str:
    """Messages from plugin code may span lines; the CLI's errors never do."""
    return " ".join(text.split())


def _where(error: BaseException) -> str:
    """` (at file.py:LINE)`: the innermost frame of a real file outside flashast: the plugin's own line.

    Frames without a file (`<string>` from dataclasses, `<frozen importlib...>`) say nothing useful.
    """
    location = ""
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if not filename.startswith("<") and not _is_library(Path(filename).resolve()):
            location = f" (at {Path(filename).name}:{traceback.tb_lineno})"
        traceback = traceback.tb_next
    return location


def _call_register(registry: Registry, target: object, label: str, origin: Origin) -> None:
    register = getattr(target, "register", None) if isinstance(target, types.ModuleType) else target
    if not callable(register):
        raise PluginError(f"plugin {label}: defines no register(registry) function")
    try:
        with registry.transaction(), registry.origin(origin):
            register(registry)
    except FlashastError as error:
        raise PluginError(f"plugin {label}: {_one_line(str(error))}{_where(error)}") from None
    except Exception as error:  # a plugin's own bug must still be one line naming the plugin
        message = _one_line(f"{type(error).__name__}: {error}")
        raise PluginError(f"plugin {label}: register() failed: {message}{_where(error)}") from None


def _import_failure(label: str, error: BaseException) -> PluginError:
    message = _one_line(f"{type(error).__name__}: {error}")
    where = "" if isinstance(error, SyntaxError) else _where(error)
    return PluginError(f"plugin {label}: failed to import: {message}{where}")


def load_plugin(registry: Registry, spec: str) -> None:
    """Load `--plugin SPEC`: a path to a `.py` file, or an importable module name; call its `register`."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            problem = "is a directory, not a Python file" if path.is_dir() else "no such file"
            raise PluginError(f"plugin {spec}: {problem}")
        resolved = str(path.resolve())
        # A stable module name per file: tracebacks and pickles stay readable, and two files with
        # the same stem cannot replace each other in sys.modules.
        import hashlib

        digest = hashlib.sha256(resolved.encode()).hexdigest()[:8]
        stem = re.sub(r"\W", "_", path.stem)
        module_name = f"flashast_plugin_{stem}_{digest}"
        from importlib import util as import_util

        module_spec = import_util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise PluginError(f"plugin {spec}: not a loadable Python file")
        module = import_util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise _import_failure(spec, error) from None
        _call_register(registry, module, spec, Origin(f"file {spec}"))
        return
    try:
        module = importlib.import_module(spec)
    except Exception as error:
        raise _import_failure(spec, error) from None
    _call_register(registry, module, spec, Origin(f"module {spec}"))


def load_entry_points(registry: Registry) -> None:
    """Load every installed plugin of the `flashast.plugins` entry-point group, in name order.

    An entry point names a module with a `register(registry)` function, or the function itself
    (`my_fork = "my_fork_kinds:register"`).
    """
    from flashast.cache import plugins_installed

    if not plugins_installed():
        return  # the common case, found without importlib.metadata (whose import alone costs ~17 ms)
    from importlib import metadata

    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        distribution = entry_point.dist
        where = f"{distribution.name} {distribution.version}" if distribution else entry_point.value
        label = f"{entry_point.name} ({where})"
        try:
            target = entry_point.load()
        except Exception as error:
            raise _import_failure(label, error) from None
        _call_register(registry, target, label, Origin(f"distribution {where}"))
