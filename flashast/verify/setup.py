"""How a parse is set up: one frozen value per side, computed once, taken by everything that parses
or names a parse in a verification key.

A `ParseSetup` is the clang command line, the include directories searched (for shadowing), the
stand-ins served for CUDA headers the toolkit lacks, and the digest every key of that side shares
(`common`: the verifier, libclang, the command line, its purpose and the environment variables clang
reads for include paths). The parser parses with it, `Sources` serves and names what a parse read
with it, and `keys` names a file's inputs with it, so the recipe of a key lives here and nowhere else:
a key that forgot one of these would let a verdict stand for inputs it never saw.

Keys are portable: no absolute path of the machine that wrote them is in one. The folders a parse
searches (each `--include-dir`, in order, then the resource and CUDA directories) are its `roots`,
named `<include-dir-1>`, `<include-dir-2>`, ..., `<resource-dir>`, `<cuda>`; the command line in
`common` and every path a key records (`portable`) name a root instead of its absolute path, and
`local` turns a recorded name back into this machine's path. So stores written on several machines
over copies of one tree at different places (CI shards, `--shard K/N`) merge by copying, and a
header is identified by its path relative to the root it was found through, and its sha256. Paths
outside every root (the system's own headers, a `--clang-arg` path) stay as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flashast.nodes import (
    ClassDeclaration,
    Declaration,
    Include,
    LineComment,
    MacroDefinition,
    TranslationUnit,
    TypeAlias,
    Verbatim,
)
from flashast.printer import render
from flashast.signatures import Declarator, Type
from flashast.verify.keys import digest_bytes
from flashast.verify.toolchain import (
    CUDA_LIBRARY_HANDLES,
    CUDA_STAND_INS,
    DEVICE_RUNTIME_HEADER,
    SM90_RUNTIME,
    VerifyOptions,
    clang_arguments,
    declares_configure_call,
    includes_sm90_runtime,
    libclang_identity,
    missing_cuda_headers,
)
from flashast.version import __version__

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
    roots: tuple[tuple[str, str], ...] = ()  # (name, absolute path), in search order

    def portable(self, path: str) -> str:
        """`path` as a key records it: under the first root that holds it, that root's name."""
        for name, root in self.roots:
            if path == root or path.startswith(root + "/"):
                return name + path[len(root):]
        return path

    def local(self, name: str) -> str:
        """A recorded path as this machine spells it (`portable` undone)."""
        if name.startswith("<"):
            root_name, _, rest = name.partition(">")
            for known, root in self.roots:
                if known == root_name + ">":
                    return root + rest
        return name

    def key(self, text: str, file_arguments: Sequence[str] = (), included: Sequence[tuple[str, str]] = ()) -> str:
        """A file's input digest: `common`, the file's own arguments (its `-D` macros), its text and
        the (name, text) of each generated file it includes, which its readings then leave out."""
        return digest_parts(self.common, json.dumps(list(file_arguments)), text,
                            *(part for name, included_text in included for part in (name, included_text)))


def parse_setup(options: VerifyOptions, purpose: str = "files", arguments: Sequence[str] | None = None) -> ParseSetup:
    """The setup of one side: `options`' command line (or `arguments`, as the dispatcher's differs)
    for a `purpose` (files, conformance, a dispatcher), computed once per run and options."""
    # The working directory and the environment are part of the cache's key: relative include
    # directories and CPATH mean something else after a change of either.
    return _parse_setup(options, purpose, None if arguments is None else tuple(arguments),
                        tuple(sorted((name, value) for name, value in os.environ.items() if name in CLANG_ENVIRONMENT)),
                        os.getcwd())


@cache
def _parse_setup(options: VerifyOptions, purpose: str, arguments: tuple[str, ...] | None,
                 environment: tuple[tuple[str, str], ...], working_directory: str) -> ParseSetup:
    command_line = tuple(clang_arguments(options)) if arguments is None else arguments
    spelled = [(f"<include-dir-{position}>", str(directory))
               for position, directory in enumerate(options.include_dirs, start=1)]
    spelled += [("<resource-dir>", str(options.resource_dir))] if options.resource_dir is not None else []
    spelled += [("<cuda>", str(options.cuda_path))] if options.cuda_path is not None else []
    roots = tuple((name, os.path.abspath(given)) for name, given in spelled)
    # `strict` decides whether a header's warning fails, so it is part of every verdict.
    portable_command_line = [_portable_argument(argument, spelled, roots) for argument in command_line]
    return ParseSetup(
        options=options,
        arguments=command_line,
        search_directories=tuple(os.path.abspath(directory) for directory in options.include_dirs),
        stand_ins=tuple(cuda_stand_ins(options)),
        common=common_inputs([*portable_command_line, f"flashast-{purpose}", f"flashast-strict={options.strict}"],
                             dict(environment)),
        roots=roots,
    )


# The options of a command line that are followed, in the same argument, by a root's path.
_PATH_OPTIONS = ("", "-I", "-isystem", "-idirafter", "--cuda-path=")


def _portable_argument(argument: str, *spellings: Sequence[tuple[str, str]]) -> str:
    """`argument` with a root's path (as given, or absolute) replaced by the root's name."""
    for name, path in sorted((pair for pairs in spellings for pair in pairs), key=lambda pair: -len(pair[1])):
        for option in _PATH_OPTIONS:
            start = option + path
            if argument == start or argument.startswith(start + "/"):
                return option + name + argument[len(start):]
    return argument


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
    sources = sorted(PACKAGE_DIRECTORY.rglob("*.py"))  # its subpackages too (`dispatch`)
    return digest_parts(__version__, *(f"{path.relative_to(PACKAGE_DIRECTORY)}:{digest_bytes(path.read_bytes())}"
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
    served = [(f"{CUDA_STAND_INS}/{name}", render(TranslationUnit(_stand_in(name, options, cuda_path))))
              for name in missing_cuda_headers(cuda_path)]
    if includes_sm90_runtime(options):
        served.append((f"{CUDA_STAND_INS}/{DEVICE_RUNTIME_HEADER}", render(_device_runtime())))
    return served


def _device_runtime() -> TranslationUnit:
    """The header a device-side parse for sm_90 or later includes first (`includes_sm90_runtime`):
    CUDA's `crt/sm_90_rt.h`, with the macros CUDA's own headers define to include it without its
    "internal header" warning (it undefines the second one itself)."""
    return TranslationUnit((
        LineComment("flashast: what nvcc declares on the device from sm_90 on and clang's CUDA wrapper leaves out"),
        MacroDefinition("__CUDA_INCLUDE_COMPILER_INTERNAL_HEADERS__"),
        MacroDefinition("__UNDEF_CUDA_INCLUDE_COMPILER_INTERNAL_HEADERS_SM_90_RT_H__"),
        Include(SM90_RUNTIME),
    ))


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
