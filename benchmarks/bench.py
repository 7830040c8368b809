"""Benchmark flashast against the string-template generators it replaces (stdlib only).

Every figure is a median over several runs of a fresh process, and every comparison is paired in the
same run (A, B, A, B, ...) and reported as the median of the per-pair ratios, because these machines
are noisy. The string-template baselines are written here, in the way the upstream scripts work
(`str.format` over `itertools.product`, one `write_text` per file), so both sides pay the same
interpreter start-up and file-system costs.

Run: `python benchmarks/bench.py` (about a minute on a 2-core machine). Exits 0 and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PYTHON = sys.executable
# Installed packages run from cached bytecode (pip compiles it at install; an editable checkout
# writes it on first import). Some shells set PYTHONDONTWRITEBYTECODE, which would make every run
# pay for compiling flashast while a baseline script compiles the same either way.
BASE_ENVIRONMENT = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

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
        registry.add_preset(Preset("synthetic", kinds=(Kind("inst", {{"index": tuple(range(COUNT))}}, build,
                                                             "inst_{{index}}.cu", CONTRACT),)))
    '''
)


@dataclass
class Row:
    name: str
    measured: str
    goal: str
    met: bool | None

    def cells(self) -> tuple[str, str, str, str]:
        verdict = "n/a" if self.met is None else ("met" if self.met else "MISSED")
        return self.name, self.measured, self.goal, verdict


@dataclass
class Run:
    seconds: float
    max_rss_kib: int


def run_process(command: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a fresh process; wall time and its own peak RSS (from wait4, not the whole tree's max).

    The disk is flushed first, outside the timed part: otherwise flashast's fsyncs (which issue 4
    asks for) would also wait for the baseline's unflushed files written just before it in the pair,
    and the ratio would measure the pairing order. Each side pays for its own writes only.
    """
    os.sync()
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=BASE_ENVIRONMENT if env is None else env
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed ({process.returncode}):\n{stderr}")
    return Run(seconds, usage.ru_maxrss)


def paired(first: Callable[[], float], second: Callable[[], float], pairs: int) -> tuple[float, float, float]:
    """Median of first, median of second, and median of per-pair ratios first/second."""
    firsts, seconds, ratios = [], [], []
    for _ in range(pairs):
        a = first()
        b = second()
        firsts.append(a)
        seconds.append(b)
        ratios.append(a / b)
    return statistics.median(firsts), statistics.median(seconds), statistics.median(ratios)


def flashast_command(output: Path, *extra: str) -> list[str]:
    return [PYTHON, "-m", "flashast", "-o", str(output), "-q", *extra]


