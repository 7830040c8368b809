"""The rows against the real flash-attention 2 headers, and the "truth ÷ nvcc" row.

Owns finding the cached FA2 trees of `scripts/verify_flash_attn_2.py` (and their flashast options,
from its `--print-args`; nothing is fetched here), the selections the rows verify, and the rows
themselves, each one run through flashast's command line: cold, the parallel clang++ anchor, the warm
rerun, the rerun after one header is touched, `--conformance` alone, and flashast's host + device
verdict against `nvcc -c`. The anchors (which compiler, which flags, run as a build runs them) are
`anchors.py`'s; `bench.py`'s docstring says what each row means.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anchors import (
    ANCHOR_CLANG_NAMES,
    clang_anchor_command,
    fa2_nvcc_command,
    first_error,
    libclang_syntax_only,
    option_values,
    run_in_parallel,
)
from harness import (
    BASE_ENVIRONMENT,
    CORES,
    PYTHON,
    ROOT,
    Row,
    RunFailed,
    Workspace,
    failed_row,
    flashast_command,
    with_cache,
)

# Real flash-attention 2 headers (issue 15, item 5). These rows run only when the cache `scripts/verify_flash_attn_2.py` fills exists (it is not fetched
# here: without the cache, `--print-args` would download torch and the flash-attn sdist), and say they
# were skipped otherwise. Each is one run, not a median: a cold run of the full selection takes a
# minute on a 2-core machine.
FA2_SELECTION = ("--only", "kind=fwd,bwd", "--only", "head_dim=64,128", "--only", "dtype=fp16")
# `--fa2-all`: the 48 fwd/bwd files the figures are about.
FA2_ALL_SELECTION = ("--only", "kind=fwd,bwd")
FA2_QUICK_SELECTION = ("--only", "kind=fwd,bwd", "--only", "head_dim=64", "--only", "dtype=fp16", "--only",
                       "is_causal=false")
FA2_TOUCHED_HEADER = "flash_bwd_launch_template.h"  # the bwd files read it, the fwd files do not
FA2_COMPLETE = ".flashast-complete"  # what fetch_real_sources.py writes into a tree once it is whole
TIMING_LINE = re.compile(r"^flashast: (?:verified|failed) (\S+) in \d+(?:\.\d+)? s$", re.MULTILINE)
REUSED_LINE = re.compile(r"^flashast: (\d+) file\(s\) not parsed again", re.MULTILINE)


@dataclass
class Timed:
    """A flashast run with `--timings`: wall time, exit code, and the files it parsed (or reused)."""

    seconds: float
    returncode: int
    stderr: str

    @property
    def parsed(self) -> list[str]:
        return TIMING_LINE.findall(self.stderr)

    @property
    def reused(self) -> int | None:
        match = REUSED_LINE.search(self.stderr)
        return int(match.group(1)) if match else None


def run_timed(command: Sequence[str], env: dict[str, str], accept: tuple[int, ...] = (0,)) -> Timed:
    """Like `run_process`, keeping stderr (the `--timings` lines); an exit code not in `accept` fails."""
    os.sync()
    started = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    seconds = time.perf_counter() - started
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode not in accept:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        raise RunFailed(f"exit {completed.returncode}: {lines[-1].strip() if lines else '(no output)'}")
    return Timed(seconds, completed.returncode, stderr)


def fa2_cache() -> Path:
    """Where `scripts/verify_flash_attn_2.py` keeps the flash-attn 2 trees (its default)."""
    if os.environ.get("FLASHAST_FA2_CACHE"):
        return Path(os.environ["FLASHAST_FA2_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flashast-fa2"


def fa2_arguments() -> tuple[list[str], str]:
    """The flashast options for the cached FA2 trees (`--print-args`), or ([], why not)."""
    cache = fa2_cache()
    script = ROOT / "scripts" / "verify_flash_attn_2.py"
    if not script.is_file():
        return [], f"no {script.relative_to(ROOT)}"
    whole = (cache / "venv" / FA2_COMPLETE).exists() and any(cache.glob(f"src/flash_attn-*/{FA2_COMPLETE}"))
    if not whole:
        return [], f"no flash-attn-2 cache in {cache} (scripts/verify_flash_attn_2.py --fetch-only fills it)"
    try:
        completed = subprocess.run([PYTHON, str(script), "--print-args", "--cache", str(cache)], capture_output=True,
                                   text=True, check=False, env=BASE_ENVIRONMENT, timeout=300)
    except subprocess.TimeoutExpired:
        return [], "verify_flash_attn_2.py --print-args did not finish in 300 s"
    arguments = shlex.split(completed.stdout.strip().splitlines()[-1]) if completed.stdout.strip() else []
    if completed.returncode != 0 or "--include-dir" not in arguments:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        return [], f"verify_flash_attn_2.py --print-args: exit {completed.returncode}, {lines[-1] if lines else 'no options'}"
    return arguments, ""


FA2_NAMES = {
    "cold": "FA2 real headers cold (empty store, default --jobs)",
    "clang": f"clang -fsyntax-only, same files and flags, {CORES} at a time (as -j {CORES}); cold ÷ it",
    "warm": "FA2 warm rerun (nothing changed): wall, files parsed",
    "touched": f"FA2 rerun after a line appended to {FA2_TOUCHED_HEADER}",
    "conformance": "FA2 --conformance alone (fresh store)",
}
FA2_GOALS = {"cold": "-", "clang": "cold ≤ 0.5×", "warm": "≤ 2 s, 0 parsed",
             "touched": "only files reading it", "conformance": "≤ 10 s"}


def fa2_rows(bench: Workspace, quick: bool, every_file: bool = False) -> list[Row]:
    """Real-header verification against the cached flash-attn 2.8.3 trees, driven through the CLI.

    The FA2 source folder (the `--include-dir` holding FA2_TOUCHED_HEADER) is copied once into the
    work directory so that a header can be edited: the cold run, the warm rerun and the rerun after
    the edit all verify against the copy (cutlass, torch and CUDA are read where they are). Cold: a
    new output directory and an empty user cache, every core. The clang++ anchor parses the files the
    cold run wrote, one `clang++` process after the other, after that run (so its page cache is the
    warmer one). The conformance check parses the launch headers of the cache itself, on a new store.
    """
    arguments, skipped = fa2_arguments()
    if skipped:
        return [Row(name, f"skipped: {skipped}", FA2_GOALS[key], None, data={"skipped": skipped})
                for key, name in FA2_NAMES.items()]
    selection = FA2_ALL_SELECTION if every_file else FA2_QUICK_SELECTION if quick else FA2_SELECTION
    label = "--only " + " ".join(selection[1::2])  # one --only per axis: all of them must match
    rows: list[Row] = []
    directories = option_values(arguments, "--include-dir")
    source = next((Path(each) for each in directories if (Path(each) / FA2_TOUCHED_HEADER).is_file()), None)
    cold_name = f"{FA2_NAMES['cold']}, {label}"
    if source is None:
        error = RunFailed(f"no --include-dir holds {FA2_TOUCHED_HEADER}")
        rows += [failed_row(cold_name if key == "cold" else name, error, FA2_GOALS[key])
                 for key, name in FA2_NAMES.items() if key != "conformance"]
    else:
        rows += fa2_tree_rows(bench, arguments, source, selection, cold_name)
    cache = bench.fresh("cache")
    command = [PYTHON, "-m", "flashast", "--preset", "flash-attn-2", "--conformance", *arguments]
    try:
        # exit 3 expected: the preset's contract declares run_mha_fwd_splitkv_align, which 2.8.3 lacks
        run = run_timed(command, with_cache(cache), accept=(0, 3))
    except RunFailed as error:
        return [*rows, failed_row(FA2_NAMES["conformance"], error, FA2_GOALS["conformance"])]
    summary = re.search(r"conformance failed: (.*)", run.stderr)
    outcome = f"exit {run.returncode}" + (f": {summary.group(1).strip()}" if summary else "")
    note = "exit 3 expected (2.8.3 lacks run_mha_fwd_splitkv_align)"
    rows.append(Row(FA2_NAMES["conformance"], f"{run.seconds:.1f} s ({outcome})", FA2_GOALS["conformance"],
                    run.seconds <= 10, note=note if run.returncode == 3 else "",
                    data={"seconds": run.seconds, "exit": run.returncode}))
    return rows


def fa2_tree_rows(bench: Workspace, arguments: list[str], source: Path, selection: Sequence[str],
                  cold_name: str) -> list[Row]:
    """Cold, the clang++ anchor, warm, and one header edited: on a copy of the FA2 source folder."""
    copy = bench.work / "fa2-src"
    rest = [(key, name) for key, name in FA2_NAMES.items() if key not in ("cold", "conformance")]
    try:
        shutil.copytree(source, copy)
    except OSError as error:
        failure = RunFailed(f"copying {source}: {error}")
        return [failed_row(cold_name, failure), *(failed_row(name, failure, FA2_GOALS[key]) for key, name in rest)]
    copied = [str(copy) if each == str(source) else each for each in arguments]
    output, cache = bench.fresh("fa2-out"), bench.fresh("cache")
    command = [*flashast_command(output, "--preset", "flash-attn-2", *selection, "--timings"), *copied]
    try:
        cold = run_timed(command, with_cache(cache))
    except RunFailed as error:
        failure = RunFailed(f"the cold run failed ({error})")
        return [failed_row(cold_name, error), *(failed_row(name, failure, FA2_GOALS[key]) for key, name in rest)]
    names = sorted(cold.parsed)
    count = len(names)
    rows = [Row(cold_name, f"{cold.seconds:.1f} s ({count} files parsed, {CORES} cores)",
                data={"seconds": cold.seconds, "files": names, "jobs": CORES, "selection": list(selection)})]
    rows.append(clang_anchor_row(bench, copied, output, names, cold.seconds))

    warm_name, touched_name = FA2_NAMES["warm"], FA2_NAMES["touched"]
    try:
        warm = run_timed(command, with_cache(cache))
        parsed = len(warm.parsed)
        reused = "?" if warm.reused is None else warm.reused
        rows.append(Row(warm_name, f"{warm.seconds:.2f} s; {parsed} of {count} parsed ({reused} not parsed again)",
                        FA2_GOALS["warm"], warm.seconds <= 2 and parsed == 0,
                        data={"seconds": warm.seconds, "parsed": warm.parsed, "reused": warm.reused}))
    except RunFailed as error:
        rows.append(failed_row(warm_name, error, FA2_GOALS["warm"]))

    with (copy / FA2_TOUCHED_HEADER).open("a") as header:
        header.write("// edited by benchmarks/bench.py\n")
    expected = sorted(name for name in names if name.startswith("flash_bwd_"))
    try:
        touched = run_timed(command, with_cache(cache))
    except RunFailed as error:
        return [*rows, failed_row(touched_name, error, FA2_GOALS["touched"])]
    parsed_names = sorted(touched.parsed)
    if parsed_names == expected:
        what = f"exactly the bwd file{'s' if len(expected) != 1 else ''}"
    else:
        extra = sorted(set(parsed_names) - set(expected))
        missing = sorted(set(expected) - set(parsed_names))
        what = f"not the bwd files: {len(extra)} more ({', '.join(extra)}), {len(missing)} missing"
        what += f" ({', '.join(missing)})" if missing else ""
    rows.append(Row(touched_name, f"{touched.seconds:.1f} s; {len(parsed_names)} of {count} parsed: {what}",
                    FA2_GOALS["touched"], parsed_names == expected,
                    data={"seconds": touched.seconds, "parsed": parsed_names, "expected": expected}))
    return rows


def clang_anchor_row(bench: Workspace, arguments: Sequence[str], output: Path, names: Sequence[str], cold: float,
                     jobs: int = CORES) -> Row:
    """`clang++ -fsyntax-only` over the files the cold run wrote, `jobs` processes at a time (the
    cores flashast's cold run used), as a build's `-j N` runs them."""
    name, goal = FA2_NAMES["clang"], FA2_GOALS["clang"]
    # A clang++ of libclang's own major version (or 19) parses what flashast parses; an older one may not
    # (clang++ 16 rejects CUDA 13's CCCL), so without one the front end is libclang's, one process per file.
    clang = next(filter(None, map(shutil.which, ANCHOR_CLANG_NAMES)), None)
    driver, label = ([clang], Path(clang).name) if clang else (libclang_syntax_only(PYTHON), "libclang 18")
    command = clang_anchor_command(driver, arguments, bench.work / "cuda-stand-ins")
    run = run_in_parallel([[*command, str(output / file_name)] for file_name in names], jobs, BASE_ENVIRONMENT)
    if run.failed:
        failure = run.failed[0]
        return failed_row(name, RunFailed(f"{label} exit {failure.returncode} on {failure.command[-1]}:"
                                          f" {first_error(failure)}"), goal)
    ratio = cold / run.seconds
    return Row(name, f"{run.seconds:.1f} s ({label}, {len(names)} files, {jobs} at a time,"
                     f" {run.cpu_seconds:.0f} CPU s); cold ÷ that {ratio:.2f}×", goal, ratio <= 0.5,
               data={"seconds": run.seconds, "ratio": ratio, "clang": label, "jobs": jobs,
                     "cpu_seconds": run.cpu_seconds})


# The "truth ÷ nvcc" sample: one FA2 forward and one backward file (the cheapest head_dim).
NVCC_SAMPLE = ("flash_fwd_hdim64_fp16_sm80.cu", "flash_bwd_hdim64_fp16_sm80.cu")
NVCC_NAME = f"FA2 host + device verdict (sm_80, cold) ÷ nvcc -c, same 2 files, {CORES} at a time"
NVCC_GOAL = "≤ 0.1×"


def nvcc_row(bench: Workspace) -> Row:
    """flashast's full verdict (host side, then `--device-arch sm_80`) on a new store, against `nvcc
    -c` with FA2's setup.py flags on the same files, both `jobs` at a time: what finding a mistake
    costs with flashast, and what it costs a build. Each side's verdict is in the row: they must agree."""
    jobs, name = CORES, NVCC_NAME
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return Row(name, "skipped: no nvcc on PATH", NVCC_GOAL, None, data={"skipped": "no nvcc on PATH"})
    arguments, skipped = fa2_arguments()
    if skipped:
        return Row(name, f"skipped: {skipped}", NVCC_GOAL, None, data={"skipped": skipped})
    only = [argument for file_name in NVCC_SAMPLE for argument in ("--only", file_name)]
    output = bench.fresh("nvcc-sample")
    command = [*flashast_command(output, "--preset", "flash-attn-2", *only, "--device-arch", "sm_80", "--timings"),
               *arguments]
    # One flashast process (it runs `jobs` threads itself), through the same runner, for its CPU seconds.
    timed = run_in_parallel([command], 1, with_cache(bench.fresh("cache")))
    truth = timed.outcomes[0]
    if truth.returncode not in (0, 3) or not all((output / file_name).is_file() for file_name in NVCC_SAMPLE):
        return failed_row(name, RunFailed(f"flashast exit {truth.returncode}: {first_error(truth)}"), NVCC_GOAL)
    objects = bench.fresh("nvcc-objects")
    objects.mkdir()
    compiles = [fa2_nvcc_command(nvcc, option_values(arguments, "--include-dir"), option_values(arguments, "--define"),
                                 output / file_name, objects / f"{file_name}.o") for file_name in NVCC_SAMPLE]
    compiled = run_in_parallel(compiles, jobs, BASE_ENVIRONMENT)
    verdicts = {file_name: "accepts" if outcome.returncode == 0 else f"rejects ({first_error(outcome)})"
                for file_name, outcome in zip(NVCC_SAMPLE, compiled.outcomes, strict=True)}
    agree = truth.returncode == 0 and not compiled.failed
    ratio = timed.seconds / compiled.seconds
    cpu_ratio = truth.cpu_seconds / compiled.cpu_seconds
    note = "both accept both files" if agree else f"flashast exit {truth.returncode}; nvcc {verdicts}"
    data = {"flashast_seconds": timed.seconds, "nvcc_seconds": compiled.seconds, "ratio": ratio, "jobs": jobs,
            "flashast_cpu_seconds": truth.cpu_seconds, "nvcc_cpu_seconds": compiled.cpu_seconds,
            "cpu_ratio": cpu_ratio, "flashast_peak_rss_mib": truth.peak_rss_kib / 1024,
            "nvcc_peak_rss_mib": max(outcome.peak_rss_kib for outcome in compiled.outcomes) / 1024,
            "nvcc_verdicts": verdicts, "flashast_exit": truth.returncode, "files": list(NVCC_SAMPLE),
            "nvcc_cpu_seconds_per_file": {file_name: outcome.cpu_seconds
                                          for file_name, outcome in zip(NVCC_SAMPLE, compiled.outcomes, strict=True)},
            "flashast_timings": re.findall(r"^flashast: (?:verified|failed) .*$", truth.tail, re.MULTILINE)}
    return Row(name, f"{ratio:.2f}×; {timed.seconds:.0f} s ÷ {compiled.seconds:.0f} s; CPU {cpu_ratio:.2f}×"
                     f" ({truth.cpu_seconds:.0f} ÷ {compiled.cpu_seconds:.0f} CPU s)", NVCC_GOAL, ratio <= 0.1 and agree,
               note=note, data=data)
