"""Kernel kinds and presets: flashast's extension point.

A `Kind` turns the cartesian product of its axes into `GeneratedFile`s: each surviving configuration
(the constraint may skip one, always with a stated reason) gets a file name from the kind's rule and
a `TranslationUnit` from its builder. A kind also carries its `Contract`, the interface its launch
header provides, written as nodes, which verification serves as virtual headers. A `Preset` is a named
collection of kinds with a `Style`, and the upstream revision its files are byte-identical to. The
built-in presets are built with this same API.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from functools import cached_property

from flashast.axes import AxisValue, Configuration, spell_axis_value
from flashast.compat import positional_fields, warn_deprecated
from flashast.contract import Contract
from flashast.errors import FlashastError, ModelError
from flashast.generated import GeneratedFile
from flashast.names import FileName, check_identifier
from flashast.nodes import TranslationUnit
from flashast.plugin_code import kind_code
from flashast.style import Style

RESERVED_AXES = frozenset({"kind", "preset", "name", "aggregator"})
_PRESET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")

FileNameRule = str | Callable[[Configuration], str]
Constraint = Callable[[Configuration], str | None]
Builder = Callable[[Configuration], TranslationUnit]
Architectures = Sequence[str] | Callable[[Configuration], Sequence[str]]
# `sm_80`, `sm_86`, `sm_90a`: what clang's `--cuda-gpu-arch` takes for NVIDIA GPUs.
_ARCHITECTURE = re.compile(r"sm_[0-9]{2,3}[a-z]?\Z")


def is_architecture(name: object) -> bool:
    """Whether `name` is a GPU architecture clang's `--cuda-gpu-arch` takes (`sm_80`, `sm_90a`)."""
    return isinstance(name, str) and _ARCHITECTURE.match(name) is not None


def _architectures(owner: str, named: object) -> tuple[str, ...]:
    """Check a kind's architectures: a sequence of names such as `sm_80`."""
    if isinstance(named, (str, bytes)) or not isinstance(named, Sequence):
        raise ModelError(owner, "architectures", named, "must be a sequence of names such as 'sm_80'")
    for name in named:
        if not is_architecture(name):
            raise ModelError(owner, "architectures", name, "is not a GPU architecture such as 'sm_80' or 'sm_90a'")
    return tuple(named)


def _pattern_values(configuration: Configuration) -> dict[str, int | str]:
    """The values a file-name pattern formats: a bool is spelled as filters spell it (`true`, never
    `True`); ints and strs stay themselves, so format specs such as `{head_dim:03d}` keep working."""
    return {
        axis: spell_axis_value(value) if isinstance(value, bool) else value for axis, value in configuration.items()
    }


