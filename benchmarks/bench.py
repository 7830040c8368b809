"""Benchmark flashast against the string-template generators it replaces (stdlib only).

Every figure is a median over several runs of a fresh process, and every comparison is paired in the
same run (A, B, A, B, ...) and reported as the median of the per-pair ratios, with the lowest and
highest pair in brackets, because these machines are noisy. The string-template baselines are
written here, in the way the upstream scripts work (`str.format` over `itertools.product`, one
`write_text` per file), so both sides pay the same interpreter start-up and file-system costs.

flashast is driven only through its command line (`python -m flashast`) and its public package
(`from flashast import ...`); the real-headers row alone needs `flashast.verify`, and says so
instead of failing when that API has moved. Every flashast run gets its own `FLASHAST_CACHE_DIR`,
so what the user cache holds is part of what a row says:

- first run on a machine: a new output directory and a new, empty user cache. The model is built,
  every file generated, parsed and written. The goal rows, shown next to the figures measured
  before the current rewrite ("previous"), which they must not exceed. One untimed run of each side
  comes first, so the page cache is as warm as for the other rows (the user cache stays empty);
- new output directory, user cache warm: the same inputs ran once before into another directory,
  so the user cache already holds every file's verification key;
- start-up alone: the interpreter, flashast's imports and loading libclang, before any file is
  generated, against the pytorch baseline: the floor under every first-run figure;
- no-op rerun: the same directory again, nothing changed. Also counts the files (manifest included)
  whose inode, size, mtime or ctime changed, or that appeared or went away: it must be 0.

Real flash-attention 2 headers (they run when the cache of `scripts/verify_flash_attn_2.py` exists,
`$FLASHAST_FA2_CACHE` or `~/.cache/flashast-fa2`, with the options its `--print-args` prints, and say
they were skipped otherwise; nothing is fetched here). One run each, through the command line:

- cold: a selection of FA2 files (8 fwd/bwd files; 2 with `--quick`) with an empty user cache and
  the default `--jobs` (every core), wall time on this machine;
- the same files with `clang -fsyntax-only` and the same flags, as many processes at a time as
  flashast used cores (a build's `-j N`), as the anchor (goal: cold ≤ 0.5× that): `clang++-18` or
  `clang++-19` when one is on PATH, else libclang's own front end in one process per file (the same clang version
  flashast parses with; another clang++ may not parse the same headers);
- a warm rerun with nothing changed (goal ≤ 2 s, no file parsed), from `--timings`' lines;
- a rerun after appending a line to `flash_bwd_launch_template.h` in a copy of the FA2 source folder
  (the cold and warm runs use the copy too): only the bwd files, which read it, are parsed again;
- `--conformance` alone on a new user cache (goal ≤ 10 s; exit 3 is expected: the preset's contract
  declares `run_mha_fwd_splitkv_align`, which flash-attn 2.8.3 lacks).
- truth ÷ nvcc, where `nvcc` is on PATH: flashast's host and device (`--device-arch sm_80`) verdict
  on one FA2 forward and one backward file, cold, against `nvcc -c` of the same files with FA2's
  `setup.py` flags for sm_80, both as many at a time as there are cores (goal ≤ 0.1×), wall time and
  CPU seconds (the fairer figure on a shared machine); both verdicts are in the row and must agree (`--no-nvcc` leaves it out: each compile takes minutes and ~4 GB).

`--fa2-only` runs only these rows. Every row states the machine and its core count (the table's
first line); figures from a shared machine say so in the docs that quote them.

Run: `python benchmarks/bench.py` (about a minute on a 2-core machine, and about 2 minutes more with
the FA2 cache; `--quick` for a smoke run of about 15 s, plus about a minute with the FA2 cache). Prints a table (and with `--json FILE` writes the rows as data). Exits 0 even when a
goal is missed; 1 when a measurement itself failed (its row says why).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from anchors import fa2_nvcc_command, first_error, libclang_syntax_only, run_in_parallel

PYTHON = sys.executable
# Installed packages run from cached bytecode (pip compiles it at install; an editable checkout
# writes it on first import). Some shells set PYTHONDONTWRITEBYTECODE, which would make every run
# pay for compiling flashast while a baseline script compiles the same either way. The user-cache
# variables are dropped too: every flashast run below is given its own cache directory.
DROPPED_VARIABLES = ("PYTHONDONTWRITEBYTECODE", "FLASHAST_CACHE_DIR", "FLASHAST_NO_CACHE")
BASE_ENVIRONMENT = {name: value for name, value in os.environ.items() if name not in DROPPED_VARIABLES}
ROOT = Path(__file__).resolve().parent.parent
# flashast's default `--jobs`; every real-header anchor runs as many processes at a time.
CORES = os.cpu_count() or 1
FIXTURES = ROOT / "tests" / "fixtures"

# Figures measured before the current rewrite of flashast's internals (this machine: 2-core x86_64
# VM, Python 3.11, libclang 18.1.1): latest, then the range over that session's runs. The real-headers
# figure then came from per-file progress times; the same tree gives 0.17 by today's method too.
PREVIOUS_FIRST_RUN = {"pytorch": (2.53, 2.05, 2.63), "flash-attn-3": (5.99, 1.9, 6.3)}
PREVIOUS = {
    "synthetic 10000": "1.18 s (1.2–5.1 s)",
    "per-file": "0.67× (0.66–0.99×)",
    "real headers": "0.17 (0.14–0.17)",
}
FIRST_RUN_GOAL = 2.0

PYTORCH_BASELINE = textwrap.dedent(
    '''
    import argparse
    import itertools
    from dataclasses import dataclass
    from pathlib import Path

    ELEMENT_TYPES = {"fp16": "cutlass::half_t", "bf16": "cutlass::bfloat16_t"}
    HEAD_DIMS = [32, 64, 96, 128, 160, 192, 224, 256]
    SPECIALIZATION = """
    template<>
    void run_mha_{direction}_<{element}, {head_dim}>(Flash_{direction}_params &params, cudaStream_t stream) {{
        run_mha_{direction}_hdim{head_dim}<{element}>(params, stream);
    }}
    """
    SPLIT = """

    template void run_mha_fwd_splitkv_dispatch<{element}, {head_dim}>(Flash_fwd_params &params, cudaStream_t stream);
    """
    PRELUDE = """
    // Copyright (c) 2023, Tri Dao.

    // Splitting the different head dimensions to different files to speed up compilation.
    // This file is auto-generated. See "generate_kernels.py"

    """


    @dataclass
    class Instantiation:
        dtype: str
        head_dim: int
        direction: str

        @property
        def text(self) -> str:
            template = SPLIT if self.direction == "fwd_split" else SPECIALIZATION
            body = template.format(direction=self.direction, element=ELEMENT_TYPES[self.dtype], head_dim=self.head_dim)
            header = "bwd" if self.direction == "bwd" else "fwd"
            return (PRELUDE + f"#include <ATen/native/transformers/cuda/flash_attn/flash_{header}_launch_template.h>\\n"
                    + "namespace pytorch_flash{\\n" + body + "} // namespace pytorch_flash\\n")

        @property
        def name(self) -> str:
            return f"flash_{self.direction}_hdim{self.head_dim}_{self.dtype}_sm80.cu"


    parser = argparse.ArgumentParser()
    parser.add_argument("-o", "--output_dir", required=True)
    out = Path(parser.parse_args().output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for dtype, head_dim in itertools.product(ELEMENT_TYPES, HEAD_DIMS):
        for direction in ("fwd", "bwd", "fwd_split"):
            kernel = Instantiation(dtype, head_dim, direction)
            (out / kernel.name).write_text(kernel.text)
    '''
)

FLASH_ATTN_3_BASELINE = textwrap.dedent(
    '''
    import itertools, sys
    from pathlib import Path

    DTYPES = {"fp16": "cutlass::half_t", "bf16": "cutlass::bfloat16_t", "e4m3": "cutlass::float_e4m3_t"}
    HEAD_DIMS = [64, 96, 128, 192, 256]
    PRELUDE = ("// Copyright (c) 2024, Jay Shah, Ganesh Bikshandi, Ying Zhang, Vijay Thakkar, Pradeep Ramani, Tri Dao.\\n"
               "// Splitting the different template instantiations to different files to speed up compilation.\\n"
               "// This file is auto-generated. See \\"generate_kernels.py\\"\\n\\n")
    FWD = ("template void run_mha_fwd_<{arch}, {dtype}, {hd}, {hdv}, {split}, {paged}, {softcap}, {packgqa}>"
           "(Flash_fwd_params &params, cudaStream_t stream);\\n")
    BWD = ("template<>\\nvoid run_mha_bwd_<{arch}, {dtype}, {hd}, {softcap}>(Flash_bwd_params &params, cudaStream_t stream) {{\\n"
           "    run_mha_bwd_hdim{hd}<{arch}, {dtype}, {softcap}>(params, stream);\\n}}\\n")
    b = lambda value: "true" if value else "false"
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    def suffix(dtype, paged, split, softcap, packgqa, sm):
        return (f"_{dtype}" + ("_paged" if paged else "") + ("_split" if split else "")
                + ("_softcap" if softcap else "") + ("_packgqa" if packgqa else "") + f"_sm{sm}")
    members = {}
    for dtype, hd, split, paged, softcap, packgqa, sm in itertools.product(
            DTYPES, HEAD_DIMS, [False, True], [False, True], [False, True], [False, True], [80, 90]):
        if packgqa and (sm < 90 or paged or split) or (sm < 90 and dtype == "e4m3"):
            continue
        pairs = [hd] if sm == 90 or dtype != "e4m3" else []
        if sm == 90 and hd == 192:
            pairs.append(128)
        if sm == 90 and hd == 64 and dtype != "e4m3":
            pairs += [256, 512]
        for hdv in pairs:
            pack = b(packgqa or paged or split) if sm == 90 else "true"
            lines = [FWD.format(arch=arch, dtype=DTYPES[dtype], hd=hd, hdv=hdv, split=b(split), paged=b(paged),
                                softcap=b(softcap), packgqa=pack) for arch in ([90] if sm == 90 else [80, 86])]
            body = "#ifndef FLASHATTENTION_DISABLE_HDIM" + str(hd) + "\\n" + "".join(lines) + "#endif\\n"
            if sm != 90:
                body = "#ifndef FLASHATTENTION_DISABLE_SM8x\\n" + body + "#endif\\n"
            name = f"flash_fwd_hdim{hd}" + (f"_{hdv}" if hdv != hd else "") + suffix(dtype, paged, split, softcap, packgqa, sm) + ".cu"
            (out / name).write_text(PRELUDE + '#include "flash_fwd_launch_template.h"\\n\\n' + body)
            group = "hdimall" if hdv == hd else "hdimdiff"
            if sm == 90:
                members.setdefault(f"flash_fwd_{group}" + suffix(dtype, paged, split, softcap, packgqa, sm) + ".cu", []).append(name)
            else:
                members.setdefault(f"flash_fwd_hdim{hd}" + suffix(dtype, paged, split, False, False, sm).replace("_sm80", "_softcapall_sm80") + ".cu", []).append(name)
    for dtype, hd, softcap, sm in itertools.product(["fp16", "bf16"], HEAD_DIMS, [False, True], [80, 90]):
        lines = [BWD.format(arch=arch, dtype=DTYPES[dtype], hd=hd, softcap=b(softcap)) for arch in ([90] if sm == 90 else [80, 86])]
        body = "#ifndef FLASHATTENTION_DISABLE_HDIM" + str(hd) + "\\n" + "".join(lines) + "#endif\\n"
        if sm != 90:
            body = "#ifndef FLASHATTENTION_DISABLE_SM8x\\n" + body + "#endif\\n"
        name = f"flash_bwd_hdim{hd}" + suffix(dtype, False, False, softcap, False, sm) + ".cu"
        (out / name).write_text(PRELUDE + '#include "flash_bwd_launch_template.h"\\n\\n' + body)
        if sm == 90:
            members.setdefault(f"flash_bwd_hdim{hd}_{dtype}_softcapall_sm90.cu", []).append(name)
    for name, included in members.items():
        (out / name).write_text(PRELUDE + "\\n".join(f'#include "{member}"' for member in included))
    '''
)

SYNTHETIC_PLUGIN = textwrap.dedent(
    '''
    """A synthetic preset through the public kind API: one explicit instantiation per file."""
    from flashast import Contract, FunctionTemplate, Include, Kind, LineComment, Namespace, Parameter, Preset
    from flashast import PragmaOnce, TranslationUnit, Type, TypeParameter, ValueParameter, ClassDeclaration

    COUNT = {count}
    TEMPLATE = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "N")), "void", "kernel",
                                (Parameter(Type("int"), "value"),), defined=True)
    CONTRACT = Contract({{"synthetic.h": (PragmaOnce(), Namespace("synthetic", (ClassDeclaration("half"), TEMPLATE)))}})

    def build(config):
        return TranslationUnit((LineComment("generated"), Include("synthetic.h"),
                                Namespace("synthetic", (TEMPLATE.instantiate("half", config.index),))))

    def register(registry):
        kind = Kind("inst", axes={{"index": tuple(range(COUNT))}}, build=build, file_name="inst_{{index}}.cu",
                    contract=CONTRACT)
        registry.add_preset(Preset("synthetic", kinds=(kind,)))
    '''
)


@dataclass
class Row:
    name: str
    measured: str
    goal: str = "-"
    met: bool | None = None
    previous: str = "-"
    note: str = ""  # appended to the verdict
    data: dict[str, object] = field(default_factory=dict)  # the figures, for --json

    @property
    def verdict(self) -> str:
        if "error" in self.data:
            return "FAILED (no figure)"
        verdict = "n/a" if self.met is None else ("met" if self.met else "MISSED")
        return f"{verdict}; {self.note}" if self.note else verdict

    def cells(self) -> tuple[str, str, str, str, str]:
        return self.name, self.measured, self.previous, self.goal, self.verdict


@dataclass
class Run:
    seconds: float
    max_rss_kib: int


class RunFailed(Exception):
    """A process the benchmark started exited non-zero; the row says so and the others still run."""


def run_process(command: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a fresh process; wall time and its own peak RSS (from wait4, not the whole tree's max).

    The disk is flushed first, outside the timed part: otherwise flashast's flushes to disk would
    also wait for the baseline's unflushed files written just before it in the pair, and the ratio
    would measure the pairing order. Each side pays for its own writes only.
    """
    os.sync()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=BASE_ENVIRONMENT if env is None else env
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    process.returncode = returncode
    if returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        raise RunFailed(f"exit {returncode}: {lines[-1].strip() if lines else '(no output)'}")
    return Run(seconds, usage.ru_maxrss)


