"""The generation rows: flashast's command line against the string-template baselines, and its own scale.

Owns the rows that generate files (first run on a machine, new output directory with a warm user
cache, start-up alone, the no-op rerun and the files it touches, the pytorch run against baseline +
`clang++ -fsyntax-only`, the synthetic 100 to 10,000-file sweep), the fixture-tree row of
real-header mode (what the first file of a group sharing one preamble costs, and each later file) and
the contract-batching row (flash-attn-3 batched against one parse per file), with the figures measured before the current rewrite ("previous") they are shown next to. `Bench`
adds the two baseline scripts to the work directory; `bench.py`'s docstring says what each row means.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from baselines import FLASH_ATTN_3_BASELINE, PYTORCH_BASELINE
from harness import (
    BASE_ENVIRONMENT,
    PYTHON,
    ROOT,
    Pairing,
    Row,
    RunFailed,
    Workspace,
    failed_row,
    flashast_command,
    paired,
    run_process,
    with_cache,
)

FIXTURES = ROOT / "tests" / "fixtures"
# The clang++ of the baseline + `clang++ -fsyntax-only` row: any version parses the generated pytorch files
# alone (no real headers), so the first one on PATH serves.
CLANG_NAMES = ("clang++", "clang++-19", "clang++-18", "clang++-17", "clang++-16")

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


class Bench(Workspace):
    """The work directory, its fresh paths, and the two baselines."""

    def __init__(self, work: Path, pairs: int) -> None:
        super().__init__(work)
        self.pairs = pairs
        self.baselines = {"pytorch": work / "baseline_pytorch.py", "flash-attn-3": work / "baseline_fa3.py"}
        self.baselines["pytorch"].write_text(PYTORCH_BASELINE)
        self.baselines["flash-attn-3"].write_text(FLASH_ATTN_3_BASELINE)

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
    (its headers are parsed for it), and what each later file costs (its share of one batch parse, or
    a re-parse over that preamble when the group cannot be batched).

    Measured through `verify(files, VerifyOptions(include_dirs=...))` alone, in a fresh process, on
    the largest group of pytorch files with the same includes: the first file is that group's first
    file verified alone, a later file is (the whole group - the first alone) ÷ (files - 1), medians
    of several runs after one untimed run that loads libclang. When that API has moved, the rows say
    so instead of failing the benchmark.
    """
    name = "real headers: later file ÷ first file (a batch or a preamble shared)"
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


CONTRACT_BATCHING_CHILD = textwrap.dedent(
    """
    import json
    import statistics
    import sys
    import time
    from flashast import Registry
    try:
        from flashast.verify import verify
    except ImportError as error:
        if error.name != "flashast.verify":
            raise
        print(json.dumps({"unavailable": f"{type(error).__name__}: {error}"}))
        sys.exit(0)
    files = Registry().preset("flash-attn-3").generate()
    by_name = {generated.name: generated for generated in files}

    def batched():
        started = time.perf_counter()
        verify(files)
        return time.perf_counter() - started

    def alone():
        started = time.perf_counter()
        for generated in files:  # an aggregator with its members, as a run of it alone would be
            verify([generated, *(by_name[name] for name in generated.included_files())])
        return time.perf_counter() - started

    verify(files[:1])  # loads libclang
    print(json.dumps({"files": len(files), "batched": [batched() for _ in range(REPEATS)],
                      "alone": [alone() for _ in range(REPEATS)]}))
    """
)


def contract_batching_row(quick: bool) -> Row:
    """What contract-mode batching saves, so that it pays for its lines (DESIGN.md's performance
    stance): flash-attn-3's 450 files verified cold against their contracts in one `verify` (batched)
    and with one `verify` per file (an aggregator with its members), in a fresh process, medians."""
    name = "FA3 contract verification cold, in process: all 450 batched ÷ each file alone"
    code = CONTRACT_BATCHING_CHILD.replace("REPEATS", "1" if quick else "3")
    completed = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=False, env=BASE_ENVIRONMENT)
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        return failed_row(name, RunFailed(lines[-1] if lines else f"exit {completed.returncode}"), "≤ 0.5")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if "unavailable" in result:
        return Row(name, f"unavailable (API changed: {result['unavailable']})", "≤ 0.5", None,
                   data={"unavailable": result["unavailable"]})
    batched, alone = statistics.median(result["batched"]), statistics.median(result["alone"])
    ratio = batched / alone
    return Row(name, f"{ratio:.2f} ({batched * 1000:.0f} ms ÷ {alone * 1000:.0f} ms)", "≤ 0.5", ratio <= 0.5,
               data={"ratio": ratio, "batched_s": result["batched"], "alone_s": result["alone"],
                     "files": result["files"]})
