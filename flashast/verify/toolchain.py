"""The toolchain a parse runs with: libclang itself, the CUDA toolkit, clang's resource headers, and
the exact command line every file is parsed with.

Two modes share everything here:
- contract mode (no include directories): C++17, no system headers, the contract's headers served
  from memory under a virtual include directory;
- real-header mode (`include_dirs` given): CUDA host code against the user's real headers. CUDA's own
  headers parse only through clang's CUDA wrapper headers, which live in a clang resource directory;
  the libclang wheel ships none, so CUDA's headers are used only together with `resource_dir`.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from flashast.errors import LibclangUnavailable

VIRTUAL_ROOT = "/__flashast__"
VIRTUAL_INCLUDE = f"{VIRTUAL_ROOT}/include"
VIRTUAL_SOURCE = f"{VIRTUAL_ROOT}/src"
INSTALL_HINT = "python -m pip install libclang==18.1.1"

# Warnings only the way flashast parses can cause, never a defect of the generated file:
# -Wpragma-once-outside-header: a generated header (a kind may write `.h` files with `#pragma once`)
# is parsed as the main file, where clang warns that `#pragma once` has no effect.
SHARED_WARNING_ARGUMENTS = ("-Wno-pragma-once-outside-header",)

CONTRACT_ARGUMENTS = (
    "-x", "c++", "-std=c++17",
    # Contract headers are self-contained; the libclang wheel ships no resource headers anyway.
    "-nostdinc", "-nostdinc++",
    # -Wall holds what a generated declaration can get wrong without an error; the defect that
    # matters most, "explicit instantiation after specialization has no effect"
    # (-Winstantiation-after-specialization), is on by default and stays on.
    "-Wall",
    *SHARED_WARNING_ARGUMENTS,
    f"-I{VIRTUAL_INCLUDE}",
)
CUDA_HOST_ARGUMENTS = (
    "-x", "cuda", "--cuda-host-only", "-std=c++17",
    "-Wall",
    *SHARED_WARNING_ARGUMENTS,
    # clang finds an installed CUDA toolkit (/usr/local/cuda) even with -nocudainc, and warns when it
    # is newer than libclang 18 knows (12.3). That says nothing about the user's headers or ours.
    "-Wno-unknown-cuda-version",
    # A host-only parse never links device libraries; without this clang looks for libdevice.
    "-nocudalib",
    # The upstream builds undefine these so half/bfloat16 conversions exist; so must we.
    "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_HALF2_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
)
# clang's CUDA wrapper (`__clang_cuda_runtime_wrapper.h`) includes these; CUDA 13 no longer ships
# them and nothing a generated file declares needs them, so a toolkit that lacks them gets empty
# ones, served from memory after every real include directory.
CUDA_HEADERS_CLANG_EXPECTS = ("texture_fetch_functions.h", "curand_mtgp32_kernel.h")
# torch's `ATen/cuda/CUDAContextLight.h` (flash-attention 3's dispatcher includes it) includes these
# CUDA math libraries' headers and names one handle type from each. A toolkit installed without the
# libraries (CUDA 13 here has no cuBLAS, cuSPARSE or cuSOLVER) gets stand-ins declaring the handle
# type, as the library does (`typedef struct cublasContext *cublasHandle_t;`), served as above.
CUDA_LIBRARY_HANDLES: Mapping[str, str] = {
    "cusparse.h": "cusparseHandle_t", "cublas_v2.h": "cublasHandle_t", "cublasLt.h": "cublasLtHandle_t",
    "cusolverDn.h": "cusolverDnHandle_t",
}
CUDA_STAND_INS = f"{VIRTUAL_ROOT}/cuda-stand-ins"
# Resource directories whose CUDA wrappers libclang 18 parses: those of clang 16 to 18 (19's use
# builtins libclang 18 does not know). Debian 12 ships clang 16's as `libclang-common-16-dev`.
COMPATIBLE_RESOURCE_MAJORS = (18, 17, 16)
# Errors clang makes on the device side where nvcc's front end makes none. nvcc compiles device code
# with its own front end (EDG), which accepts a dependent type named without `typename` where clang
# parsed an expression: `f<Traits::Type>(x)` with `f`'s first parameter a type (flash-attention 2's
# backward kernel does it, `flash_bwd_kernel.h`). No clang option accepts that: `-std=c++20` (P0634
# covers declarations, not template arguments), `-fms-compatibility`, `-fms-extensions` and
# `-fdelayed-template-parsing` were each tried on libclang 18 and all reject it. So such an error
# inside a header is reported once as the header's warning, not charged to the file that instantiated
# it; one in a generated file itself still fails (flashast writes standard C++). The host side, which
# nvcc hands to the host compiler (g++ rejects the same construct), keeps them as errors.
NVCC_ACCEPTS_ON_DEVICE = ("missing 'typename' prior to dependent type name",)
# The device side reports every error: past clang's default limit of 20 it stops instantiating, and
# the errors NVCC_ACCEPTS_ON_DEVICE leaves out would hide any that come later (42 in one FA2 bwd file).
DEVICE_ARGUMENTS = ("-ferror-limit=0",)
# What one device-side parse may take: a batch of up to 4 flash-attention files (`batching`); one FA2
# 2.8.3 bwd file peaked near 2.7 GB, a batch of 4 FA3 sm90 bwd files near 3.4 GB (the whole process).
DEVICE_PARSE_BYTES = 4 << 30
RESOURCE_DIR_HINT = (
    "Debian/Ubuntu: apt-get install libclang-common-16-dev, then --resource-dir /usr/lib/llvm-16/lib/clang/16"
)


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify: against contracts (default) or real headers (`include_dirs` non-empty).

    Without `resource_dir`, a real-header parse uses `-nocudainc` and the user's tree must define
    `__global__` and friends itself (a small tree such as the test fixture does; a full PyTorch or
    cutlass tree needs `resource_dir`).
    """

    include_dirs: tuple[Path, ...] = ()
    defines: tuple[str, ...] = ()
    clang_args: tuple[str, ...] = ()
    cuda_path: Path | None = None
    resource_dir: Path | None = None
    strict: bool = False
    # Device-side verification (real-header mode): after the host side passes, each file is parsed
    # again for the device, once per architecture: those named here, and with `device_declared` those
    # its kind declares. A file whose kind declares architectures is parsed only for those.
    device_architectures: tuple[str, ...] = ()
    device_declared: bool = False
    # The architecture of the parse being made (set by `verify` for its device-side parses).
    device_arch: str | None = None

    @property
    def real_headers(self) -> bool:
        return bool(self.include_dirs)

    @property
    def effective_defines(self) -> tuple[str, ...]:
        """Every macro the parse defines: the `--define`s, then each `--clang-arg -DNAME[=VALUE]`."""
        return (*self.defines, *(argument[2:] for argument in self.clang_args if argument.startswith("-D")))

    @property
    def cuda_includes(self) -> bool:
        """Whether clang includes CUDA's own headers (only possible with a resource directory)."""
        return self.real_headers and self.resource_dir is not None and self.cuda_path is not None


