"""When libclang refuses the command line itself: which option the user gave made it so.

libclang answers a command line it cannot use (`-std=c++99` for CUDA, `-x notalang`, `-###`,
`--version`, an architecture it does not know) with no translation unit at all, and says nothing more.
The user only knows which options they added, so the refusal is reported against one of them: each
option the user gave is taken away in turn, and the first one whose absence lets libclang load the
same one-line file is named. Only a refused parse pays for this search (a few parses of one line).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from flashast.errors import UsageError
from flashast.verify.toolchain import VerifyOptions, clang_arguments

# What the search parses: the command line is on trial, not a file.
ONE_LINE = "int flashast_command_line_;\n"
# libclang 18's CUDA architectures (its `--cuda-gpu-arch` refuses any other name: no translation unit).
CLANG_CUDA_ARCHITECTURES = (
    "sm_20", "sm_21", "sm_30", "sm_32", "sm_35", "sm_37", "sm_50", "sm_52", "sm_53", "sm_60", "sm_61", "sm_62",
    "sm_70", "sm_72", "sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a",
)


def _without_each_option(options: VerifyOptions) -> Iterator[tuple[str, VerifyOptions]]:
    """(the option as the user spelled it, the options without it), in command-line order of weight:
    raw clang arguments first, since they are what libclang most often refuses."""
    for position, argument in enumerate(options.clang_args):
        kept = options.clang_args[:position] + options.clang_args[position + 1:]
        yield f"--clang-arg={argument}", dataclasses.replace(options, clang_args=kept)
    if options.device_arch is not None:
        yield f"--device-arch {options.device_arch}", dataclasses.replace(options, device_arch=None)
    for position, define in enumerate(options.defines):
        kept = options.defines[:position] + options.defines[position + 1:]
        yield f"--define {define}", dataclasses.replace(options, defines=kept)
    for position, directory in enumerate(options.include_dirs):
        kept_directories = options.include_dirs[:position] + options.include_dirs[position + 1:]
        if kept_directories:
            yield f"--include-dir {directory}", dataclasses.replace(options, include_dirs=kept_directories)
    if options.resource_dir is not None:
        yield f"--resource-dir {options.resource_dir}", dataclasses.replace(options, resource_dir=None)
    if options.cuda_path is not None:
        yield f"--cuda-path {options.cuda_path}", dataclasses.replace(options, cuda_path=None)


def refused_command_line(cindex: Any, index: Any, options: VerifyOptions, main_path: str) -> UsageError:
    """The error for a command line libclang gave no translation unit for, naming the user's option
    without which a one-line file (served as `main_path`) parses."""
    for spelled, without in _without_each_option(options):
        try:
            index.parse(main_path, clang_arguments(without), [(main_path, ONE_LINE)], 0)
        except cindex.TranslationUnitLoadError:
            continue
        return UsageError(f"{spelled}: libclang refuses the command line with it (no translation unit)")
    return UsageError("the verification options: libclang refuses the command line they make (no translation unit)")