@dataclass
class Pairing:
    """Medians of each side and of the per-pair ratios first/second, with the ratios' range."""

    first: float
    second: float
    ratio: float
    lowest: float
    highest: float

    def cell(self) -> str:
        return (f"{self.ratio:.2f}× [{self.lowest:.2f}–{self.highest:.2f}]; "
                f"{self.first * 1000:.0f} ÷ {self.second * 1000:.0f} ms")

    def data(self) -> dict[str, object]:
        return {"ratio": self.ratio, "pair_ratio_min": self.lowest, "pair_ratio_max": self.highest,
                "flashast_median_s": self.first, "baseline_median_s": self.second}


def paired(first: Callable[[], float], second: Callable[[], float], pairs: int) -> Pairing:
    firsts, seconds, ratios = [], [], []
    for _ in range(pairs):
        a = first()
        b = second()
        firsts.append(a)
        seconds.append(b)
        ratios.append(a / b)
    return Pairing(statistics.median(firsts), statistics.median(seconds), statistics.median(ratios), min(ratios),
                   max(ratios))


def flashast_command(output: Path, *extra: str) -> list[str]:
    return [PYTHON, "-m", "flashast", "-o", str(output), "-q", *extra]


def with_cache(cache: Path) -> dict[str, str]:
    """The environment of a flashast run whose user cache is `cache` (created, possibly empty)."""
    cache.mkdir(parents=True, exist_ok=True)
    return {**BASE_ENVIRONMENT, "FLASHAST_CACHE_DIR": str(cache)}