CONTRACT_MODE = VerifyOptions()


def find_cuda_path(environment: Mapping[str, str] | None = None) -> Path | None:
    """The CUDA toolkit to parse against when `--cuda-path` is not given: `CUDA_PATH`, then
    `CUDA_HOME`, then `/usr/local/cuda`, whichever names an existing directory first."""
    environment = os.environ if environment is None else environment
    candidates = [environment.get("CUDA_PATH", ""), environment.get("CUDA_HOME", ""), "/usr/local/cuda"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def find_resource_dirs(roots: Sequence[Path] = (Path("/usr/lib"),)) -> list[Path]:
    """Installed clang resource directories libclang 18 can parse CUDA with, newest first.

    Looks where Debian and Ubuntu put them (`ROOT/llvm-N/lib/clang/N*`, `ROOT/clang/N*`) and keeps
    those that hold clang's CUDA wrapper headers.
    """
    found: list[Path] = []
    seen: set[Path] = set()  # Debian's /usr/lib/clang/16/include and 16.0.6/include link to llvm-16's
    for major in COMPATIBLE_RESOURCE_MAJORS:
        for root in roots:
            for parent in (root / f"llvm-{major}" / "lib" / "clang", root / "clang"):
                for directory in sorted(parent.glob(f"{major}*")):
                    wrapper = directory / "include" / "__clang_cuda_runtime_wrapper.h"
                    if wrapper.is_file() and wrapper.resolve() not in seen:
                        seen.add(wrapper.resolve())
                        found.append(directory)
    return found


def resource_dir_hint() -> str:
    """Why a real tree's system or CUDA headers were not found, and where a fix is."""
    found = find_resource_dirs()
    where = f"found here: {', '.join(map(str, found))}" if found else f"none found here; {RESOURCE_DIR_HINT}"
    return (
        "hint: no --resource-dir: the libclang wheel has no clang resource headers (stddef.h, the CUDA"
        f" wrappers), which real trees need; pass a clang 16-18 resource directory ({where})"
    )


def missing_cuda_headers(cuda_path: Path) -> tuple[str, ...]:
    """The headers clang's CUDA wrapper includes, and the CUDA library headers torch includes, that
    the toolkit at `cuda_path` lacks: the ones flashast serves stand-ins for."""
    return tuple(name for name in (*CUDA_HEADERS_CLANG_EXPECTS, *CUDA_LIBRARY_HANDLES)
                 if not (cuda_path / "include" / name).is_file())


def declares_configure_call(cuda_path: Path) -> bool:
    """Whether the toolkit declares `cudaConfigureCall`, which clang's device-side semantics look up
    for a kernel launch (CUDA 13 no longer does)."""
    try:
        return "cudaConfigureCall" in (cuda_path / "include" / "cuda_runtime_api.h").read_text(errors="replace")
    except OSError:
        return False


# clang's CUDA wrapper declares the device functions itself instead of including CUDA's
# `crt/device_functions.h`, so it never reads `crt/sm_90_rt.h`, which nvcc's device compilation includes
# from sm_90 on: its `atomicAdd(float4 *, float4)` (and float2, cluster functions) are then missing, and
# flash-attention 3's sm90 backward kernels for head dim 256 fail on clang alone. A device-side parse
# for sm_90 or later includes it through a served header (`-include`, built by `setup`), as nvcc's
# headers would.
DEVICE_RUNTIME_HEADER = "flashast-device-runtime.h"
SM90_RUNTIME = "crt/sm_90_rt.h"
_ARCHITECTURE_NUMBER = re.compile(r"sm_([0-9]{2,3})[a-z]?")  # `kinds.is_architecture`'s spelling


def includes_sm90_runtime(options: VerifyOptions) -> bool:
    """Whether a parse includes `SM90_RUNTIME` through `DEVICE_RUNTIME_HEADER`: a device-side parse for
    sm_90 or later against a toolkit that has it."""
    number = _ARCHITECTURE_NUMBER.fullmatch(options.device_arch or "")
    return (number is not None and int(number.group(1)) >= 90 and options.cuda_includes
            and options.cuda_path is not None and (options.cuda_path / "include" / SM90_RUNTIME).is_file())


def device_parse_bound(jobs: int) -> int:
    """How many device-side parses may run at once: `jobs`, but no more than the free memory holds
    at about 4 GB each (`DEVICE_PARSE_BYTES`: a device-side batch of FA3 files peaks near 3.4 GB)."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1
    return max(1, min(jobs, free // DEVICE_PARSE_BYTES))


def clang_arguments(options: VerifyOptions) -> list[str]:
    """The command line libclang parses every file with (the main file aside)."""
    if not options.real_headers:
        return [*CONTRACT_ARGUMENTS, *options.clang_args]
    arguments = [*CUDA_HOST_ARGUMENTS]
    if options.device_arch is not None:
        # The device side, where kernel bodies are instantiated (a static_assert inside cute's copy
        # atoms fires only there).
        arguments = [argument for argument in arguments if argument != "--cuda-host-only"]
        arguments += ["--cuda-device-only", f"--cuda-gpu-arch={options.device_arch}", *DEVICE_ARGUMENTS]
    if options.resource_dir is not None:
        arguments += ["-resource-dir", str(options.resource_dir)]
    if options.cuda_includes and options.cuda_path is not None:
        arguments.append(f"--cuda-path={options.cuda_path}")
        if missing_cuda_headers(options.cuda_path):
            arguments.append(f"-idirafter{CUDA_STAND_INS}")
        if includes_sm90_runtime(options):
            arguments += ["-include", f"{CUDA_STAND_INS}/{DEVICE_RUNTIME_HEADER}"]
    else:
        arguments.append("-nocudainc")
    arguments += [f"-I{directory}" for directory in options.include_dirs]
    arguments += [f"-D{define}" for define in options.defines]
    arguments += options.clang_args
    return arguments


def load_cindex() -> ModuleType:
    """Import `clang.cindex` and load the shared library, or say in one line how to get it."""
    try:
        from clang import cindex
    except ImportError:
        raise LibclangUnavailable(
            f"libclang: the Python package is not installed; run `{INSTALL_HINT}` (or pass --no-verify)"
        ) from None
    try:
        cindex.Index.create()
    except Exception as error:  # cindex raises its own LibclangError or OSError when the .so is unusable
        reason = " ".join(str(error).split())[:160]
        raise LibclangUnavailable(
            f"libclang: the shared library does not load ({reason}); reinstall with"
            f" `{INSTALL_HINT} --force-reinstall` (or pass --no-verify)"
        ) from None
    _decode_names_as_paths(cindex)
    module: ModuleType = cindex
    return module


def _decode_names_as_paths(cindex: ModuleType) -> None:
    """libclang hands back file names as bytes, which its Python binding decodes as strict UTF-8: a
    header anywhere under an include directory whose name is not UTF-8 ended the run with a
    `UnicodeDecodeError`. Decoded as Python decodes paths instead (undecodable bytes kept as
    surrogates, which `os.fsencode` turns back into the same bytes, and reports print escaped)."""

    def value(self: Any) -> str | None:
        raw = super(ctypes.c_char_p, self).value
        return None if raw is None else bytes(raw).decode("utf-8", "surrogateescape")

    cindex.c_interop_string.value = property(value)


def libclang_identity() -> str:
    """Which libclang would parse: the bindings' path and the shared library's name, size and mtime
    (a reinstall or an upgrade changes it), without loading the library."""
    from importlib.util import find_spec

    try:
        spec = find_spec("clang")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return "libclang:absent"
    native = os.path.join(os.path.dirname(spec.origin), "native")
    parts = [spec.origin]
    for name in sorted(os.listdir(native)) if os.path.isdir(native) else []:
        if name.startswith("libclang"):
            status = os.stat(os.path.join(native, name))
            parts.append(f"{name}:{status.st_size}:{status.st_mtime_ns}")
    return "|".join(parts)