# 0.1.0 took every field positionally; kept, with a warning, until 0.3.0.
@positional_fields("axes", "build", "file_name", "contract", "constraint", "aggregator", "style", "description")
@dataclass(frozen=True)
class Kind:
    """A named recipe for a family of files; everything after the name is a keyword argument.

    - `axes`: axis name -> values, iterated as a cartesian product in the given order (held as a
      dict of tuples);
    - `build`: configuration -> `TranslationUnit`;
    - `file_name`: a `str.format` pattern over the axes (a bool axis is spelled `true`/`false` there,
      as in filters; an int keeps its format spec, `{head_dim:03d}`), or a function of the configuration;
    - `contract`: the headers the files rely on (used by verification);
    - `constraint`: configuration -> a reason to skip it, or None to keep it;
    - `aggregator`: the files only include other generated files (build systems must not compile
      both); `compiled_by_default`: for an aggregator, whether a build compiles it in place of its
      members unless told otherwise (False: upstream's build compiles the members, and the aggregator
      is only written); `style`: overrides the preset's style for this kind's files;
    - `architectures`: the GPU architectures a configuration's file is built for (`("sm_90a",)`,
      or configuration -> those), which `--device-arch` without a value verifies; empty: whatever
      the command line names.
    """

    name: str
    _: KW_ONLY
    axes: Mapping[str, Sequence[AxisValue]]
    build: Builder
    file_name: FileNameRule
    contract: Contract = field(default_factory=Contract)
    constraint: Constraint | None = None
    aggregator: bool = False
    style: Style | None = None
    description: str = ""
    architectures: Architectures = ()
    compiled_by_default: bool = True

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
        if isinstance(self.file_name, str):
            self._check_pattern(self.file_name)
        elif not callable(self.file_name):
            raise ModelError("Kind", "file_name", self.file_name, "must be a pattern str or a callable")
        if not isinstance(self.contract, Contract):
            raise ModelError("Kind", "contract", self.contract, "must be a Contract")
        if self.constraint is not None and not callable(self.constraint):
            raise ModelError("Kind", "constraint", self.constraint, "must be callable or None")
        if not isinstance(self.aggregator, bool):
            raise ModelError("Kind", "aggregator", self.aggregator, "must be a bool")
        if not isinstance(self.compiled_by_default, bool) or not (self.compiled_by_default or self.aggregator):
            raise ModelError("Kind", "compiled_by_default", self.compiled_by_default,
                             "must be a bool, and False only for an aggregator (other files are always compiled)")
        if self.style is not None and not isinstance(self.style, Style):
            raise ModelError("Kind", "style", self.style, "must be a Style")
        if not callable(self.architectures):
            object.__setattr__(self, "architectures", _architectures("Kind", self.architectures))
        if not isinstance(self.description, str):
            raise ModelError("Kind", "description", self.description, "must be a str")

    def _check_pattern(self, pattern: str) -> None:
        """Every replacement field of a file-name pattern names an axis, so a typo fails here, not later."""
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None]
        except ValueError as error:
            raise ModelError(f"Kind({self.name})", "file_name", pattern, f"cannot format: {error}") from None
        for replacement in fields:
            axis = re.split(r"[.\[]", replacement, maxsplit=1)[0]
            if axis not in self.axes:
                problem = f"names {{{replacement}}}, which is not an axis ({', '.join(self.axes) or 'none'})"
                raise ModelError(f"Kind({self.name})", "file_name", pattern, problem)

    def configurations(self) -> Iterator[tuple[Configuration, str | None]]:
        """Every point of the axes, with the constraint's reason to skip it (None when kept).

        This is how a maintainer sees what a constraint does: `[(c.describe(), why) for c, why in
        kind.configurations() if why]` lists every skipped configuration with its stated reason.
        """
        return iter(self._points)

    @cached_property
    def _points(self) -> tuple[tuple[Configuration, str | None], ...]:
        # Enumerated once: a preset's largest kind has thousands of points, and aggregators ask again.
        names = tuple(self.axes)
        configurations = (Configuration(tuple(zip(names, values, strict=True)))
                          for values in itertools.product(*self.axes.values()))
        return tuple((configuration, self._reason(configuration)) for configuration in configurations)

    @cached_property
    def _reasons(self) -> dict[Configuration, str | None]:
        # The points by configuration: aggregators ask their member kind about the same ones again
        # and again, and each constraint is called once per point.
        return dict(self._points)

    @cached_property
    def _known_values(self) -> dict[str, set[tuple[type, AxisValue]]]:
        # Each axis's values with their types: `True == 1`, but `True` is no value of an int axis.
        return {axis: {(type(value), value) for value in values} for axis, values in self.axes.items()}

    def configuration(self, **values: AxisValue) -> Configuration:
        """The configuration with these axis values (every axis, each value one the axis has)."""
        missing = [axis for axis in self.axes if axis not in values]
        extra = [axis for axis in values if axis not in self.axes]
        if missing or extra:
            raise ModelError(f"Kind({self.name})", "axes", values, f"missing axes {missing}, unknown {extra}")
        for axis, value in values.items():
            if (type(value), value) not in self._known_values[axis]:
                known_values = ", ".join(spell_axis_value(known) for known in self.axes[axis])
                raise ModelError(f"Kind({self.name})", f"axes[{axis}]", value, f"is not one of {known_values}")
        return Configuration(tuple((axis, values[axis]) for axis in self.axes))

    def skip_reason(self, **values: AxisValue) -> str | None:
        """Why the constraint skips this configuration, or None when the kind makes its file.

        Aggregators use it to include only the member files that exist.
        """
        return self._reasons[self.configuration(**values)]

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
        with kind_code(self.name, "constraint", self.constraint, configuration):
            reason = self.constraint(configuration)
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            raise ModelError(
                f"Kind({self.name})", "constraint", reason, "must return a non-empty reason str, or None to keep"
            )
        return reason

    def _name(self, configuration: Configuration) -> str:
        if isinstance(self.file_name, str):
            try:
                text = self.file_name.format(**_pattern_values(configuration))
            except (KeyError, IndexError, ValueError) as error:
                raise ModelError(f"Kind({self.name})", "file_name", self.file_name, f"cannot format: {error}") from None
        else:
            with kind_code(self.name, "file_name", self.file_name, configuration):
                text = self.file_name(configuration)
        try:
            return FileName(text).text
        except ModelError as error:
            raise self._failure("file_name", configuration, error) from None

    def _failure(self, role: str, configuration: Configuration, error: FlashastError) -> ModelError:
        """A mistake in a kind's own code, reported with the kind and configuration it happened for."""
        return ModelError(f"Kind({self.name})", role, configuration.describe(), str(error))

    def generate(self, preset: str, preset_style: Style) -> Iterator[GeneratedFile]:
        style = self.style or preset_style
        for configuration, reason in self.configurations():
            if reason is not None:
                continue
            with kind_code(self.name, "build", self.build, configuration):
                unit = self.build(configuration)
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
                architectures=self._architectures_of(configuration),
                compiled_by_default=self.compiled_by_default,
            )

    def _architectures_of(self, configuration: Configuration) -> tuple[str, ...]:
        if not callable(self.architectures):
            return tuple(self.architectures)
        with kind_code(self.name, "architectures", self.architectures, configuration):
            named = self.architectures(configuration)
        return _architectures(f"Kind({self.name})", named)

    def count(self) -> int:
        """How many files the kind makes (its configurations the constraint keeps)."""
        return sum(1 for _, reason in self.configurations() if reason is None)

    def skipped(self) -> list[tuple[Configuration, str]]:
        """The configurations the constraint skips, each with its reason."""
        return [(configuration, reason) for configuration, reason in self.configurations() if reason is not None]


