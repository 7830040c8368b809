#!/usr/bin/env python3
"""Verify a flash-attention preset against the real flash-attention sources.

Contract verification proves that flashast's files match the interface the preset declares; this
script proves they match the real library. It finds or fetches the real trees into a cache folder
(`fetch_real_sources.py` says what, from where, and why), then runs `python -m flashast --preset
PRESET --timings` in real-header mode (it prints the exact command) and shows each file's time as it
is verified. Files sharing their includes share one precompiled preamble, so the first file of each
group pays for parsing the headers and later ones mostly for their own template instantiations.

- `--preset flash-attn-2@v2.8.3` (the default): the release preset, byte-identical to the tree the
  flash-attn 2.8.3.post2 source distribution builds, against that distribution, fetched from the
  registries by itself (or a checkout's `csrc/` with `--source DIR`). The subset (files of each of its
  three kinds, both dtypes, causal and not) must verify, with no drift expected; `--all` verifies
  every one of its 72 files.
- `--preset flash-attn-2`: the preset of upstream main (0251105a) against the same 2.8.3 sources. The
  subset must verify, and two more files must *fail*, in a known way, because main is past the
  release: `fwd_split_align` (and the `extern template` line the `fwd_split` files carry there) came
  with "Parallelize splitkv alignment templated kernels", after 2.8.3, so 2.8.3 has no
  `run_mha_fwd_splitkv_align`. flashast reporting exactly that is interface drift caught, and the
  script checks that nothing else in those files fails (with `--source`, a checkout of main verifies
  them instead).
- `--preset flash-attn-3`: against the `hopper/` headers of a flash-attention checkout, which no
  package on the registries carries: `--source DIR` or `$FLASHAST_FA3_SOURCE` is required (exit 2
  without). The subset covers sm90 and sm80, fp16/bf16/e4m3, split, paged, softcap, packgqa, a
  head_dim_v that differs, both directions and one aggregator with its members; it must verify.
  Where the checkout has `hopper/instantiations/`, the script also says how many of the preset's
  files are byte-identical to upstream's generated ones (information, not a verdict).

Exit codes: 0 everything as expected; 2 usage (flashast not importable, bad option, no FA3 source);
3 a file did not verify, or an expected drift was not reported as expected; 4 fetching or installing
failed (registries unreachable, apt-get not possible, no CUDA toolkit).

`--print-args` prints the flashast verification options for the trees (shell words, one line), so a
maintainer can verify any other selection: `python -m flashast --preset PRESET … ARGS`.
`scripts/verify_flash_attn_2.py` is this script under its earlier name.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, also when loaded by path (tests)
from fetch_real_sources import (
    EXIT_FETCH,
    EXIT_USAGE,
    FLASH_ATTN_VERSION,
    SetupFailure,
    cutlass_for_hopper,
    fa3_source,
    find_cuda,
    find_resource_dir,
    flash_attn_sources,
    torch_environment,
)

__all__ = ["EXIT_FAILED", "EXIT_FETCH", "EXIT_OK", "EXIT_USAGE", "FLASH_ATTN_2", "FLASH_ATTN_2_MAIN", "FLASH_ATTN_3",
           "FLASH_ATTN_VERSION", "TARGETS", "Drift", "Target", "main"]

EXIT_OK = 0
EXIT_FAILED = 3


@dataclass(frozen=True)
class Drift:
    """A template the preset's files use and the real release lacks: the files whose only errors
    must name it, and why the release lacks it."""

    template: str
    explanation: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """A preset, the release its real sources are, the subset that must verify, the known drift,
    and the defines its upstream build passes the compiler."""

    preset: str
    verified: tuple[str, ...]
    drifts: tuple[Drift, ...] = ()
    defines: tuple[str, ...] = ()

    def speaker(self) -> Callable[[str], None]:
        """Prints the script's lines, each prefixed with the preset's name (`verify-flash-attn-3: ...`;
        the revisions of one preset alike)."""
        return lambda message: print(f"verify-{self.preset.partition('@')[0]}: {message}", flush=True)


# Each kind of the release, both dtypes, causal and not, the smallest and largest head dimensions (a
# backward file costs several times a forward one).
FLASH_ATTN_2_SUBSET = (
    "flash_fwd_hdim128_fp16_sm80.cu", "flash_fwd_hdim32_fp16_causal_sm80.cu", "flash_fwd_hdim64_bf16_causal_sm80.cu",
    "flash_fwd_hdim256_bf16_sm80.cu", "flash_bwd_hdim128_bf16_sm80.cu", "flash_bwd_hdim256_fp16_causal_sm80.cu",
)
FLASH_ATTN_2 = Target(
    "flash-attn-2@v2.8.3",
    verified=(*FLASH_ATTN_2_SUBSET, "flash_fwd_split_hdim128_bf16_causal_sm80.cu",
              "flash_fwd_split_hdim64_fp16_sm80.cu"),
    # torch's wheel lacks this generated header; c10 skips it when told to, as its CMake-less builds do.
    defines=("C10_CUDA_NO_CMAKE_CONFIGURE_FILE",),
)
FLASH_ATTN_2_MAIN = Target(
    "flash-attn-2",
    verified=FLASH_ATTN_2_SUBSET,
    drifts=(Drift(
        "run_mha_fwd_splitkv_align",
        "run_mha_fwd_splitkv_align came with upstream's 'Parallelize splitkv alignment templated kernels', after"
        f" flash-attn {FLASH_ATTN_VERSION}: the fwd_split_align kind does not exist in that release, and the"
        " preset's fwd_split files declare `extern template ... run_mha_fwd_splitkv_align`, which 2.8.3's do not",
        ("flash_fwd_split_hdim128_bf16_causal_sm80.cu", "flash_fwd_split_align_hdim64_fp16_sm80.cu"),
    ),),
    # torch's wheel lacks this generated header; c10 skips it when told to, as its CMake-less builds do.
    defines=("C10_CUDA_NO_CMAKE_CONFIGURE_FILE",),
)
FLASH_ATTN_3 = Target(
    "flash-attn-3",
    # sm90: bf16, fp16 packgqa, e4m3 paged split, a differing head_dim_v with softcap, a backward;
    # sm80: an aggregator with both its members (split, split softcap), fp16 paged, a softcap backward.
    verified=("flash_fwd_hdim128_bf16_sm90.cu", "flash_fwd_hdim128_fp16_packgqa_sm90.cu",
              "flash_fwd_hdim128_e4m3_paged_split_sm90.cu", "flash_fwd_hdim64_256_bf16_softcap_sm90.cu",
              "flash_bwd_hdim128_bf16_sm90.cu", "flash_fwd_hdim128_bf16_split_sm80.cu",
              "flash_fwd_hdim128_bf16_split_softcap_sm80.cu", "flash_fwd_hdim128_bf16_split_softcapall_sm80.cu",
              "flash_fwd_hdim256_fp16_paged_sm80.cu", "flash_bwd_hdim64_fp16_softcap_sm80.cu"),
    # What hopper/setup.py passes nvcc besides the FLASHATTENTION_DISABLE_* switches.
    defines=("CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED", "CUTLASS_ENABLE_GDC_FOR_SM90", "CUTLASS_DEBUG_TRACE_LEVEL=0",
             "NDEBUG"),
)
TARGETS = {target.preset: target for target in (FLASH_ATTN_2, FLASH_ATTN_2_MAIN, FLASH_ATTN_3)}


@dataclass(frozen=True)
class Trees:
    """Where the real headers and toolchain pieces are, once found or fetched."""

    include_dirs: tuple[Path, ...]
    defines: tuple[str, ...]
    cuda: Path
    resource_dir: Path
    describe: str
    checkout: Path | None = None

    def flashast_arguments(self) -> list[str]:
        """The flashast options that verify against these trees (what `--print-args` prints)."""
        arguments: list[str] = []
        for directory in (*self.include_dirs, self.cuda / "include" / "cccl"):
            arguments += ["--include-dir", str(directory)]
        for define in self.defines:
            arguments += ["--define", define]
        return [*arguments, "--cuda-path", str(self.cuda), "--resource-dir", str(self.resource_dir)]


def default_cache(preset: str) -> Path:
    variable = "FLASHAST_FA3_CACHE" if preset == "flash-attn-3" else "FLASHAST_FA2_CACHE"
    if os.environ.get(variable):
        return Path(os.environ[variable])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / ("flashast-fa3" if preset == "flash-attn-3" else "flashast-fa2")


def prepare(target: Target, cache: Path, arguments: argparse.Namespace) -> Trees:
    """Find or fetch every tree `target` is verified against (an FA3 source is asked for first)."""
    say = target.speaker()
    hopper_source = fa3_source(arguments.source) if target is FLASH_ATTN_3 else None
    cache.mkdir(parents=True, exist_ok=True)
    cuda = find_cuda(arguments.cuda_path)
    resource = find_resource_dir(arguments.resource_dir, say)
    if hopper_source is not None:
        directories = (hopper_source / "hopper", cutlass_for_hopper(hopper_source, cache, say))
        return Trees(directories, target.defines, cuda, resource, f"the checkout in {hopper_source}",
                     hopper_source / "hopper")
    source: Path | None = arguments.source
    torch_include = torch_environment(cache, say)
    release = flash_attn_sources(cache, say) / "csrc"
    csrc = source / "csrc" if source is not None else release
    cutlass = csrc / "cutlass" / "include"
    cutlass = cutlass if (cutlass / "cutlass" / "cutlass.h").is_file() else release / "cutlass" / "include"
    describe = f"the checkout in {source}" if source is not None else f"flash-attn {FLASH_ATTN_VERSION}"
    return Trees((csrc / "flash_attn" / "src", cutlass, torch_include), target.defines, cuda, resource, describe)


@dataclass
class Run:
    """One `python -m flashast --timings` run: its exit code, output, and each file's seconds."""

    returncode: int
    output: str
    seconds: dict[str, float]
    wall: float


