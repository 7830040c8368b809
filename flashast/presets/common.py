"""Contract pieces the flash-attention family shares: CUDA's stream type, cutlass element types, and
the `(Flash_*_params &params, cudaStream_t stream)` parameter list every launcher takes.

Kept as nodes so each preset's contract states exactly the interface its files rely on.
"""

from __future__ import annotations

from collections.abc import Iterable

from flashast.nodes import (
    ClassDeclaration,
    Declaration,
    Declarator,
    Namespace,
    Parameter,
    Type,
    TypeAlias,
)

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
