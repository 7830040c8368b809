"""How a parse is set up: one frozen value per side, computed once, taken by everything that parses
or names a parse in a verification key.

A `ParseSetup` is the clang command line, the include directories searched (for shadowing), the
stand-ins served for CUDA headers the toolkit lacks, and the digest every key of that side shares
(`common`: the verifier, libclang, the command line, its purpose and the environment variables clang
reads for include paths). The parser parses with it, `Sources` serves and names what a parse read
with it, and `keys` names a file's inputs with it, so the recipe of a key lives here and nowhere else:
a key that forgot one of these would let a verdict stand for inputs it never saw.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flashast import __version__
from flashast.nodes import ClassDeclaration, Declaration, LineComment, TranslationUnit, TypeAlias, Verbatim
from flashast.printer import render
from flashast.signatures import Declarator, Type
from flashast.verify.toolchain import (
    CUDA_LIBRARY_HANDLES,
    CUDA_STAND_INS,
    VerifyOptions,
    clang_arguments,
    declares_configure_call,
    libclang_identity,
    missing_cuda_headers,
)

# Environment variables clang consults for include paths: they can change what a parse reads.
CLANG_ENVIRONMENT = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH")
PACKAGE_DIRECTORY = Path(__file__).resolve().parent
# The stand-in that also declares `cudaConfigureCall` for device-side parses (see `_stand_in`).
DEVICE_STAND_IN_HOST = "texture_fetch_functions.h"
CONFIGURE_CALL = (
    'extern "C" cudaError_t cudaConfigureCall(dim3 gridDim, dim3 blockDim, size_t sharedMem = 0,'
    " cudaStream_t stream = 0);"
)


@dataclass(frozen=True)
class ParseSetup:
    """Everything one side's parses share, and the digest of it that starts every key of that side."""

    options: VerifyOptions
    arguments: tuple[str, ...]
    search_directories: tuple[str, ...]
    stand_ins: tuple[tuple[str, str], ...]
    common: str

    def key(self, text: str, file_arguments: Sequence[str] = (), included: Sequence[tuple[str, str]] = ()) -> str:
        """A file's input digest: `common`, the file's own arguments (its `-D` macros), its text and
        the (name, text) of each generated file it includes, which its readings then leave out."""
        return digest_parts(self.common, json.dumps(list(file_arguments)), text,
                            *(part for name, included_text in included for part in (name, included_text)))


def parse_setup(options: VerifyOptions, purpose: str = "files", arguments: Sequence[str] | None = None) -> ParseSetup:
    """The setup of one side: `options`' command line (or `arguments`, as the dispatcher's differs)
    for a `purpose` (files, conformance, a dispatcher), computed once per run and options."""
    return _parse_setup(options, purpose, None if arguments is None else tuple(arguments),
                        tuple(sorted((name, value) for name, value in os.environ.items() if name in CLANG_ENVIRONMENT)))


@cache
def _parse_setup(options: VerifyOptions, purpose: str, arguments: tuple[str, ...] | None,
                 environment: tuple[tuple[str, str], ...]) -> ParseSetup:
    command_line = tuple(clang_arguments(options)) if arguments is None else arguments
    # `strict` decides whether a header's warning fails, so it is part of every verdict.
    return ParseSetup(
        options=options,
        arguments=command_line,
        search_directories=tuple(os.path.abspath(directory) for directory in options.include_dirs),
        stand_ins=tuple(cuda_stand_ins(options)),
        common=common_inputs([*command_line, f"flashast-{purpose}", f"flashast-strict={options.strict}"],
                             dict(environment)),
    )


def digest_parts(*parts: str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", errors="surrogateescape")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


@cache
def verifier_identity() -> str:
    """flashast's version and the content of this package: a change to how a parse is judged
    invalidates every key."""
    sources = sorted(PACKAGE_DIRECTORY.glob("*.py"))
    return digest_parts(__version__, *(f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
                                       for path in sources))


def common_inputs(arguments: Sequence[str], environment: Mapping[str, str]) -> str:
    """The part of every input digest one side shares: the verifier, libclang, the command line and
    the environment variables clang reads for include paths."""
    return digest_parts(
        "flashast-verified-2",
        verifier_identity(),
        libclang_identity(),
        json.dumps(list(arguments)),
        json.dumps({name: environment.get(name) for name in CLANG_ENVIRONMENT}, sort_keys=True),
    )


def cuda_stand_ins(options: VerifyOptions) -> list[tuple[str, str]]:
    """The headers a real-header parse with CUDA's headers is served for those the toolkit lacks
    (`missing_cuda_headers`), as (path under `CUDA_STAND_INS`, text); none without `cuda_includes`."""
    if not options.cuda_includes or options.cuda_path is None:
        return []
    cuda_path = options.cuda_path
    return [(f"{CUDA_STAND_INS}/{name}", render(TranslationUnit(_stand_in(name, options, cuda_path))))
            for name in missing_cuda_headers(cuda_path)]


def _stand_in(name: str, options: VerifyOptions, cuda_path: Path) -> tuple[Declaration, ...]:
    """A header in place of one the toolkit lacks: empty for clang's CUDA wrapper; a CUDA library's
    handle type for torch (`CUDA_LIBRARY_HANDLES`); for device-side parses, the one clang's CUDA
    wrapper includes after the runtime declares `cudaConfigureCall` if the toolkit no longer does
    (CUDA 13): clang's device-side semantics look it up for every kernel launch."""
    found: tuple[Declaration, ...] = (LineComment(f"flashast: {cuda_path} has no {name}"),)
    handle = CUDA_LIBRARY_HANDLES.get(name)
    if handle is not None:
        context = handle.removesuffix("Handle_t") + "Context"
        found += (ClassDeclaration(context), TypeAlias(handle, Type(context, declarator=Declarator.POINTER)))
    if options.device_arch is not None and name == DEVICE_STAND_IN_HOST and not declares_configure_call(cuda_path):
        found += (Verbatim(CONFIGURE_CALL),)
    return found