TIMING_LINE = re.compile(r"^flashast: (?:verified|failed) (\S+) in (\d+(?:\.\d+)?) s$")


def run_flashast(arguments: Sequence[str], say: Callable[[str], None] | None) -> Run:
    """Run flashast, printing each file's time as it comes through `say` (a real-header run is slow)."""
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
        if say is not None:
            ok = line.startswith("flashast: verified")
            say(f"  {'ok  ' if ok else 'FAIL'} {timing.group(1)}  {float(timing.group(2)):5.1f} s")
    returncode = process.wait()
    return Run(returncode, "".join(other), seconds, time.perf_counter() - started)


def rendered(cache: Path, preset: str, names: Sequence[str] = ()) -> Path:
    """The preset's files (or `names`) written without verifying, into a preview folder."""
    preview = cache / "preview"
    command = ["-o", str(preview), "--preset", preset, *selection(names), "--no-verify", "-q", "--prune"]
    completed = subprocess.run([sys.executable, "-m", "flashast", *command], capture_output=True, text=True,
                               check=False)
    if completed.returncode != 0:
        raise SetupFailure(f"flashast could not render {preset}:\n{completed.stderr}", EXIT_FAILED)
    return preview


def every_file_of(cache: Path, target: Target) -> Target:
    """`target` verifying every file of its preset (`--all`), but those its drifts check."""
    preview = rendered(cache, target.preset)
    drifted = {name for drift in target.drifts for name in drift.files}
    names = sorted(path.name for path in preview.glob("*.cu") if path.name not in drifted
                   and not any(drift.template in path.read_text() for drift in target.drifts))
    return replace(target, verified=tuple(names))


