"""`flashast cost BUILD/.ninja_log -o DIR`: ninja's log joined with DIR's manifest.

The logs are fixtures written here in each format ninja writes (`# ninja log v5`, `v6`, `v7`: start
and end in milliseconds, mtime, output, command hash, separated by tabs), as a build leaves them:
objects of generated files in CMake's spelling (`NAME.cu.o`) and setuptools' (`NAME.o`), an older
build's entries for the same outputs (the last one counts), and entries that belong to no generated
file (another object, the library, flashast's own step and the `.cu` files it lists as byproducts).

DIR is written by a plugin preset with an aggregator kind, so the report's attribution of an
aggregator's time to the files it includes is checked against hand-computed numbers:

    fp16, compiled one by one: hdim64 1 s, hdim128 2 s, hdim256 4 s (an older build logged 9 s)
    bf16, inside run_hdimall_bf16.cu: 9 s, so 3 s for each of its three members
    total 16 s; head_dim=64 4 s (25 %), 128 5 s (31 %), 256 7 s (44 %); dtype=bf16 9 s, fp16 7 s

The v5 report, the table, and the refusals of an unregistered preset and a missing log run `python -m
flashast cost`; the other reports and refusals run `cli.main` in process, which prints the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli, snapshot

from flashast.cli import main

PLUGIN = '''\
from flashast import Kind, LineComment, Preset, Registry, TranslationUnit
from flashast.presets.common import aggregator_kind


def build(config):
    return TranslationUnit((LineComment(f"run {config.head_dim} {config.dtype}"),))


def register(registry: Registry) -> None:
    registry.add_preset(Preset("demo", description="an aggregator over head dimensions"))
    member = Kind("run", axes={"dtype": ("fp16", "bf16"), "head_dim": (64, 128, 256)}, build=build,
                  file_name="run_hdim{head_dim}_{dtype}.cu")
    registry.add_kind("demo", member)
    registry.add_kind("demo", aggregator_kind(
        "run_hdimall", axes={"dtype": ("fp16", "bf16")}, member=member,
        members=lambda config: [{"dtype": config.dtype, "head_dim": d} for d in (64, 128, 256)],
        file_name="run_hdimall_{dtype}.cu"))
'''

# (start ms, end ms, output) as a build appends them; the first build's lines come first.
ENTRIES = [
    (0, 9000, "CMakeFiles/kernels.dir/kernels/run_hdim256_fp16.cu.o"),  # an older build's, superseded
    (0, 300, "CMakeFiles/flashast_KERNELS.stamp"),
    (0, 300, "kernels/run_hdim64_fp16.cu"),  # flashast's byproducts: not compile steps
    (300, 1300, "CMakeFiles/kernels.dir/kernels/run_hdim64_fp16.cu.o"),
    (300, 2300, "build/temp.linux-x86_64-cpython-311/kernels/run_hdim128_fp16.o"),  # setuptools' spelling
    (300, 4300, "CMakeFiles/kernels.dir/kernels/run_hdim256_fp16.cu.o"),
    (300, 9300, "CMakeFiles/kernels.dir/kernels/run_hdimall_bf16.cu.o"),
    (300, 800, "CMakeFiles/api.dir/api.cpp.o"),  # an object of no generated file
    (9300, 9600, "libkernels.a"),
]
HASHES = {5: "6f1b3e2a9c0d4e51", 6: "a3c6e1f0b2d49587", 7: "e5d1c2b3a4f60718"}


def write_log(path: Path, version: int, entries: list[tuple[int, int, str]] = ENTRIES) -> Path:
    lines = [f"# ninja log v{version}"]
    lines += [f"{start}\t{end}\t{1733300000000000000 + end}\t{output}\t{HASHES[version]}" for start, end, output in entries]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DIR as the plugin's run writes it: six members, two aggregators, and the manifest."""
    root = tmp_path_factory.mktemp("cost")
    (root / "demo.py").write_text(PLUGIN)
    code, _, stderr = run_cli("-o", root / "kernels", "--plugin", root / "demo.py", "--preset", "demo", "-q")
    assert code == 0, stderr
    return root / "kernels"


Run = Callable[..., tuple[int, str, str]]


def report(log: Path, kernels: Path, run: Run) -> dict[str, object]:
    code, stdout, stderr = run("cost", log, "-o", kernels, "--plugin", kernels.parent / "demo.py", "--json")
    assert code == 0 and stderr == "", stderr
    document: dict[str, object] = json.loads(stdout)
    return document