Snapshot = dict[str, tuple[int, int, int, int]]


def snapshot(directory: Path) -> Snapshot:
    """Every file under `directory` (hidden ones, such as the manifest, too): inode, size, mtime, ctime."""
    files: Snapshot = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            status = os.lstat(path)
            files[os.path.relpath(path, directory)] = (status.st_ino, status.st_size, status.st_mtime_ns,
                                                       status.st_ctime_ns)
    return files


def files_touched(before: Snapshot, after: Snapshot) -> int:
    """Files written, replaced, changed in metadata, created or removed between two snapshots."""
    return sum(1 for name in before.keys() | after.keys() if before.get(name) != after.get(name))


def failed_row(name: str, error: Exception, goal: str = "-", previous: str = "-") -> Row:
    return Row(name, f"failed: {error}", goal, None, previous, data={"error": str(error)})


def first_run_row(preset: str, pairing: Pairing) -> Row:
    latest, low, high = PREVIOUS_FIRST_RUN[preset]
    if pairing.ratio > high:
        note = f"slower than previous (above {high}×)"
    elif pairing.ratio < low:
        note = f"faster than previous (below {low}×)"
    else:
        note = "within previous range"
    data = {**pairing.data(), "previous": latest, "previous_min": low, "previous_max": high}
    return Row(first_run_name(preset), pairing.cell(), f"≤ {FIRST_RUN_GOAL}×", pairing.ratio <= FIRST_RUN_GOAL,
               f"{latest}× ({low}–{high}×)", note, data)


