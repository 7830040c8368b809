"""The compilers flashast's real-header rows are measured against, run as a build runs them.

A build compiles its files `-j N` at a time (ninja, make, setuptools' parallel build), so an anchor
that runs one compiler process after another flatters any tool that uses every core by about the
core count. Here every anchor runs its files N at a time, N being the `--jobs` flashast ran with,
and each process's own CPU seconds are summed, so a row can say where the time goes (waiting for a
core, or work) as well as the wall time.

- `clang++ -fsyntax-only` with the flags of flashast's host-side parse (`clang_anchor_command`);
- `nvcc -c` with flash-attention 2's own `setup.py` flags for sm_80 (`fa2_nvcc_command`): the ground
  truth flashast's host + device verdict stands in for, and the time it would take a build to find
  the same mistakes.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# flash-attention 2.8.3's setup.py: `nvcc_flags` plus the sm_80 `-gencode` its `cc_flag` adds
# (`--threads 4` is `append_nvcc_threads`' default; with one architecture it changes nothing).
# torch's CUDAExtension adds `-fPIC` for the host compiler and its own defines; the ones that change
# what is compiled are here.
FA2_NVCC_FLAGS = (
    "-O3", "-std=c++17",
    "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_HALF2_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
    "--expt-relaxed-constexpr", "--expt-extended-lambda", "--use_fast_math",
    "-gencode", "arch=compute_80,code=sm_80", "--threads", "4",
    "-Xcompiler", "-fPIC", "-DTORCH_API_INCLUDE_EXTENSION_H", "-DTORCH_EXTENSION_NAME=flash_attn_2_cuda",
)


@dataclass
class Outcome:
    """One compiler process: its exit code, its own CPU seconds and the tail of what it printed."""

    command: list[str]
    returncode: int = 0
    cpu_seconds: float = 0.0
    peak_rss_kib: int = 0
    tail: str = ""


@dataclass
class ParallelRun:
    """Every process of one anchor: wall time from the first start to the last exit."""

    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def cpu_seconds(self) -> float:
        return sum(outcome.cpu_seconds for outcome in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.returncode != 0]


def run_in_parallel(commands: Sequence[Sequence[str]], jobs: int, env: Mapping[str, str]) -> ParallelRun:
    """Run `commands`, at most `jobs` at a time, each as soon as a slot is free, in the given order."""
    outcomes = [Outcome(list(command)) for command in commands]
    pending = iter(outcomes)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                outcome = next(pending, None)
            if outcome is None:
                return
            process = subprocess.Popen(outcome.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       env=dict(env))
            assert process.stderr is not None
            output = process.stderr.read().decode(errors="replace")  # read before waiting: the pipe may fill
            process.stderr.close()
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            outcome.returncode = process.returncode
            outcome.cpu_seconds = usage.ru_utime + usage.ru_stime
            outcome.peak_rss_kib = usage.ru_maxrss
            outcome.tail = "\n".join(line for line in output.splitlines()[-20:])

    os.sync()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(max(1, min(jobs, len(outcomes))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ParallelRun(time.perf_counter() - started, outcomes)


# `clang -fsyntax-only` through libclang, one process per file: the same clang front end and version
# flashast parses with (a clang++ binary of another version may not parse the same CUDA headers:
# clang++ 16 rejects CUDA 13's CCCL on the host side, which libclang 18 parses). Exit 1 on any error.
LIBCLANG_SYNTAX_ONLY = (
    "import sys\n"
    "from clang import cindex\n"
    "unit = cindex.Index.create().parse(sys.argv[-1], sys.argv[1:-1])\n"
    "errors = [d for d in unit.diagnostics if d.severity >= cindex.Diagnostic.Error]\n"
    "for d in errors[:3]:\n"
    "    print(f'{d.location.file}:{d.location.line}: error: {d.spelling}', file=sys.stderr)\n"
    "sys.exit(1 if errors else 0)\n"
)


def libclang_syntax_only(python: str) -> list[str]:
    """The command prefix of one `clang -fsyntax-only` parse through libclang (flags and file follow)."""
    return [python, "-c", LIBCLANG_SYNTAX_ONLY]


def fa2_nvcc_command(nvcc: str, include_dirs: Sequence[str], defines: Sequence[str], source: Path,
                     output: Path) -> list[str]:
    """`nvcc -c` of one FA2 file as its setup.py builds it for sm_80, against the same trees flashast
    verifies with (FA2's sources, its CUTLASS, torch's headers)."""
    return [nvcc, "-c", str(source), "-o", str(output), *FA2_NVCC_FLAGS,
            *(f"-I{directory}" for directory in include_dirs), *(f"-D{define}" for define in defines)]


def first_error(outcome: Outcome) -> str:
    """The first line of a failed compile that says what failed, for a row's cell."""
    lines = [line.strip() for line in outcome.tail.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line]
    return (errors or lines or ["(no output)"])[0]