@pytest.mark.parametrize("version", [5, 6, 7])
def test_each_format_gives_each_file_its_last_compile_time(
    version: int, kernels: Path, tmp_path: Path, run_in_process: Run
) -> None:
    document = report(write_log(tmp_path / ".ninja_log", version), kernels, run_cli if version == 5 else run_in_process)
    assert document["ninja_log_version"] == version
    files = {entry["name"]: entry for entry in document["files"]}  # type: ignore[attr-defined]
    compiled = {name: entry["compiled_seconds"] for name, entry in files.items() if entry["compiled_seconds"] is not None}
    assert compiled == {"run_hdim64_fp16.cu": 1.0, "run_hdim128_fp16.cu": 2.0, "run_hdim256_fp16.cu": 4.0,
                        "run_hdimall_bf16.cu": 9.0}
    attributed = {name: entry["attributed_seconds"] for name, entry in files.items()}
    assert attributed == {"run_hdim64_fp16.cu": 1.0, "run_hdim128_fp16.cu": 2.0, "run_hdim256_fp16.cu": 4.0,
                          "run_hdim64_bf16.cu": 3.0, "run_hdim128_bf16.cu": 3.0, "run_hdim256_bf16.cu": 3.0,
                          "run_hdimall_bf16.cu": 0.0, "run_hdimall_fp16.cu": 0.0}
    assert files["run_hdim128_bf16.cu"]["through_aggregators"] == ["run_hdimall_bf16.cu"]
    assert files["run_hdim128_fp16.cu"]["outputs"] == ["build/temp.linux-x86_64-cpython-311/kernels/run_hdim128_fp16.o"]
    assert document["total_seconds"] == 16.0
    # api.cpp.o is a compile step of no generated file; the library, the stamp and the .cu byproducts are none.
    assert document["other_compile_steps"] == {"steps": 1, "seconds": 0.5}


def test_shares_per_axis_value_and_kind_count_aggregators_as_their_members(
    kernels: Path, tmp_path: Path, run_in_process: Run
) -> None:
    document = report(write_log(tmp_path / ".ninja_log", 7), kernels, run_in_process)
    by_axis = {axis: {entry["filter"]: (entry["seconds"], entry["share"], entry["files"]) for entry in shares}
               for axis, shares in document["by_axis"].items()}  # type: ignore[attr-defined]
    assert by_axis == {
        "kind": {"kind=run": (16.0, 1.0, 6)},
        "dtype": {"dtype=bf16": (9.0, 0.5625, 3), "dtype=fp16": (7.0, 0.4375, 3)},
        "head_dim": {"head_dim=256": (7.0, 0.4375, 2), "head_dim=128": (5.0, 0.3125, 2), "head_dim=64": (4.0, 0.25, 2)},
    }
    excludes = [(entry["filter"], entry["seconds"], entry["kept_aggregators"]) for entry in document["excludes"]]  # type: ignore[attr-defined]
    # kind=run would exclude everything compiled: not a candidate. dtype=bf16 drops the bf16 aggregator
    # with its members; head_dim=256 drops a member that run_hdimall_bf16.cu, which it keeps, includes.
    assert excludes == [
        ("dtype=bf16", 9.0, []), ("dtype=fp16", 7.0, []), ("head_dim=256", 7.0, ["run_hdimall_bf16.cu"]),
        ("head_dim=128", 5.0, ["run_hdimall_bf16.cu"]), ("head_dim=64", 4.0, ["run_hdimall_bf16.cu"]),
    ]


def test_the_table_reads_as_shares_slowest_files_and_savings(kernels: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / ".ninja_log", 6)
    code, stdout, stderr = run_cli("cost", log, "-o", kernels, "--plugin", kernels.parent / "demo.py", "--top", "2")
    assert code == 0 and stderr == "", stderr
    lines = stdout.splitlines()
    assert lines[0] == f"{log} (ninja log v6) against {kernels} (demo): 4 compile steps of generated files, 16.0 s"
    assert lines[1] == "other compile steps: 1, 0.5 s"
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}
    assert rows["head_dim=256"] == ["7.0", "44", "%", "2"]
    assert rows["head_dim=128"] == ["5.0", "31", "%", "2"]
    assert rows["kind=run"] == ["16.0", "100", "%", "6"]
    slowest = lines.index(next(line for line in lines if line.startswith("slowest files")))
    assert lines[slowest + 1].split() == ["run_hdimall_bf16.cu", "(aggregator", "of", "3)", "9.0", "56", "%"]
    assert lines[slowest + 2].split() == ["run_hdim256_fp16.cu", "4.0", "25", "%"]
    assert lines[slowest + 3] == ""  # --top 2
    savings = lines.index(next(line for line in lines if line.startswith("--exclude that saves the most")))
    assert [line.split()[:2] for line in lines[savings + 1:]] == [["--exclude", "dtype=bf16"], ["--exclude", "dtype=fp16"]]


