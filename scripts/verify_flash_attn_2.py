#!/usr/bin/env python3
"""Verify the `flash-attn-2` preset against the real flash-attention 2.8.3 sources, fetched from the registries.

Contract verification proves that flashast's files match the interface the preset declares; this
script proves they match the real library. It fetches everything into a cache folder (a second run
reuses it and fetches nothing), then runs `python -m flashast --preset flash-attn-2 --timings` in
real-header mode (it prints the exact command) and shows each file's time as it is verified. Files
sharing their includes share one precompiled preamble, so the first file of each group pays for
parsing the headers and later ones mostly for their own template instantiations. What it fetches:

- the `flash-attn==2.8.3.post2` source distribution (PyPI), which carries `csrc/flash_attn/src/*.h`
  and CUTLASS (`csrc/cutlass/include`). pip can only fetch a source distribution by running its
  setup, which imports torch, so the cache holds a virtual environment with `torch==2.13.0` (its
  CPU build), whose `torch/include` also provides the ATen/c10 headers `flash.h` includes;
- clang's resource headers (the CUDA wrappers), which the libclang wheel lacks: Debian's
  `libclang-common-16-dev` (`/usr/lib/llvm-16/lib/clang/16`), installed with apt-get (after
  `apt-get update`) when running as root and `flashast.verify.find_resource_dirs` finds none;
- nothing for CUDA: the toolkit already on the machine (`--cuda-path`, `$CUDA_PATH`, `$CUDA_HOME`,
  `/usr/local/cuda`, nvcc's) is used, with `include/cccl` for CCCL; flashast itself serves the two
  headers clang's CUDA wrapper wants and CUDA 13 lacks.

The subset (at least one file of each kind 2.8.3 has, both dtypes, causal and not) must verify.
Two more files must *fail*, in a known way, because the preset follows upstream's generator past the
2.8.3 release: `fwd_split_align` (and the `extern template` line the `fwd_split` files now carry) came
with "Parallelize splitkv alignment templated kernels", after 2.8.3, so 2.8.3 has no
`run_mha_fwd_splitkv_align`. flashast reporting exactly that is interface drift caught, and the
script checks that nothing else in those files fails.

Exit codes: 0 everything as expected; 2 usage (flashast not importable, bad option); 3 a file did not
verify, or an expected drift was not reported as expected; 4 fetching or installing failed (registries
unreachable, apt-get not possible, no CUDA toolkit).

`--print-args` prints the flashast verification options for the cached trees (shell words, one line),
so a maintainer can verify any other selection: `python -m flashast --preset flash-attn-2 … ARGS`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FLASH_ATTN_VERSION = "2.8.3.post2"
FLASH_ATTN_SDIST = f"flash_attn-{FLASH_ATTN_VERSION}.tar.gz"
# What the registry served on 2026-11-25; a different archive under the same version is not the
# release this script documents.
FLASH_ATTN_SHA256 = "d0f9f0b08a986cdeadbffcf5ec8b3a8f514366c68ad1853d3ab061bc83cc340b"
TORCH_REQUIREMENT = "torch==2.13.0"
RESOURCE_DIR_PACKAGE = "libclang-common-16-dev"
CUDA_WRAPPER = "include/__clang_cuda_runtime_wrapper.h"
# torch's wheel lacks this generated header; c10 skips it when told to, as its CMake-less builds do.
DEFINES = ("C10_CUDA_NO_CMAKE_CONFIGURE_FILE",)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_FETCH = 4

# The documented subset: each kind that verifies against 2.8.3, both dtypes, causal and not, the
# smallest and largest head dimensions (a backward file costs several times a forward one).
VERIFIED_FILES = (
    "flash_fwd_hdim128_fp16_sm80.cu",
    "flash_fwd_hdim32_fp16_causal_sm80.cu",
    "flash_fwd_hdim64_bf16_causal_sm80.cu",
    "flash_fwd_hdim256_bf16_sm80.cu",
    "flash_bwd_hdim128_bf16_sm80.cu",
    "flash_bwd_hdim256_fp16_causal_sm80.cu",
)
DRIFT_TEMPLATE = "run_mha_fwd_splitkv_align"
DRIFT_EXPLANATION = (
    f"{DRIFT_TEMPLATE} came with upstream's 'Parallelize splitkv alignment templated kernels', after"
    f" flash-attn {FLASH_ATTN_VERSION}: the fwd_split_align kind does not exist in that release, and the"
    f" preset's fwd_split files declare `extern template ... {DRIFT_TEMPLATE}`, which 2.8.3's do not"
)
# Files whose only errors must be that template missing (anything else in them must verify).
DRIFT_FILES = (
    "flash_fwd_split_hdim128_bf16_causal_sm80.cu",
    "flash_fwd_split_align_hdim64_fp16_sm80.cu",
)


class SetupFailure(Exception):
    """Fetching or installing a prerequisite failed; carries the exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FETCH) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Trees:
    """Where the real headers and toolchain pieces are, once fetched."""

    flash_attn_src: Path
    cutlass_include: Path
    torch_include: Path
    cuda: Path
    resource_dir: Path

    def flashast_arguments(self) -> list[str]:
        """The flashast options that verify against these trees (what `--print-args` prints)."""
        arguments: list[str] = []
        for directory in (self.flash_attn_src, self.cutlass_include, self.torch_include,
                          self.cuda / "include" / "cccl"):
            arguments += ["--include-dir", str(directory)]
        for define in DEFINES:
            arguments += ["--define", define]
        arguments += ["--cuda-path", str(self.cuda), "--resource-dir", str(self.resource_dir)]
        return arguments


