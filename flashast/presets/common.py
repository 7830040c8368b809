"""What the flash-attention family shares, public on purpose: the built-in presets use these helpers,
and so can plugins for forks of the family (see `examples/research_fork`).

- contract pieces, as nodes: CUDA's stream type, cutlass element types, the
  `(Flash_*_params &params, cudaStream_t stream)` parameter list every launcher takes;
- the `FLASH_NAMESPACE` convention of flash-attention 2 and its forks: files open
  `namespace FLASH_NAMESPACE {`, a macro that `namespace_config.h` defines (to `flash` unless the build
  says `-DFLASH_NAMESPACE=name`);
- `aggregator_kind`: a kind whose files only `#include` files of another kind (flash-attention 3's
  `*_hdimall_*`, `*_hdimdiff_*` and `*_softcapall_*` files), including only the members that exist,
  and saying whether a build compiles it or its members by default.

Each preset's contract states exactly the interface its files rely on, assembled from these pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from flashast.axes import AxisValue, Configuration
from flashast.contract import Contract
from flashast.kinds import Architectures, FileNameRule, Kind
from flashast.names import MacroName
from flashast.nodes import (
    ClassDeclaration,
    Declaration,
    Declarator,
    IfNotDefined,
    Include,
    MacroDefinition,
    Namespace,
    Parameter,
    PragmaOnce,
    TranslationUnit,
    Type,
    TypeAlias,
)
from flashast.style import Style

CUTLASS_TYPES = {
    "fp16": "cutlass::half_t",
    "bf16": "cutlass::bfloat16_t",
    "e4m3": "cutlass::float_e4m3_t",
}


def cuda_stream() -> tuple[Declaration, ...]:
    """`cudaStream_t` as the CUDA runtime defines it: a pointer to an opaque struct."""
    return (
        ClassDeclaration("CUstream_st"),
        TypeAlias("cudaStream_t", Type("CUstream_st", declarator=Declarator.POINTER)),
    )


def cutlass_types(dtypes: Iterable[str]) -> Namespace:
    """The opaque cutlass element types named by `dtypes` (keys of `CUTLASS_TYPES`)."""
    return Namespace(
        "cutlass",
        tuple(ClassDeclaration(CUTLASS_TYPES[dtype].removeprefix("cutlass::")) for dtype in dtypes),
    )


def launcher_parameters(params_struct: str) -> tuple[Parameter, ...]:
    """`(Flash_fwd_params &params, cudaStream_t stream)` for `params_struct` = `Flash_fwd_params`."""
    return (
        Parameter(Type(params_struct, declarator=Declarator.REFERENCE), "params"),
        Parameter(Type("cudaStream_t"), "stream"),
    )


# The FLASH_NAMESPACE convention ---------------------------------------------------------------------

FLASH_NAMESPACE = MacroName("FLASH_NAMESPACE")
NAMESPACE_CONFIG_HEADER = "namespace_config.h"
# What FLASH_NAMESPACE expands to unless a build overrides it.
DEFAULT_FLASH_NAMESPACE = "flash"


def namespace_config() -> tuple[Declaration, ...]:
    """The contract's `namespace_config.h`: `#ifndef FLASH_NAMESPACE` / `#define FLASH_NAMESPACE flash`.

    As upstream, a build may choose the namespace with `-DFLASH_NAMESPACE=name`. Contract headers
    declare their interface in the expanded namespace (`in_default_flash_namespace`), so a generated
    file that forgets to include `namespace_config.h` fails verification instead of compiling into a
    namespace nobody calls.
    """
    definition = MacroDefinition(FLASH_NAMESPACE, DEFAULT_FLASH_NAMESPACE)
    return (PragmaOnce(), IfNotDefined(FLASH_NAMESPACE, (definition,)))


def in_flash_namespace(*declarations: Declaration) -> Namespace:
    """`namespace FLASH_NAMESPACE { declarations }`, as generated files write it."""
    return Namespace(FLASH_NAMESPACE, declarations)


def in_default_flash_namespace(*declarations: Declaration) -> Namespace:
    """`namespace flash { declarations }`: the macro's default expansion, as contract headers declare it."""
    return Namespace(DEFAULT_FLASH_NAMESPACE, declarations)


# Aggregators ------------------------------------------------------------------------------------------

MemberValues = Callable[[Configuration], Iterable[Mapping[str, AxisValue]]]


def aggregator_kind(
    name: str,
    *,
    axes: Mapping[str, Sequence[AxisValue]],
    member: Kind,
    members: MemberValues,
    file_name: FileNameRule,
    prelude: Sequence[Declaration] = (),
    contract: Contract | None = None,
    style: Style | None = None,
    description: str = "",
    architectures: Architectures | None = None,
    compiled_by_default: bool = True,
) -> Kind:
    """A kind whose files `#include` the files of `member` that `members(config)` names and that exist.

    `members` gives every candidate's axis values for `member`, in include order; candidates the
    member kind's constraint skips are left out, so an aggregator never includes a file the run does
    not make. An aggregator none of whose candidates exist is skipped, for the first candidate's
    reason. Each file is `prelude` followed by the includes. The contract defaults to the member's
    (its files are parsed with their members), and so do the GPU architectures; the kind is marked
    `aggregator=True`, so filters and build systems can tell aggregators from the files they include.
    `compiled_by_default` says what the upstream build compiles: the aggregators (True), or the members
    (False: the aggregators are written, and `--compile aggregators` compiles them instead).
    """

    found: dict[Configuration, list[tuple[str, str | None]]] = {}

    def candidates(config: Configuration) -> list[tuple[str, str | None]]:
        """Each candidate member's file name, with the member kind's reason to skip it (None: made);
        worked out once per configuration (the constraint and the builder both ask)."""
        if config not in found:
            found[config] = [(member.name_for(**values), member.skip_reason(**values)) for values in members(config)]
        return found[config]

    def constraint(config: Configuration) -> str | None:
        reasons = [reason for _, reason in candidates(config)]
        if not reasons:
            return f"names no member file of kind {member.name}"
        return reasons[0] if all(reason is not None for reason in reasons) else None

    def build(config: Configuration) -> TranslationUnit:
        includes = [Include(file) for file, reason in candidates(config) if reason is None]
        return TranslationUnit((*prelude, *includes))

    return Kind(
        name,
        axes=axes,
        build=build,
        file_name=file_name,
        contract=member.contract if contract is None else contract,
        constraint=constraint,
        aggregator=True,
        style=style,
        description=description,
        architectures=member.architectures if architectures is None else architectures,
        compiled_by_default=compiled_by_default,
    )
