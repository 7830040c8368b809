"""The `Registry`: the presets and kinds one run knows about, and who registered each.

Built-in presets are registered through the same public API as plugins (`add_preset`), when the
registry is made. Registering a name twice is a `PluginError` naming who registered it first, and a
failed plugin registration leaves the registry as it was.

Presets that share a name are revisions of one preset, told apart by `Preset.revision`:
`preset("flash-attn-2@v2.8.3")` is one of them, and the bare name is the one registered first (for
the built-in presets, the newest upstream). A plugin adds a revision to any preset, built-in or not,
by registering a `Preset` of that name with a revision of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from flashast.axes import AxisValue
from flashast.contract import Contract
from flashast.errors import ModelError, PluginError
from flashast.kinds import Architectures, Builder, Constraint, FileNameRule, Kind, Preset
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
# Older revisions of the built-in presets, registered after the newest one of each name.
BUILTIN_REVISIONS = (flash_attn_2.RELEASE_2_8_3,)


class Registry:
    """The presets and kinds one run knows about. Tests make fresh ones; `default_registry` is shared.

    A registry starts with the built-in presets unless `builtins=False`.
    Registering a name that exists is a `PluginError` naming who registered it first; inside
    `transaction()`, a failed registration leaves the registry as it was.
    """

    def __init__(self, builtins: bool = True) -> None:
        # Name -> revision -> preset, in registration order: a name's first revision is its default.
        self._presets: dict[str, dict[str, Preset]] = {}
        # (preset as `name@revision`, kind or None for the preset itself) -> who registered it.
        self._origins: dict[tuple[str, str | None], Origin] = {}
        self._current_origin = Origin("Python code")
        if builtins:
            with self.origin(BUILTIN):
                for preset in (*BUILTIN_PRESETS, *BUILTIN_REVISIONS):
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
        saved = ({name: dict(revisions) for name, revisions in self._presets.items()}, dict(self._origins))
        try:
            yield
        except BaseException:
            self._presets, self._origins = saved
            raise

    # Registering ---------------------------------------------------------------------------------

    def add_preset(self, preset: Preset) -> Preset:
        """Register a new preset, with the kinds it already has.

        A preset named like a registered one is another revision of it, so it needs a revision of its
        own; the first one registered under a name stays what the bare name selects.
        """
        if not isinstance(preset, Preset):
            raise ModelError("Registry", "add_preset", preset, "must be a Preset")
        revisions = self._presets.get(preset.name, {})
        if preset.revision in revisions or (revisions and not preset.revision):
            clash = revisions.get(preset.revision) or next(iter(revisions.values()))
            first = self._origins[(clash.name_with_revision, None)]
            also = "" if preset.revision else "; to add a revision of it, give the Preset a revision=..."
            raise PluginError(
                f"preset {preset.name_with_revision!r} already exists (first registered: {first.description}){also}"
            )
        self._presets.setdefault(preset.name, {})[preset.revision] = preset
        self._origins[(preset.name_with_revision, None)] = self._current_origin
        for kind in preset.kinds:
            self._origins[(preset.name_with_revision, kind.name)] = self._current_origin
        return preset

    def add_kind(self, preset: str, kind: Kind) -> Kind:
        """Add `kind` to the registered preset `preset` (a built-in one or a plugin's; the bare name
        is its default revision, `name@revision` another)."""
        if not isinstance(kind, Kind):
            raise ModelError("Registry", "add_kind", kind, "must be a Kind")
        existing = self.preset(preset)
        selected = existing.name_with_revision
        if any(other.name == kind.name for other in existing.kinds):
            first = self._origins[(selected, kind.name)]
            raise PluginError(
                f"kind {kind.name!r} of preset {preset!r} already exists (first registered: {first.description})"
            )
        self._presets[existing.name][existing.revision] = replace(existing, kinds=(*existing.kinds, kind))
        self._origins[(selected, kind.name)] = self._current_origin
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
        architectures: Architectures = (),
        compiled_by_default: bool = True,
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
                    architectures=architectures,
                    compiled_by_default=compiled_by_default,
                ),
            )

        return decorate

    # Reading -------------------------------------------------------------------------------------

    def preset(self, name: str) -> Preset:
        """The registered preset `name`: a bare name is its default revision, `name@revision` that
        revision (`flash-attn-2@v2.8.3`)."""
        bare, at, revision = name.partition("@")
        if at and not revision:
            raise PluginError(f"preset {name!r}: no revision after '@' (known: {self._known_revisions(bare)})")
        return self._choose(bare, revision if at else None)

    def _choose(self, name: str, revision: str | None) -> Preset:
        revisions = self._presets.get(name)
        if not revisions:
            known = ", ".join(self.preset_names()) or "none"
            raise PluginError(f"unknown preset {name!r} (known: {known})")
        if revision is None:
            return next(iter(revisions.values()))
        if revision not in revisions:
            raise PluginError(f"preset {name!r} has no revision {revision!r} (known: {self._known_revisions(name)})")
        return revisions[revision]

    def _known_revisions(self, name: str) -> str:
        presets = self.revisions(name) if name in self._presets else []
        spelled = [preset.name_with_revision for preset in presets]
        if spelled:
            spelled[0] += " (the default)"
        return ", ".join(spelled) or "none"

    def preset_names(self) -> list[str]:
        """Every registered preset's name (bare, once however many revisions it has), sorted."""
        return sorted(self._presets)

    def revisions(self, name: str) -> list[Preset]:
        """Every revision of the preset called `name` (bare), its default first."""
        self._choose(name, None)
        return list(self._presets[name].values())

    def preset_choices(self) -> list[str]:
        """What `--preset` can select: each name (its default revision), then its other revisions as
        `name@revision`, the names sorted."""
        return [
            choice
            for name in self.preset_names()
            for choice in (name, *(preset.name_with_revision for preset in self.revisions(name)[1:]))
        ]

    def origin_of(self, preset: str, kind: str | None = None) -> Origin:
        """Who registered the preset (or, with `kind`, that kind of the preset); `preset` as `preset()`
        takes it."""
        selected = self.preset(preset).name_with_revision
        try:
            return self._origins[(selected, kind)]
        except KeyError:
            raise PluginError(f"preset {preset!r} has no kind {kind!r}") from None


default_registry = Registry()
