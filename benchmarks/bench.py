"""Benchmark flashast against the string-template generators it replaces (stdlib only).

Every figure is a median over several runs of a fresh process, and every comparison is paired in the
same run (A, B, A, B, ...) and reported as the median of the per-pair ratios, with the lowest and
highest pair in brackets, because these machines are noisy. The string-template baselines are
written here (`baselines.py`), in the way the upstream scripts work (`str.format` over
`itertools.product`, one `write_text` per file), so both sides pay the same interpreter start-up and
file-system costs.

flashast is driven only through its command line (`python -m flashast`) and its public package
(`from flashast import ...`); the real-headers row (fixture tree) and the contract-batching row alone
need `flashast.verify`, and say so instead of failing when that API has moved. Every flashast run gets its own `FLASHAST_CACHE_DIR`,
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
  whose inode, size, mtime or ctime changed, or that appeared or went away: it must be 0;
- contract batching: flash-attn-3's 450 files verified cold in one `verify` (batched) against one
  `verify` per file (an aggregator with its members), in process: what batching saves, so it pays
  for its lines (goal: ≤ 0.5×).

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

This module is the command line and the table (and JSON) it prints; the rows are measured in
`generation_rows.py` (the rows that generate files, and the fixture-tree row) and `fa2_rows.py`
(the FA2 rows and the nvcc row), against the compilers of `anchors.py`, with the processes, pairs
and rows of `harness.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from fa2_rows import fa2_rows, nvcc_row
from generation_rows import (
    Bench,
    clang_row,
    contract_batching_row,
    preset_rows,
    real_header_rows,
    startup_row,
    synthetic_rows,
)
from harness import Row


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
            rows.append(contract_batching_row(arguments.quick))
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