def files_touched(directory: Path, before: dict[str, int]) -> int:
    after = {path.name: path.stat().st_mtime_ns for path in directory.iterdir()}
    return sum(1 for name, mtime in after.items() if before.get(name) != mtime)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=9, help="paired runs per comparison (default 9)")
    parser.add_argument("--quick", action="store_true", help="fewer pairs and a smaller sweep (smoke test)")
    arguments = parser.parse_args(argv)
    pairs = 3 if arguments.quick else arguments.pairs
    work = Path(tempfile.mkdtemp(prefix="flashast-bench-"))
    rows: list[Row] = []
    try:
        baseline_script = work / "baseline_pytorch.py"
        baseline_script.write_text(PYTORCH_BASELINE)
        counter = iter(range(10**6))

        def fresh(prefix: str) -> Path:
            return work / f"{prefix}{next(counter)}"

        def baseline() -> float:
            return run_process([PYTHON, str(baseline_script), "-o", str(fresh("base"))]).seconds

        warm_cache = {**BASE_ENVIRONMENT, "FLASHAST_CACHE_DIR": str(work / "cache")}

        def cold_empty_cache() -> float:
            """The first run on a machine (or in a CI container without a kept cache): a new directory,
            nothing remembered, so the model is built and every file parsed."""
            environment = {**BASE_ENVIRONMENT, "FLASHAST_CACHE_DIR": str(fresh("cache"))}
            return run_process(flashast_command(fresh("cold")), environment).seconds

        def cold() -> float:
            """The default cold run: a new directory, on a machine where flashast ran before with these
            inputs (its user cache holds the run record: see flashast/cache.py)."""
            return run_process(flashast_command(fresh("cold")), warm_cache).seconds

        run_process(flashast_command(fresh("warmup")), warm_cache)
        _, _, ratio = paired(cold, baseline, pairs)
        rows.append(Row("pytorch default cold run (new dir, user cache kept) ÷ baseline", f"{ratio:.2f}×", "≤ 2.0×",
                        ratio <= 2.0))

        steady = work / "steady"
        run_process(flashast_command(steady), warm_cache)
        touched: list[int] = []

        def noop() -> float:
            before = {path.name: path.stat().st_mtime_ns for path in steady.iterdir()}
            seconds = run_process(flashast_command(steady), warm_cache).seconds
            touched.append(files_touched(steady, before))
            return seconds

        _, _, ratio = paired(noop, baseline, pairs)
        rows.append(Row("pytorch no-op rerun ÷ baseline", f"{ratio:.2f}×", "≤ 1.0×", ratio <= 1.0))
        rows.append(Row("pytorch no-op rerun: files touched", str(max(touched)), "0", max(touched) == 0))

        clang = next(filter(None, map(shutil.which, ("clang++", "clang++-18", "clang++-17", "clang++-16"))), None)
        if clang:
            reference = work / "reference"
            run_process([PYTHON, str(baseline_script), "-o", str(reference)])

            def baseline_plus_clang() -> float:
                started = time.perf_counter()
                run_process([PYTHON, str(baseline_script), "-o", str(fresh("base"))])
                for path in sorted(reference.glob("*.cu")):
                    subprocess.run([clang, "-fsyntax-only", "-x", "c++", "-std=c++17", str(path)],
                                   capture_output=True, check=False)
                return time.perf_counter() - started

            _, _, ratio = paired(cold, baseline_plus_clang, max(3, pairs // 3))
            rows.append(Row("pytorch cold ÷ (baseline + clang++ per file)", f"{ratio:.3f}×", "≤ 0.1×", ratio <= 0.1))
        else:
            rows.append(Row("pytorch cold ÷ (baseline + clang++ per file)", "skipped: no clang++ on PATH",
                            "≤ 0.1×", None))

        fa3_script = work / "baseline_fa3.py"
        fa3_script.write_text(FLASH_ATTN_3_BASELINE)

        def fa3_baseline() -> float:
            return run_process([PYTHON, str(fa3_script), str(fresh("fa3base"))]).seconds

        def fa3_cold_empty_cache() -> float:
            environment = {**BASE_ENVIRONMENT, "FLASHAST_CACHE_DIR": str(fresh("cache"))}
            return run_process(flashast_command(fresh("fa3"), "--preset", "flash-attn-3"), environment).seconds

        def fa3_cold() -> float:
            return run_process(flashast_command(fresh("fa3"), "--preset", "flash-attn-3"), warm_cache).seconds

        run_process(flashast_command(fresh("fa3"), "--preset", "flash-attn-3"), warm_cache)
        _, _, ratio = paired(fa3_cold, fa3_baseline, pairs)
        rows.append(Row("flash-attn-3 default cold run (new dir, user cache kept) ÷ its baseline", f"{ratio:.2f}×",
                        "≤ 2.0×", ratio <= 2.0))
        # Not a goal of the table: what the very first run on a machine costs, shown so that
        # nobody mistakes the rows above for it.
        _, _, ratio = paired(cold_empty_cache, baseline, pairs)
        rows.append(Row("first run on a machine (empty user cache), pytorch ÷ baseline", f"{ratio:.2f}×", "-", None))
        _, _, ratio = paired(fa3_cold_empty_cache, fa3_baseline, pairs)
        rows.append(Row("first run on a machine (empty user cache), flash-attn-3 ÷ its baseline", f"{ratio:.2f}×",
                        "-", None))

        sweep = (200, 2000) if arguments.quick else (1000, 10000)
        per_file: list[float] = []
        for count in sweep:
            plugin = work / f"synthetic_{count}.py"
            plugin.write_text(SYNTHETIC_PLUGIN.format(count=count))
            runs = []
            for _ in range(1 if arguments.quick else 3):  # the median of three: one write burst is noise
                environment = {**BASE_ENVIRONMENT, "FLASHAST_CACHE_DIR": str(fresh("cache"))}
                runs.append(run_process(
                    flashast_command(fresh("synth"), "--plugin", str(plugin), "--preset", "synthetic"), environment
                ))
            run = sorted(runs, key=lambda each: each.seconds)[len(runs) // 2]
            per_file.append(run.seconds / count)
            goal = "≤ 10 s" if count == 10000 else "-"
            met = run.seconds <= 10 if count == 10000 else None
            rows.append(Row(f"synthetic {count} files: wall, peak RSS",
                            f"{run.seconds:.2f} s, {run.max_rss_kib / 1024:.0f} MiB", goal, met))
        linearity = per_file[1] / per_file[0]
        rows.append(Row(f"synthetic per-file cost {sweep[1]} ÷ {sweep[0]}", f"{linearity:.2f}×", "≤ 1.2×",
                        linearity <= 1.2))

        rows.extend(real_header_rows())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    return 0


def real_header_rows() -> list[Row]:
    """Real-header mode on the fixture tree: the first file's cost and the median of the later ones."""
    tree = FIXTURES / "pytorch_headers"
    if not tree.is_dir():
        return [Row("real headers: median later file ÷ first file", "skipped: no fixture tree", "≤ 0.3", None)]
    code = textwrap.dedent(
        f'''
        import json
        from flashast.registry import Registry
        from flashast.verify import VerifyOptions, verify
        timings = []
        files = Registry().preset("pytorch").generate()
        verify(files, VerifyOptions(include_dirs=({str(tree)!r},)), lambda generated, seconds, failed: timings.append(seconds))
        print(json.dumps(timings))
        '''
    )
    completed = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return [Row("real headers: median later file ÷ first file", "failed: " + completed.stderr.strip()[-200:],
                    "≤ 0.3", False)]
    timings = json.loads(completed.stdout)
    first, rest = timings[0], statistics.median(timings[1:])
    ratio = rest / first
    return [
        Row("real headers (fixture tree, 48 files): first file", f"{first * 1000:.1f} ms", "-", None),
        Row("real headers: median later file ÷ first file", f"{ratio:.2f} ({rest * 1000:.2f} ms)", "≤ 0.3",
            ratio <= 0.3),
    ]


def print_table(rows: Sequence[Row]) -> None:
    header = ("row", "measured", "goal", "verdict")
    table = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in table) for column in range(4)]
    print(f"flashast benchmark — {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for index, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


if __name__ == "__main__":
    sys.exit(main())