def first_run_name(preset: str) -> str:
    return f"first run on a machine (empty user cache), {preset} ÷ baseline"


class Bench:
    """The work directory, its fresh paths, and the two baselines."""

    def __init__(self, work: Path, pairs: int) -> None:
        self.work = work
        self.pairs = pairs
        self.counter: Iterator[int] = iter(range(10**9))
        self.baselines = {"pytorch": work / "baseline_pytorch.py", "flash-attn-3": work / "baseline_fa3.py"}
        self.baselines["pytorch"].write_text(PYTORCH_BASELINE)
        self.baselines["flash-attn-3"].write_text(FLASH_ATTN_3_BASELINE)

    def fresh(self, prefix: str) -> Path:
        return self.work / f"{prefix}{next(self.counter)}"

    def baseline_command(self, preset: str, output: Path) -> list[str]:
        script = str(self.baselines[preset])
        return [PYTHON, script, "-o", str(output)] if preset == "pytorch" else [PYTHON, script, str(output)]

    def baseline(self, preset: str) -> Callable[[], float]:
        return lambda: run_process(self.baseline_command(preset, self.fresh("base"))).seconds

    def flashast_in(self, preset: str, output: Path, cache: Path) -> float:
        return run_process(flashast_command(output, "--preset", preset), with_cache(cache)).seconds

    def first_run(self, preset: str) -> float:
        """A new output directory and a new, empty user cache."""
        return self.flashast_in(preset, self.fresh("first"), self.fresh("cache"))


