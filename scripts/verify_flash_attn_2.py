#!/usr/bin/env python3
"""Verify the `flash-attn-2` preset against the real flash-attention 2.8.3 sources, fetched from the registries.

Contract verification proves that flashast's files match the interface the preset declares; this
script proves they match the real library. It fetches everything into a cache folder (a second run
reuses it and fetches nothing), then runs `python -m flashast --preset flash-attn-2` in real-header
mode, one file per run, and prints each file's time:

- the `flash-attn==2.8.3.post2` source distribution (PyPI), which carries `csrc/flash_attn/src/*.h`
  and CUTLASS (`csrc/cutlass/include`). pip can only fetch a source distribution by running its
  setup, which imports torch, so the cache holds a virtual environment with `torch==2.13.0` (its
  CPU build), whose `torch/include` also provides the ATen/c10 headers `flash.h` includes;
- clang's resource headers (the CUDA wrappers), which the libclang wheel lacks: Debian's
  `libclang-common-16-dev` (`/usr/lib/llvm-16/lib/clang/16`), installed with apt-get when running
  as root and no compatible resource directory is present;
- the CUDA toolkit already on the machine (`/usr/local/cuda`, `$CUDA_HOME`, `$CUDA_PATH`, or `--cuda-path`).

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
# libclang 18 parses CUDA with the resource headers of clang 16 to 18; 19's need builtins 18 lacks.
COMPATIBLE_CLANG_MAJORS = (18, 17, 16)
CUDA_WRAPPER = "include/__clang_cuda_runtime_wrapper.h"
# clang's CUDA wrapper includes these; CUDA 13 no longer ships them and nothing here needs them.
CUDA_HEADERS_CLANG_EXPECTS = ("texture_fetch_functions.h", "curand_mtgp32_kernel.h")
# torch's wheel lacks this generated header; c10 skips it when told to, as its CMake-less builds do.
DEFINES = ("C10_CUDA_NO_CMAKE_CONFIGURE_FILE",)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_FETCH = 4

# The documented subset: each kind 2.8.3 has, both dtypes, causal and not, small and large head dims.
VERIFIED_FILES = (
    "flash_fwd_hdim128_fp16_sm80.cu",
    "flash_fwd_hdim64_bf16_causal_sm80.cu",
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
    shims: Path

    def flashast_arguments(self) -> list[str]:
        """The flashast options that verify against these trees (what `--print-args` prints)."""
        arguments: list[str] = []
        for directory in (self.flash_attn_src, self.cutlass_include, self.torch_include,
                          self.cuda / "include" / "cccl", self.shims):
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


def compatible_resource_dirs() -> list[Path]:
    found: list[Path] = []
    for major in COMPATIBLE_CLANG_MAJORS:
        for root in (Path(f"/usr/lib/llvm-{major}/lib/clang"), Path("/usr/lib/clang")):
            for directory in sorted(root.glob(f"{major}*")):
                if (directory / CUDA_WRAPPER).is_file():
                    found.append(directory)
    return found


def find_resource_dir(explicit: Path | None) -> Path:
    """clang resource headers libclang 18 can parse CUDA with; installs Debian's when root and none exist."""
    if explicit:
        if not (explicit / CUDA_WRAPPER).is_file():
            raise SetupFailure(f"--resource-dir {explicit}: has no {CUDA_WRAPPER}", EXIT_USAGE)
        return explicit
    found = compatible_resource_dirs()
    if found:
        return found[0]
    wanted = "clang resource headers of clang " + "/".join(map(str, COMPATIBLE_CLANG_MAJORS))
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SetupFailure(f"no {wanted} found; install Debian's {RESOURCE_DIR_PACKAGE} (as root: apt-get"
                           f" install {RESOURCE_DIR_PACKAGE}) or pass --resource-dir")
    say(f"installing {RESOURCE_DIR_PACKAGE} with apt-get (clang's CUDA resource headers)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_quietly(["apt-get", "update", "-q"], "apt-get update", env)
    run_quietly(["apt-get", "install", "-y", "-q", "--no-install-recommends", RESOURCE_DIR_PACKAGE],
                f"apt-get install {RESOURCE_DIR_PACKAGE}", env)
    found = compatible_resource_dirs()
    if not found:
        raise SetupFailure(f"{RESOURCE_DIR_PACKAGE} is installed but no {wanted} appeared")
    return found[0]


def cuda_shims(cache: Path, cuda: Path) -> Path:
    """Empty stand-ins for the headers clang's CUDA wrapper includes and this toolkit lacks."""
    shims = cache / "cuda-shims"
    shims.mkdir(parents=True, exist_ok=True)
    for name in CUDA_HEADERS_CLANG_EXPECTS:
        shim = shims / name
        if (cuda / "include" / name).is_file():
            shim.unlink(missing_ok=True)
        elif not shim.exists():
            shim.write_text(f"// empty: {cuda} has no {name}; clang's CUDA wrapper includes it\n")
    return shims


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
        shims=cuda_shims(cache, cuda),
    )