# Flags of flashast's host-side real-header parse (flashast.verify's CUDA host arguments); the clang++
# anchor passes the same, with clang++'s own resource directory (one of another clang would not match).
CLANG_HOST_FLAGS = (
    "-fsyntax-only", "-x", "cuda", "--cuda-host-only", "-std=c++17", "-Wall", "-Wno-pragma-once-outside-header",
    "-Wno-unknown-cuda-version", "-nocudalib", "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
    "-U__CUDA_NO_HALF2_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
)
# Headers clang's CUDA wrapper and torch include that CUDA 13 lacks; flashast serves these stand-ins
# from memory, the clang++ anchor from a folder on disk (after every real include directory).
CUDA_STAND_INS = {
    "texture_fetch_functions.h": "",
    "curand_mtgp32_kernel.h": "",
    "cusparse.h": "typedef struct cusparseContext *cusparseHandle_t;\n",
    "cublas_v2.h": "typedef struct cublasContext *cublasHandle_t;\n",
    "cublasLt.h": "typedef struct cublasLtContext *cublasLtHandle_t;\n",
    "cusolverDn.h": "typedef struct cusolverDnContext *cusolverDnHandle_t;\n",
}
# libclang's own major version first; clang++-19 (Debian's `apt-get install clang-19`) parses FA2 2.8.3
# host side with CUDA 13 as libclang 18 does (exit 0 on the fwd and bwd files); older ones reject CUDA 13's CCCL.
ANCHOR_CLANG_NAMES = ("clang++-18", "clang++-19")


def option_values(arguments: Sequence[str], option: str) -> list[str]:
    """Every value of `option` in a flashast argument list (`--include-dir A --include-dir B` gives [A, B])."""
    return [arguments[index + 1] for index, argument in enumerate(arguments[:-1]) if argument == option]


def clang_anchor_command(clang: Sequence[str], arguments: Sequence[str], stand_ins: Path) -> list[str]:
    """`clang -fsyntax-only` (`clang`: a clang++ binary, or libclang's parse in a process) with the
    flags flashast parses with (the source file appended by the caller)."""
    command = [*clang, *CLANG_HOST_FLAGS]
    resource = option_values(arguments, "--resource-dir")
    if len(clang) > 1 and resource:  # libclang has no resource headers of its own; a clang++ uses its own
        command += ["-resource-dir", resource[-1]]
    cuda = option_values(arguments, "--cuda-path")
    if cuda:
        command.append(f"--cuda-path={cuda[-1]}")
        stand_ins.mkdir(parents=True, exist_ok=True)
        for name, text in CUDA_STAND_INS.items():
            if not (Path(cuda[-1]) / "include" / name).is_file():
                (stand_ins / name).write_text("#pragma once\n" + text)
        command += ["-idirafter", str(stand_ins)]
    else:
        command.append("-nocudainc")
    command += [f"-I{directory}" for directory in option_values(arguments, "--include-dir")]
    command += [f"-D{define}" for define in option_values(arguments, "--define")]
    return command + option_values(arguments, "--clang-arg")

