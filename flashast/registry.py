"""The `Registry`: the presets and kinds one run knows about, and who registered each.

Built-in presets are registered through the same public API as plugins (`add_preset`), when the
registry is made. Registering a name twice is a `PluginError` naming who registered it first, and a
failed plugin registration leaves the registry as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from flashast.axes import AxisValue
from flashast.contract import Contract
from flashast.errors import ModelError, PluginError
from flashast.kinds import Builder, Constraint, FileNameRule, Kind, Preset
from flashast.presets import flash_attn_2, flash_attn_3, llama_cpp, pytorch, pytorch_mem_eff
from flashast.style import Style


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a preset or kind came from, for `--list-kinds` and for error messages.

    `description` is what users read: `built-in`, `file examples/paged_kv.py`, `module my_kinds`,
    `distribution flashast-research-fork 0.1.0`, or `Python code` (registered outside any plugin).
    """

    description: str


BUILTIN = Origin("built-in")
BUILTIN_PRESETS = (pytorch.PRESET, flash_attn_2.PRESET, flash_attn_3.PRESET, llama_cpp.PRESET, pytorch_mem_eff.PRESET)


class Registry:
    """The presets and kinds one run knows about. Tests make fresh ones; `default_registry` is shared.

    A registry starts with the built-in presets unless `builtins=False`.
    Registering a name that exists is a `PluginError` naming who registered it first; inside
    `transaction()`, a failed registration leaves the registry as it was.
    """

    def __init__(self, builtins: bool = True) -> None:
        self._presets: dict[str, Preset] = {}
        self._origins: dict[tuple[str, str | None], Origin] = {}
        self._current_origin = Origin("Python code")
        if builtins:
            with self.origin(BUILTIN):
                for preset in BUILTIN_PRESETS:
                    self.add_preset(preset)

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
        saved = (dict(self._presets), dict(self._origins))
        try:
            yield
        except BaseException:
            self._presets, self._origins = saved
            raise

    # Registering ---------------------------------------------------------------------------------

    def add_preset(self, preset: Preset) -> Preset:
        """Register a new preset, with the kinds it already has."""
        if not isinstance(preset, Preset):
            raise ModelError("Registry", "add_preset", preset, "must be a Preset")
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
        """The registered preset called `name`."""
        try:
            return self._presets[name]
        except KeyError:
            known = ", ".join(self.preset_names()) or "none"
            raise PluginError(f"unknown preset {name!r} (known: {known})") from None

    def preset_names(self) -> list[str]:
        """Every registered preset's name, sorted."""
        return sorted(self._presets)

    def origin_of(self, preset: str, kind: str | None = None) -> Origin:
        """Who registered the preset (or, with `kind`, that kind of the preset)."""
        self.preset(preset)
        try:
            return self._origins[(preset, kind)]
        except KeyError:
            raise PluginError(f"preset {preset!r} has no kind {kind!r}") from None


default_registry = Registry()