def error_locations(output: str, name: str) -> list[tuple[int, str]]:
    """(line, message) of each `NAME:LINE:COL: error: …` flashast reported for the generated file."""
    pattern = re.compile(rf"^{re.escape(name)}:(\d+):\d+: error: (.*)$", re.MULTILINE)
    return [(int(match.group(1)), match.group(2)) for match in pattern.finditer(output)]


def selection(names: Sequence[str]) -> list[str]:
    arguments = []
    for name in names:
        arguments += ["--only", name]  # file-name filters are alternatives
    return arguments


def verify_subset(cache: Path, trees: Trees, target: Target, pinned: bool) -> int:
    """The subset must verify; each drifted file must fail exactly where the release lacks its
    template (with a user's `--source` that is not `pinned`, it may verify instead)."""
    say = target.speaker()
    common = ["--preset", target.preset, "--timings", "-q", *trees.flashast_arguments()]
    verified_arguments = ["-o", str(cache / "out"), *selection(target.verified), *common]
    say(f"verifying {len(target.verified)} files against {trees.describe}:")
    say(f"  {shlex.join(['python', '-m', 'flashast', *verified_arguments])}")
    verified = run_flashast(verified_arguments, say)
    # A file whose inputs an earlier run verified is not parsed again (exit 0 says it passed).
    failures = list(target.verified) if verified.returncode != 0 else []
    for name in target.verified:
        if verified.returncode == 0 and name not in verified.seconds:
            say(f"  ok   {name}  (verdict reused: nothing it read has changed)")
    if verified.returncode != 0:
        print(verified.output, end="", file=sys.stderr)
    else:
        counted = re.search(r"(\d+) warning\(s\) inside headers", verified.output)
        warnings = int(counted.group(1)) if counted else len(re.findall(r": warning: ", verified.output))
        if warnings:
            say(f"  ({warnings} warning(s) inside the real headers, none in the generated files; they fail only"
                " under flashast --strict)")
    runs = [verified]
    for drift in target.drifts:
        say(f"expected drift: {drift.explanation}")
        runs.append(check_drift(cache, common, target, drift, pinned, failures))
    parsed = [seconds for run in runs for seconds in run.seconds.values()]
    say(f"time: {len(parsed)} file(s) parsed, {sum(parsed):.1f} s of parsing (files that share their includes are"
        f" parsed together, each shown with its share), total {sum(run.wall for run in runs):.1f} s")
    if trees.checkout is not None:
        compare_with_checkout(cache, target, trees.checkout / "instantiations")
    if failures:
        say(f"FAILED: {', '.join(failures)}")
        return EXIT_FAILED
    drifted = sum(len(drift.files) for drift in target.drifts)
    say(f"all {len(target.verified)} files verified against the real headers"
        + (f"; {drifted} drifted files reported as expected" if drifted else ""))
    return EXIT_OK