def test_the_footnote_says_when_a_saving_needs_the_aggregators_out(kernels: Path, tmp_path: Path, run_in_process: Run) -> None:
    code, stdout, _ = run_in_process("cost", write_log(tmp_path / ".ninja_log", 7), "-o", kernels,
                                     "--plugin", kernels.parent / "demo.py")
    assert code == 0
    assert any(line.startswith("--exclude head_dim=256 (*)") for line in stdout.splitlines())
    assert "(*) drops files that aggregators it keeps include: add --exclude aggregator=true" in stdout


def test_an_aggregator_of_a_preset_not_registered_asks_for_its_plugin(kernels: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run_cli("cost", write_log(tmp_path / ".ninja_log", 7), "-o", kernels)
    assert (code, stdout) == (2, "")
    assert stderr == ("flashast: error: preset demo: not registered, so what its aggregators include is unknown;"
                      " add the --plugin that registers it\n")


def test_a_log_without_aggregator_steps_needs_no_model(kernels: Path, tmp_path: Path, run_in_process: Run) -> None:
    """Without an aggregator's step the manifest is enough: no plugin is loaded, none is needed."""
    log = write_log(tmp_path / ".ninja_log", 7, [entry for entry in ENTRIES if "hdimall" not in entry[2]])
    code, stdout, stderr = run_in_process("cost", log, "-o", kernels, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["total_seconds"] == 7.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not a log\n", "{log}: not a ninja log (its first line is not '# ninja log vN')"),
        ("", "{log}: not a ninja log (its first line is not '# ninja log vN')"),
        ("# ninja log v4\n", "{log}: ninja log v4; flashast reads v5 to v7"),
        ("# ninja log v8\n", "{log}: ninja log v8; flashast reads v5 to v7"),
        ("# ninja log v7\n0\t10\t0\ta.o\tff\n10 20 0 b.o ff\n",
         "{log}:3: not a ninja log v7 entry (start, end, mtime, output and hash, separated by tabs)"),
        ("# ninja log v7\n0\t10\t0\ta.o\tzz\n",
         "{log}:2: not a ninja log v7 entry (start, end, mtime, output and hash, separated by tabs)"),
        ("# ninja log v7\n0\t10\t0\ta.o\tff\n",
         "{log}: no compile step of a file in {kernels} (1 outputs logged, none the object of one of its 8 files);"
         " is it the log of the build that compiles them?"),
    ],
)
def test_a_log_flashast_cannot_read_is_one_line_and_exit_2(content: str, message: str, kernels: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """In-process (`main` returns what the subprocess exits with; the subprocess runs above)."""
    log = tmp_path / ".ninja_log"
    log.write_text(content)
    assert main(["cost", str(log), "-o", str(kernels)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"flashast: error: {message.format(log=log, kernels=kernels)}\n"


def test_a_directory_without_a_manifest_or_files_of_the_preset_is_one_line_and_exit_2(
    kernels: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / ".ninja_log", 7)
    empty = tmp_path / "empty"
    empty.mkdir()
    before = snapshot(kernels)
    for arguments, message in [
        (["-o", str(empty)], f"{empty}: no flashast manifest (.flashast.json): not a directory flashast wrote"),
        (["-o", str(tmp_path / "absent")],
         f"{tmp_path / 'absent'}: no flashast manifest (.flashast.json): not a directory flashast wrote"),
        (["-o", str(kernels), "--preset", "pytorch"], f"--preset pytorch: {kernels} holds no file of it (it holds: demo)"),
        (["-o", str(kernels), "--top", "0"], "argument --top: '0' is not a positive number of rows"),
        ([], "the following arguments are required: -o/--output"),
    ]:
        assert main(["cost", str(log), *arguments]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.splitlines()[-1] == f"flashast: error: {message}"
    code, stdout, stderr = run_cli("cost", tmp_path / "missing.log", "-o", kernels)
    assert (code, stdout) == (2, "")
    assert stderr == f"flashast: error: {tmp_path / 'missing.log'}: cannot read (No such file or directory)\n"
    assert snapshot(kernels) == before, "cost reads DIR, never writes it"