def preset_rows(bench: Bench, preset: str) -> list[Row]:
    """First run, new directory with a warm user cache, and a no-op rerun, each paired with the baseline."""
    rows: list[Row] = []
    baseline = bench.baseline(preset)
    try:
        # One untimed run of each side first: the operating system's page cache (the interpreter,
        # flashast, libclang) is warm for every pair, as it is for the later rows; the user cache is not.
        bench.first_run(preset)
        baseline()
        rows.append(first_run_row(preset, paired(lambda: bench.first_run(preset), baseline, bench.pairs)))
    except RunFailed as error:
        latest, low, high = PREVIOUS_FIRST_RUN[preset]
        rows.append(failed_row(first_run_name(preset), error, f"≤ {FIRST_RUN_GOAL}×", f"{latest}× ({low}–{high}×)"))

    warm = bench.fresh("cache")
    name = f"new output directory, user cache warm, {preset} ÷ baseline"
    try:
        bench.flashast_in(preset, bench.fresh("warmup"), warm)  # the same inputs, once, into another directory
        pairing = paired(lambda: bench.flashast_in(preset, bench.fresh("new"), warm), baseline, bench.pairs)
        rows.append(Row(name, pairing.cell(), data=pairing.data()))
    except RunFailed as error:
        rows.append(failed_row(name, error))

    steady = bench.fresh("steady")
    name = f"no-op rerun (same directory, nothing changed), {preset} ÷ baseline"
    touched_name = f"no-op rerun, {preset}: files touched (manifest included)"
    touched: list[int] = []
    try:
        bench.flashast_in(preset, steady, warm)
        count = len(snapshot(steady))

        def noop() -> float:
            before = snapshot(steady)
            seconds = bench.flashast_in(preset, steady, warm)
            touched.append(files_touched(before, snapshot(steady)))
            return seconds

        pairing = paired(noop, baseline, bench.pairs)
        rows.append(Row(name, pairing.cell(), data=pairing.data()))
        rows.append(Row(touched_name, f"{max(touched)} of {count} (worst of {len(touched)} reruns)", "0",
                        max(touched) == 0, data={"touched_max": max(touched), "touched": touched, "files": count}))
    except RunFailed as error:
        rows.append(failed_row(name, error))
        rows.append(failed_row(touched_name, error, "0"))
    return rows