def check_drift(cache: Path, common: list[str], target: Target, drift: Drift, pinned: bool,
                failures: list[str]) -> Run:
    """Run the drifted files; each must fail only at its own lines naming the template (or, not
    `pinned`, verify). Failures are appended to `failures`."""
    say = target.speaker()
    preview = rendered(cache, target.preset, drift.files)
    expected = {name: {number for number, line in enumerate((preview / name).read_text().splitlines(), 1)
                       if drift.template in line} for name in drift.files}
    run = run_flashast(["-o", str(cache / "out"), *selection(drift.files), *common], None)
    for name in drift.files:
        errors = error_locations(run.output, name)
        unexpected = [(line, message) for line, message in errors
                      if line not in expected[name] or drift.template not in message]
        caught = run.returncode == 3 and bool(errors) and not unexpected
        elapsed = run.seconds.get(name, 0.0)
        if not pinned and run.returncode == 0:
            say(f"  ok   {name}  {elapsed:5.1f} s  (this source has {drift.template})")
            continue
        where = ", ".join(f"line {line}" for line in sorted({line for line, _ in errors})) or "no error"
        say(f"  {'drift caught' if caught else 'FAIL'} {name}  {elapsed:5.1f} s  ({where}: {drift.template})")
        if not caught:
            failures.append(name)
            say(f"    expected exit 3 and errors only at lines {sorted(expected[name])} naming {drift.template};"
                f" got exit {run.returncode}")
    if any(name in failures for name in drift.files):
        print(run.output, end="", file=sys.stderr)
    return run