def say(message: str) -> None:
    print(f"verify-flash-attn-2: {message}", flush=True)


def default_cache() -> Path:
    if os.environ.get("FLASHAST_FA2_CACHE"):
        return Path(os.environ["FLASHAST_FA2_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "flashast-fa2"


def run_quietly(command: Sequence[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a fetching/installing command; on failure show its output's tail and raise `SetupFailure`."""
    completed = subprocess.run(list(command), capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        # pip warns about every missing local index page; those lines hide the reason.
        lines = [line for line in (completed.stdout + completed.stderr).splitlines() if "is ignored" not in line]
        tail = "\n".join(lines[-25:])
        raise SetupFailure(f"{what} failed (exit {completed.returncode}): {shlex.join(command)}\n{tail}")


def torch_environment(cache: Path) -> Path:
    """A virtual environment holding torch, created once; returns torch's include directory."""
    venv = cache / "venv"
    python = venv / "bin" / "python"
    done = venv / ".flashast-complete"
    if not done.exists():
        say(f"creating {venv} with {TORCH_REQUIREMENT} (needed to fetch the sdist, and for ATen/c10 headers)")
        shutil.rmtree(venv, ignore_errors=True)
        run_quietly([sys.executable, "-m", "venv", str(venv)], "creating the virtual environment")
        run_quietly([str(python), "-m", "pip", "install", "-q", TORCH_REQUIREMENT], f"pip install {TORCH_REQUIREMENT}")
        done.write_text(TORCH_REQUIREMENT + "\n")
    include = subprocess.run(
        [str(python), "-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'include'))"],
        capture_output=True, text=True, check=False,
    )
    if include.returncode != 0:
        raise SetupFailure(f"torch in {venv} does not import; delete {venv} and rerun\n{include.stderr[-2000:]}")
    return Path(include.stdout.strip())


def flash_attn_sources(cache: Path) -> Path:
    """The unpacked flash-attn sdist (fetched once, checked against its pinned sha256)."""
    downloads = cache / "downloads"
    archive = downloads / FLASH_ATTN_SDIST
    if not archive.exists():
        say(f"fetching flash-attn=={FLASH_ATTN_VERSION} (source distribution)")
        downloads.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, FLASH_ATTENTION_SKIP_CUDA_BUILD="TRUE")
        python = cache / "venv" / "bin" / "python"
        run_quietly(
            [str(python), "-m", "pip", "download", "-q", f"flash-attn=={FLASH_ATTN_VERSION}", "--no-deps",
             "--no-binary", ":all:", "--no-build-isolation", "-d", str(downloads)],
            "pip download flash-attn", env,
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != FLASH_ATTN_SHA256:
        raise SetupFailure(f"{archive}: sha256 {digest}, expected {FLASH_ATTN_SHA256}; delete it and rerun")
    root = cache / "src" / f"flash_attn-{FLASH_ATTN_VERSION}"
    if not (root / ".flashast-complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            members = [member for member in tar.getmembers() if member.name.startswith(f"{root.name}/csrc/")]
            if hasattr(tarfile, "data_filter"):  # refuse links and paths that leave the folder
                tar.extractall(root.parent, members=members, filter="data")
            else:
                tar.extractall(root.parent, members=members)
        (root / ".flashast-complete").write_text(digest + "\n")
    return root


def find_cuda(explicit: Path | None) -> Path:
    """The CUDA toolkit to parse against: the option, then the usual environment variables and places."""
    candidates = [explicit] if explicit else []
    candidates += [Path(os.environ[name]) for name in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(name)]
    candidates.append(Path("/usr/local/cuda"))
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(Path(nvcc).resolve().parent.parent)
    candidates += sorted(Path("/usr/local").glob("cuda-*"), reverse=True)
    for candidate in candidates:
        if (candidate / "include" / "cuda.h").is_file():
            return candidate
    raise SetupFailure("no CUDA toolkit found (looked at --cuda-path, $CUDA_HOME, $CUDA_PATH, /usr/local/cuda,"
                       " nvcc's); install one or pass --cuda-path")


def find_resource_dir(explicit: Path | None) -> Path:
    """clang resource headers libclang 18 can parse CUDA with; installs Debian's when root and none exist."""
    if explicit:
        if not (explicit / CUDA_WRAPPER).is_file():
            raise SetupFailure(f"--resource-dir {explicit}: has no {CUDA_WRAPPER}", EXIT_USAGE)
        return explicit
    from flashast.verify import COMPATIBLE_RESOURCE_MAJORS, find_resource_dirs

    found = find_resource_dirs()
    if found:
        return found[0]
    wanted = "clang resource headers of clang " + "/".join(map(str, COMPATIBLE_RESOURCE_MAJORS))
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SetupFailure(f"no {wanted} found; install Debian's {RESOURCE_DIR_PACKAGE} (as root: apt-get"
                           f" install {RESOURCE_DIR_PACKAGE}) or pass --resource-dir")
    say(f"installing {RESOURCE_DIR_PACKAGE} with apt-get (clang's CUDA resource headers)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_quietly(["apt-get", "update", "-q"], "apt-get update", env)
    run_quietly(["apt-get", "install", "-y", "-q", "--no-install-recommends", RESOURCE_DIR_PACKAGE],
                f"apt-get install {RESOURCE_DIR_PACKAGE}", env)
    found = find_resource_dirs()
    if not found:
        raise SetupFailure(f"{RESOURCE_DIR_PACKAGE} is installed but no {wanted} appeared")
    return found[0]


def prepare(cache: Path, cuda_path: Path | None, resource_dir: Path | None) -> Trees:
    cache.mkdir(parents=True, exist_ok=True)
    cuda = find_cuda(cuda_path)
    resource = find_resource_dir(resource_dir)
    torch_include = torch_environment(cache)
    root = flash_attn_sources(cache)
    return Trees(
        flash_attn_src=root / "csrc" / "flash_attn" / "src",
        cutlass_include=root / "csrc" / "cutlass" / "include",
        torch_include=torch_include,
        cuda=cuda,
        resource_dir=resource,
    )


def flashast(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flashast", *arguments], capture_output=True, text=True, check=False)


@dataclass
class Run:
    """One `python -m flashast --timings` run: its exit code, output, and each file's seconds."""

    returncode: int
    output: str
    seconds: dict[str, float]
    wall: float


TIMING_LINE = re.compile(r"^flashast: (?:verified|failed) (\S+) in (\d+(?:\.\d+)?) s$")


def run_flashast(arguments: Sequence[str], show: bool) -> Run:
    """Run flashast, printing each file's time as it comes when `show` (a real-header run is slow)."""
    command = [sys.executable, "-m", "flashast", *arguments]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None  # stdout=PIPE
    seconds: dict[str, float] = {}
    other: list[str] = []
    for line in process.stdout:
        timing = TIMING_LINE.match(line.rstrip("\n"))
        if timing is None:
            other.append(line)
            continue
        seconds[timing.group(1)] = float(timing.group(2))
        if show:
            ok = line.startswith("flashast: verified")
            say(f"  {'ok  ' if ok else 'FAIL'} {timing.group(1)}  {float(timing.group(2)):5.1f} s")
    returncode = process.wait()
    return Run(returncode, "".join(other), seconds, time.perf_counter() - started)


def drift_lines(cache: Path, name: str) -> set[int]:
    """The lines of the generated file that name the template 2.8.3 lacks (rendered without verifying)."""
    preview = cache / "drift-preview"
    completed = flashast("-o", str(preview), "--preset", "flash-attn-2", "--only", name, "--no-verify", "-q")
    if completed.returncode != 0:
        raise SetupFailure(f"flashast could not render {name}:\n{completed.stderr}", EXIT_FAILED)
    text = (preview / name).read_text()
    return {number for number, line in enumerate(text.splitlines(), 1) if DRIFT_TEMPLATE in line}


def error_locations(output: str, name: str) -> list[tuple[int, str]]:
    """(line, message) of each `NAME:LINE:COL: error: …` flashast reported for the generated file."""
    pattern = re.compile(rf"^{re.escape(name)}:(\d+):\d+: error: (.*)$", re.MULTILINE)
    return [(int(match.group(1)), match.group(2)) for match in pattern.finditer(output)]


def selection(names: Sequence[str]) -> list[str]:
    arguments = []
    for name in names:
        arguments += ["--only", name]  # file-name filters are alternatives
    return arguments


def verify_subset(cache: Path, trees: Trees) -> int:
    """The documented subset must verify; the drifted files must fail exactly where 2.8.3 lacks the template."""
    common = ["--preset", "flash-attn-2", "--timings", "-q", *trees.flashast_arguments()]
    verified_arguments = ["-o", str(cache / "out"), *selection(VERIFIED_FILES), *common]
    say(f"verifying {len(VERIFIED_FILES)} files against flash-attn {FLASH_ATTN_VERSION}:")
    say(f"  {shlex.join(['python', '-m', 'flashast', *verified_arguments])}")
    verified = run_flashast(verified_arguments, show=True)
    # A file whose inputs an earlier run verified is not parsed again (exit 0 says it passed).
    failures = list(VERIFIED_FILES) if verified.returncode != 0 else []
    for name in VERIFIED_FILES:
        if verified.returncode == 0 and name not in verified.seconds:
            say(f"  ok   {name}  (verdict reused: nothing it read has changed)")
    if verified.returncode != 0:
        print(verified.output, end="", file=sys.stderr)
    else:
        warnings = len(re.findall(r": warning: ", verified.output))
        if warnings:
            say(f"  ({warnings} warning(s) inside the real headers, none in the generated files; they fail only"
                " under flashast --strict)")

    say(f"expected drift: {DRIFT_EXPLANATION}")
    expected = {name: drift_lines(cache, name) for name in DRIFT_FILES}
    drift = run_flashast(["-o", str(cache / "out"), *selection(DRIFT_FILES), *common], show=False)
    for name in DRIFT_FILES:
        errors = error_locations(drift.output, name)
        unexpected = [(line, message) for line, message in errors
                      if line not in expected[name] or DRIFT_TEMPLATE not in message]
        caught = drift.returncode == 3 and bool(errors) and not unexpected
        where = ", ".join(f"line {line}" for line in sorted({line for line, _ in errors})) or "no error"
        elapsed = drift.seconds.get(name, 0.0)
        say(f"  {'drift caught' if caught else 'FAIL'} {name}  {elapsed:5.1f} s  ({where}: {DRIFT_TEMPLATE})")
        if not caught:
            failures.append(name)
            say(f"    expected exit 3 and errors only at lines {sorted(expected[name])} naming {DRIFT_TEMPLATE};"
                f" got exit {drift.returncode}")
    if any(name in failures for name in DRIFT_FILES):
        print(drift.output, end="", file=sys.stderr)

    first, later = timing_split([verified, drift])
    say(f"time: first files {mean(first):.1f} s on average (each builds its group's preamble), later files"
        f" {mean(later):.1f} s on average, total {verified.wall + drift.wall:.1f} s")
    if failures:
        say(f"FAILED: {', '.join(failures)}")
        return EXIT_FAILED
    say(f"all {len(VERIFIED_FILES)} files verified against the real headers; "
        f"{len(DRIFT_FILES)} drifted files reported as expected")
    return EXIT_OK


def timing_split(runs: Sequence[Run]) -> tuple[list[float], list[float]]:
    """Per-file seconds, split into the first file of each preamble group and the rest.

    flashast groups files by their includes; in this preset that is the launch header, which the
    file name's direction tells (`flash_fwd…` or `flash_bwd…`).
    """
    first: list[float] = []
    later: list[float] = []
    for run in runs:
        seen: set[str] = set()
        for name, seconds in run.seconds.items():
            group = name.split("_")[1]
            (later if group in seen else first).append(seconds)
            seen.add(group)
    return first, later


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verify_flash_attn_2.py",
        description="Verify the flash-attn-2 preset against the real flash-attention 2.8.3 headers.",
    )
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache folder (default: $FLASHAST_FA2_CACHE or ~/.cache/flashast-fa2)")
    parser.add_argument("--cuda-path", type=Path, default=None, help="CUDA toolkit (default: found automatically)")
    parser.add_argument("--resource-dir", type=Path, default=None,
                        help="clang resource directory (default: found, or Debian's installed when root)")
    parser.add_argument("--fetch-only", action="store_true", help="fill the cache and stop")
    parser.add_argument("--print-args", action="store_true",
                        help="print the flashast verification options for the cached trees and stop")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    cache = (arguments.cache or default_cache()).absolute()
    check = subprocess.run([sys.executable, "-c", "import flashast, clang.cindex"], capture_output=True, check=False)
    if check.returncode != 0:
        say(f"{sys.executable} cannot import flashast; run this script with the project's Python"
            " (`python -m pip install -e .` first)")
        return EXIT_USAGE
    started = time.perf_counter()
    try:
        trees = prepare(cache, arguments.cuda_path, arguments.resource_dir)
    except SetupFailure as failure:
        say(f"error: {failure}")
        return failure.exit_code
    if arguments.print_args:
        print(shlex.join(trees.flashast_arguments()))
        return EXIT_OK
    say(f"cache {cache} ready in {time.perf_counter() - started:.1f} s (CUDA {trees.cuda},"
        f" resource dir {trees.resource_dir})")
    if arguments.fetch_only:
        return EXIT_OK
    try:
        return verify_subset(cache, trees)
    except SetupFailure as failure:
        say(f"error: {failure}")
        return failure.exit_code


if __name__ == "__main__":
    sys.exit(main())