# Everything a run does before it generates a file: start the interpreter, import the CLI (the model,
# the presets, the pipeline, plugin discovery) and load libclang. Nothing the run does later can make
# the first-run ratio smaller than this one.
STARTUP_ONLY = "import flashast.cli, flashast.verify; flashast.verify.load_cindex()"


def startup_row(bench: Bench) -> Row:
    """Start-up alone ÷ the pytorch baseline: the floor under every flashast row."""
    name = "start-up alone (interpreter, flashast imports, libclang loaded) ÷ pytorch baseline"
    try:
        pairing = paired(lambda: run_process([PYTHON, "-c", STARTUP_ONLY]).seconds, bench.baseline("pytorch"),
                         bench.pairs)
    except RunFailed as error:
        return failed_row(name, error)
    return Row(name, pairing.cell(), note="the floor under the first-run rows", data=pairing.data())


def clang_row(bench: Bench) -> Row:
    """flashast's first run (it parses every file) against the baseline plus `clang++ -fsyntax-only` per file."""
    name = "pytorch first run (empty user cache) ÷ (baseline + clang++ -fsyntax-only per file)"
    clang = next(filter(None, map(shutil.which, CLANG_NAMES)), None)
    if clang is None:
        return Row(name, "skipped: no clang++ on PATH", "≤ 0.1×", None, data={"skipped": "no clang++ on PATH"})
    try:
        reference = bench.fresh("reference")
        run_process(bench.baseline_command("pytorch", reference))
        sources = sorted(reference.glob("*.cu"))

        def baseline_plus_clang() -> float:
            started = time.perf_counter()
            run_process(bench.baseline_command("pytorch", bench.fresh("base")))
            for path in sources:
                subprocess.run([clang, "-fsyntax-only", "-x", "c++", "-std=c++17", str(path)],
                               capture_output=True, check=False)
            return time.perf_counter() - started

        pairing = paired(lambda: bench.first_run("pytorch"), baseline_plus_clang, max(3, bench.pairs // 3))
    except RunFailed as error:
        return failed_row(name, error, "≤ 0.1×")
    data = {**pairing.data(), "clang": clang}
    return Row(name, pairing.cell(), "≤ 0.1×", pairing.ratio <= 0.1, data=data)


def synthetic_rows(bench: Bench, quick: bool) -> list[Row]:
    """A plugin preset of COUNT one-instantiation files, each run with a new output directory and user cache."""
    sweep = (100, 1000) if quick else (1000, 10000)
    rows: list[Row] = []
    per_file: list[float] = []
    for count in sweep:
        plugin = bench.work / f"synthetic_{count}.py"
        plugin.write_text(SYNTHETIC_PLUGIN.format(count=count))
        goal = "≤ 10 s" if count == 10000 else "-"
        name = f"synthetic {count} files: wall, peak RSS"
        previous = PREVIOUS["synthetic 10000"] if count == 10000 else "-"
        runs = []
        try:
            for _ in range(1 if quick else 3):  # the median of three: one write burst is noise
                command = flashast_command(bench.fresh("synth"), "--plugin", str(plugin), "--preset", "synthetic")
                runs.append(run_process(command, with_cache(bench.fresh("cache"))))
        except RunFailed as error:
            rows.append(failed_row(name, error, goal, previous))
            continue
        run = sorted(runs, key=lambda each: each.seconds)[len(runs) // 2]
        per_file.append(run.seconds / count)
        met = run.seconds <= 10 if count == 10000 else None
        rows.append(Row(name, f"{run.seconds:.2f} s, {run.max_rss_kib / 1024:.0f} MiB", goal, met, previous,
                        data={"files": count, "seconds": run.seconds, "max_rss_mib": run.max_rss_kib / 1024,
                              "runs_s": [each.seconds for each in runs]}))
    name = f"synthetic per-file cost {sweep[1]} ÷ {sweep[0]}"
    # The goal is about 10,000 ÷ 1,000 files; --quick's smaller sweep is dominated by start-up.
    previous, goal = (PREVIOUS["per-file"], "≤ 1.2×") if sweep == (1000, 10000) else ("-", "-")
    if len(per_file) == 2:
        linearity = per_file[1] / per_file[0]
        rows.append(Row(name, f"{linearity:.2f}×", goal, linearity <= 1.2 if goal != "-" else None, previous,
                        data={"ratio": linearity, "per_file_s": per_file}))
    else:
        rows.append(failed_row(name, RunFailed("a synthetic run failed (see above)"), goal, previous))
    return rows


REAL_HEADERS_CHILD = textwrap.dedent(
    """
    import json
    import statistics
    import sys
    import time
    from flashast import Registry  # the public API: if this fails, the row fails
    try:
        from flashast.verify import VerifyOptions, verify
    except ImportError as error:
        if error.name != "flashast.verify":  # flashast itself is broken, not moved
            raise
        print(json.dumps({"unavailable": f"{type(error).__name__}: {error}"}))
        sys.exit(0)
    files = Registry().preset("pytorch").generate()
    groups = {}
    for generated in files:  # files with the same includes share one preamble
        includes = tuple(line for line in generated.text.splitlines() if line.lstrip().startswith("#include"))
        groups.setdefault(includes, []).append(generated)
    group = max(groups.values(), key=len)

    def timed(chosen):
        started = time.perf_counter()
        verify(chosen, VerifyOptions(include_dirs=(TREE,)))
        return time.perf_counter() - started

    try:
        timed(group[:1])  # loads libclang and warms the page cache
        alone = [timed(group[:1]) for _ in range(REPEATS)]
        whole = [timed(group) for _ in range(REPEATS)]
    except (TypeError, AttributeError) as error:  # a changed signature or field
        print(json.dumps({"unavailable": f"{type(error).__name__}: {error}"}))
        sys.exit(0)
    print(json.dumps({"files": len(group), "alone": alone, "whole": whole}))
    """
)


def real_header_rows(quick: bool) -> list[Row]:
    """Real-header mode on the fixture tree: what the first file of a group sharing one preamble costs
    (the preamble is built for it), and what each later file costs (a re-parse over that preamble).

    Measured through `verify(files, VerifyOptions(include_dirs=...))` alone, in a fresh process, on
    the largest group of pytorch files with the same includes: the first file is that group's first
    file verified alone, a later file is (the whole group - the first alone) ÷ (files - 1), medians
    of several runs after one untimed run that loads libclang. When that API has moved, the rows say
    so instead of failing the benchmark.
    """
    name = "real headers: later file ÷ first file (preamble reused)"
    previous = PREVIOUS["real headers"]
    tree = FIXTURES / "pytorch_headers"
    if not tree.is_dir():
        return [Row(name, "skipped: no fixture tree", "≤ 0.3", None, previous, data={"skipped": "no fixture tree"})]
    code = REAL_HEADERS_CHILD.replace("TREE", repr(str(tree))).replace("REPEATS", "3" if quick else "5")
    completed = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=False, env=BASE_ENVIRONMENT)
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        return [failed_row(name, RunFailed(lines[-1] if lines else f"exit {completed.returncode}"), "≤ 0.3", previous)]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if "unavailable" in result:
        message = f"unavailable (API changed: {result['unavailable']})"
        return [Row(name, message, "≤ 0.3", None, previous, data={"unavailable": result["unavailable"]})]
    count = result["files"]
    first = statistics.median(result["alone"])
    later = max(0.0, statistics.median(result["whole"]) - first) / (count - 1)
    ratio = later / first
    data = {"ratio": ratio, "first_s": first, "later_s": later, "group_files": count, "alone_s": result["alone"],
            "group_s": result["whole"]}
    return [
        Row(f"real headers (fixture tree, pytorch group of {count} files): first file", f"{first * 1000:.1f} ms",
            data={"first_s": first}),
        Row(name, f"{ratio:.2f} ({later * 1000:.2f} ms)", "≤ 0.3", ratio <= 0.3, previous, data=data),
    ]


# --- Real flash-attention 2 headers (issue 15, item 5) ------------------------------------------------
# These rows run only when the cache `scripts/verify_flash_attn_2.py` fills exists (it is not fetched
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
CLANG_NAMES = ("clang++", "clang++-19", "clang++-18", "clang++-17", "clang++-16")
# libclang's own major version first; clang++-19 (Debian's `apt-get install clang-19`) parses FA2 2.8.3
# host side with CUDA 13 as libclang 18 does (exit 0 on the fwd and bwd files); older ones reject CUDA 13's CCCL.
ANCHOR_CLANG_NAMES = ("clang++-18", "clang++-19")


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


def option_values(arguments: Sequence[str], option: str) -> list[str]:
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


FA2_NAMES = {
    "cold": "FA2 real headers cold (empty store, default --jobs)",
    "clang": f"clang -fsyntax-only, same files and flags, {CORES} at a time (as -j {CORES}); cold ÷ it",
    "warm": "FA2 warm rerun (nothing changed): wall, files parsed",
    "touched": f"FA2 rerun after a line appended to {FA2_TOUCHED_HEADER}",
    "conformance": "FA2 --conformance alone (fresh store)",
}
FA2_GOALS = {"cold": "-", "clang": "cold ≤ 0.5×", "warm": "≤ 2 s, 0 parsed",
             "touched": "only files reading it", "conformance": "≤ 10 s"}


def fa2_rows(bench: Bench, quick: bool, every_file: bool = False) -> list[Row]:
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


def fa2_tree_rows(bench: Bench, arguments: list[str], source: Path, selection: Sequence[str],
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


def clang_anchor_row(bench: Bench, arguments: Sequence[str], output: Path, names: Sequence[str], cold: float,
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


def nvcc_row(bench: Bench) -> Row:
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
            "flashast_timings": re.findall(r"^flashast: (?:verified|failed) .*$", truth.tail, re.MULTILINE)}
    return Row(name, f"{ratio:.2f}×; {timed.seconds:.0f} s ÷ {compiled.seconds:.0f} s; CPU {cpu_ratio:.2f}×"
                     f" ({truth.cpu_seconds:.0f} ÷ {compiled.cpu_seconds:.0f} CPU s)", NVCC_GOAL, ratio <= 0.1 and agree,
               note=note, data=data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pairs", type=int, help="paired runs per comparison (default 9, or 3 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="3 pairs, one run per synthetic size, a 100/1,000-file sweep and 2 FA2 files (a smoke run)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows, with their figures, to FILE as JSON")
    parser.add_argument("--fa2-all", action="store_true",
                        help="the FA2 rows over all 48 fwd/bwd files (about 11 minutes with the clang++ anchor)")
    parser.add_argument("--fa2-only", action="store_true",
                        help="only the rows against the real FA2 headers (and nvcc's), none of the generation rows")
    parser.add_argument("--no-nvcc", action="store_true",
                        help="leave out the nvcc row (it compiles 2 FA2 files: minutes, about 4 GB each)")
    arguments = parser.parse_args(argv)
    pairs = arguments.pairs or (3 if arguments.quick else 9)
    if pairs < 1:
        parser.error("--pairs: at least 1")
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="flashast-bench-"))
    rows: list[Row] = []
    try:
        bench = Bench(work, pairs)
        if not arguments.fa2_only:
            rows.append(startup_row(bench))
            rows += preset_rows(bench, "pytorch")
            rows += preset_rows(bench, "flash-attn-3")
            rows.append(clang_row(bench))
            rows += synthetic_rows(bench, arguments.quick)
            rows += real_header_rows(arguments.quick)
        rows += fa2_rows(bench, arguments.quick, arguments.fa2_all)
        if not arguments.no_nvcc:
            rows.append(nvcc_row(bench))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print_table(rows, elapsed, pairs)
    if arguments.json:
        write_json(Path(arguments.json), rows, elapsed, pairs, arguments.quick)
    return 1 if any("error" in row.data for row in rows) else 0


def describe_machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(rows: Sequence[Row], elapsed: float, pairs: int) -> None:
    header = ("row", "measured", "previous", "goal", "verdict")
    table = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    print(f"flashast benchmark — {describe_machine()}; {pairs} pairs per comparison; took {elapsed:.0f} s")
    for index, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print("ratios: median of the per-pair ratios [lowest–highest pair]; ms: median flashast ÷ median baseline run;")
    print("previous: measured before the current rewrite of flashast's internals, latest (range).")
    print("FA2 rows: one run each (not a median), wall time on this machine; noisy where the machine is shared.")


def write_json(path: Path, rows: Sequence[Row], elapsed: float, pairs: int, quick: bool) -> None:
    document = {
        "machine": describe_machine(),
        "pairs": pairs,
        "quick": quick,
        "seconds": elapsed,
        "rows": [{**asdict(row), "verdict": row.verdict} for row in rows],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