def compare_with_checkout(cache: Path, target: Target, upstream: Path) -> None:
    """How many of the preset's files upstream's generator wrote byte for byte in the checkout."""
    if not upstream.is_dir():
        return
    ours = {path.name: path.read_bytes() for path in rendered(cache, target.preset).glob("*.cu")}
    theirs = {path.name: path.read_bytes() for path in upstream.glob("*.cu")}
    same = sum(1 for name, text in ours.items() if theirs.get(name) == text)
    only_upstream = sorted(set(theirs) - set(ours))
    target.speaker()(f"{same} of the preset's {len(ours)} files are byte-identical to {upstream}"
                     + (f"; upstream also has {', '.join(only_upstream)}" if only_upstream else ""))


def build_parser(prog: str = "verify_real_sources.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Verify a flash-attention preset against the real flash-attention headers.")
    parser.add_argument("--preset", choices=list(TARGETS), default=FLASH_ATTN_2.preset,
                        help=f"the preset to verify (default: {FLASH_ATTN_2.preset}, the release the fetched"
                             " sources are; flash-attn-2 is upstream main, which is past it)")
    parser.add_argument("--source", type=Path, default=None,
                        help="a flash-attention checkout (the folder holding csrc/ and hopper/); required for"
                             " flash-attn-3 unless $FLASHAST_FA3_SOURCE names one, whose hopper/ sources no"
                             " registry package carries; flash-attn-2 fetches its pinned sdist without it")
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache folder (default: $FLASHAST_FA2_CACHE or ~/.cache/flashast-fa2; for"
                             " flash-attn-3 $FLASHAST_FA3_CACHE or ~/.cache/flashast-fa3)")
    parser.add_argument("--cuda-path", type=Path, default=None, help="CUDA toolkit (default: found automatically)")
    parser.add_argument("--resource-dir", type=Path, default=None,
                        help="clang resource directory (default: found, or Debian's installed when root)")
    parser.add_argument("--all", action="store_true",
                        help="verify every file of the preset, not only the subset (slow: tens of seconds a file)")
    parser.add_argument("--fetch-only", action="store_true", help="fill the cache and stop")
    parser.add_argument("--print-args", action="store_true",
                        help="print the flashast verification options for the trees and stop")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "verify_real_sources.py") -> int:
    arguments = build_parser(prog).parse_args(argv)
    target = TARGETS[arguments.preset]
    say = target.speaker()
    cache = (arguments.cache or default_cache(target.preset)).absolute()
    check = subprocess.run([sys.executable, "-c", "import flashast, clang.cindex"], capture_output=True, check=False)
    if check.returncode != 0:
        say(f"{sys.executable} cannot import flashast; run this script with the project's Python"
            " (`python -m pip install -e .` first)")
        return EXIT_USAGE
    started = time.perf_counter()
    try:
        trees = prepare(target, cache, arguments)
        if arguments.print_args:
            print(shlex.join(trees.flashast_arguments()))
            return EXIT_OK
        say(f"cache {cache} ready in {time.perf_counter() - started:.1f} s (CUDA {trees.cuda},"
            f" resource dir {trees.resource_dir})")
        if arguments.fetch_only:
            return EXIT_OK
        if arguments.all:
            target = every_file_of(cache, target)
        return verify_subset(cache, trees, target, pinned=arguments.source is None)
    except SetupFailure as failure:
        say(f"error: {failure}")
        return failure.exit_code


if __name__ == "__main__":
    sys.exit(main())