def flashast(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flashast", *arguments], capture_output=True, text=True, check=False)


def drift_lines(cache: Path, name: str) -> set[int]:
    """The lines of the generated file that name the template 2.8.3 lacks (rendered without verifying)."""
    preview = cache / "drift-preview"
    completed = flashast("-o", str(preview), "--preset", "flash-attn-2", "--only", name, "--no-verify", "-q")
    if completed.returncode != 0:
        raise SetupFailure(f"flashast could not render {name}:\n{completed.stderr}", EXIT_FAILED)
    text = (preview / name).read_text()
    return {number for number, line in enumerate(text.splitlines(), 1) if DRIFT_TEMPLATE in line}


def error_locations(stderr: str, name: str) -> list[tuple[int, str]]:
    """(line, message) of each `NAME:LINE:COL: error: …` flashast reported for the generated file."""
    pattern = re.compile(rf"^{re.escape(name)}:(\d+):\d+: error: (.*)$", re.MULTILINE)
    return [(int(match.group(1)), match.group(2)) for match in pattern.finditer(stderr)]


def verify_subset(cache: Path, trees: Trees) -> int:
    arguments = trees.flashast_arguments()
    output = cache / "out"
    failures: list[str] = []
    times: list[float] = []
    say(f"verifying {len(VERIFIED_FILES)} files against flash-attn {FLASH_ATTN_VERSION}, one flashast run each")
    for name in VERIFIED_FILES:
        started = time.perf_counter()
        completed = flashast("-o", str(output), "--preset", "flash-attn-2", "--only", name, "-q", *arguments)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        ok = completed.returncode == 0
        say(f"  {'ok  ' if ok else 'FAIL'} {name}  {elapsed:5.1f} s")
        if not ok:
            failures.append(name)
            print(completed.stderr, end="", file=sys.stderr)
    say(f"expected drift: {DRIFT_EXPLANATION}")
    for name in DRIFT_FILES:
        expected_lines = drift_lines(cache, name)
        started = time.perf_counter()
        completed = flashast("-o", str(output), "--preset", "flash-attn-2", "--only", name, "-q", *arguments)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        errors = error_locations(completed.stderr, name)
        unexpected = [(line, message) for line, message in errors
                      if line not in expected_lines or DRIFT_TEMPLATE not in message]
        caught = completed.returncode == 3 and errors and not unexpected
        where = ", ".join(f"line {line}" for line in sorted({line for line, _ in errors})) or "no error"
        say(f"  {'drift caught' if caught else 'FAIL'} {name}  {elapsed:5.1f} s  ({where})")
        if not caught:
            failures.append(name)
            say(f"    expected exit 3 and errors only at lines {sorted(expected_lines)} naming {DRIFT_TEMPLATE};"
                f" got exit {completed.returncode}")
            print(completed.stderr, end="", file=sys.stderr)
    later = times[1:]
    mean_later = sum(later) / len(later) if later else 0.0
    say(f"time: first file {times[0]:.1f} s, later files {mean_later:.1f} s on average, total {sum(times):.1f} s")
    if failures:
        say(f"FAILED: {', '.join(failures)}")
        return EXIT_FAILED
    say(f"all {len(VERIFIED_FILES)} files verified against the real headers; "
        f"{len(DRIFT_FILES)} drifted files reported as expected")
    return EXIT_OK


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