# 0.1.0 took style, description and kinds positionally; kept, with a warning, until 0.3.0.
@positional_fields("style", "description", "kinds")
@dataclass(frozen=True, slots=True)
class Preset:
    """A named set of kinds and the style their files are printed in; everything after the name is
    a keyword argument. `kinds` may be any sequence and is held as a tuple.

    - `revision`: the upstream commit or release the files are byte-identical to (`0251105a`,
      `v2.8.3`). Several presets may share a name with different revisions: `--preset NAME@REVISION`
      selects one, and the bare name the one registered first (for the built-in presets, the newest).
      Empty for a preset that has one revision only;
    - `upstream`: where those files come from upstream, the repository and its generator
      (`Dao-AILab/flash-attention csrc/flash_attn/src/generate_kernels.py`); empty for a preset that
      follows no upstream. Listings and the output manifest show both, so a tree says what it matches.
    """

    name: str
    _: KW_ONLY
    style: Style = field(default_factory=Style)
    description: str = ""
    kinds: Sequence[Kind] = ()
    revision: str = ""
    upstream: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _PRESET_NAME.match(self.name):
            raise ModelError("Preset", "name", self.name, "a preset name is letters, digits, '-', '_' and '.'")
        if not isinstance(self.style, Style):
            raise ModelError("Preset", "style", self.style, "must be a Style")
        if not isinstance(self.revision, str) or (self.revision and not _PRESET_NAME.match(self.revision)):
            raise ModelError(f"Preset({self.name})", "revision", self.revision,
                             "a revision is letters, digits, '-', '_' and '.' (a commit or a release tag)")
        if not isinstance(self.upstream, str) or not self.upstream.isprintable():
            raise ModelError(f"Preset({self.name})", "upstream", self.upstream, "must be one line of text")
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

    @property
    def name_with_revision(self) -> str:
        """What `--preset` takes to select exactly this preset: `flash-attn-2@v2.8.3`, or the bare name
        of a preset without a revision."""
        return f"{self.name}@{self.revision}" if self.revision else self.name

    def describe_upstream(self) -> str:
        """`Dao-AILab/flash-attention csrc/flash_attn/src/generate_kernels.py at v2.8.3`, for listings;
        empty for a preset that follows no upstream."""
        if not self.upstream:
            return ""
        return f"{self.upstream} at {self.revision}" if self.revision else self.upstream

    def kind(self, name: str) -> Kind:
        """Deprecated since 0.2.0 (removed in 0.3.0): `kind_named(name)`, the same lookup."""
        warn_deprecated("Preset.kind(name)", "write Preset.kind_named(name)")
        return self.kind_named(name)

    def kind_named(self, name: str) -> Kind:
        """The kind called `name` (a lookup; `Registry.kind` is the decorator that adds one)."""
        for kind in self.kinds:
            if kind.name == name:
                return kind
        known = ", ".join(kind.name for kind in self.kinds) or "none"
        raise ModelError(f"Preset({self.name})", "kinds", name, f"no kind has this name (kinds: {known})")

    def contract(self) -> Contract:
        merged = Contract()
        for kind in self.kinds:
            merged = merged.merge(kind.contract)
        return merged

    def generate(self) -> list[GeneratedFile]:
        """Every file of every kind, sorted by name; two kinds claiming one name is an error."""
        files: dict[str, GeneratedFile] = {}
        folded: dict[str, GeneratedFile] = {}  # a case-insensitive file system holds one of `A.cu`, `a.cu`
        for kind in self.kinds:
            for generated in kind.generate(self.name, self.style):
                other = folded.setdefault(generated.name.casefold(), generated)
                if other is not generated:
                    raise ModelError(
                        f"Preset({self.name})",
                        "kinds",
                        generated.name,
                        f"made by both kind {other.kind} ({other.axes.describe()}) and kind {kind.name}"
                        f" ({generated.axes.describe()})" + ("" if other.name == generated.name else
                        f"; it differs from {other.name} only in case: one file on a case-insensitive file system"),
                    )
                files[generated.name] = generated
        return [files[name] for name in sorted(files)]

