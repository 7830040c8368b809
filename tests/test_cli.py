"""The command line as a user and a build system see it: one-line errors with exit 2 that leave the
output directory exactly as it was, `--list` and `--manifest` for CMake/setuptools, axis and glob
filters, `-q`, `--help`, and `main()` in-process returning the same codes as the subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import cli_command, cli_environment, read_golden, run_cli, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashast.cli import main
from flashast.kinds import Kind
from flashast.nodes import TranslationUnit, Verbatim
from flashast.output import MANIFEST_NAME
from flashast.registry import Registry

GOLDEN = read_golden("pytorch")
SAMPLE = "flash_fwd_hdim128_bf16_sm80.cu"
NAME = re.compile(r"flash_(?P<kind>fwd|bwd|fwd_split)_hdim(?P<head_dim>\d+)_(?P<dtype>fp16|bf16)_sm(?P<sm>\d+)\.cu")
AXES = {name: NAME.fullmatch(name).groupdict() for name in GOLDEN}  # type: ignore[union-attr]
KINDS = ("fwd", "bwd", "fwd_split")
DTYPES = ("fp16", "bf16")
HEAD_DIMS = ("32", "64", "96", "128", "160", "192", "224", "256")


def names_where(**wanted: tuple[str, ...]) -> set[str]:
    """The golden names whose axes take one of the wanted values on every axis given."""
    return {name for name, axes in AXES.items() if all(axes[axis] in values for axis, values in wanted.items())}


def listed(stdout: str, prefix: str = "out") -> set[str]:
    lines = stdout.splitlines()
    assert len(lines) == len(set(lines)), "each file is listed once"
    assert all(line.startswith(prefix + "/") for line in lines), lines
    return {line[len(prefix) + 1 :] for line in lines}


@pytest.fixture
def list_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """`flashast -o out --list ARGS…` through `main()` in this process, from `tmp_path`: the filters'
    meaning is what these tests check, and the subprocess tests above cover the exit-code contract."""
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")
    monkeypatch.chdir(tmp_path)

    def list_files(*arguments: str) -> tuple[int, str, str]:
        code = main(["-o", "out", "--list", *arguments])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return list_files


@pytest.fixture(scope="module")
def populated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template") / "out"
    code, _, stderr = run_cli("-o", directory)
    assert code == 0, stderr
    return directory


def populated(tmp_path: Path, template: Path) -> Path:
    directory = tmp_path / "out"
    shutil.copytree(template, directory)
    return directory


def tree(root: Path) -> set[str]:
    """Every path under `root`, directories included (a snapshot only holds files)."""
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


# User errors ----------------------------------------------------------------------------------------

Setup = Callable[[Path, Path], list[str]]


def _missing_output(tmp_path: Path, template: Path) -> list[str]:
    populated(tmp_path, template)
    return []


def _unknown_preset(tmp_path: Path, template: Path) -> list[str]:
    return ["-o", str(populated(tmp_path, template)), "--preset", "pytorh"]


def _output_is_a_file(tmp_path: Path, template: Path) -> list[str]:
    (tmp_path / "kernels").write_text("a file\n")
    return ["-o", str(tmp_path / "kernels")]


def _output_under_a_file(tmp_path: Path, template: Path) -> list[str]:
    (tmp_path / "kernels").write_text("a file\n")
    return ["-o", str(tmp_path / "kernels" / "deeper" / "out")]


def _output_under_a_file_checked(tmp_path: Path, template: Path) -> list[str]:
    (tmp_path / "kernels").write_text("a file\n")
    return ["-o", str(tmp_path / "kernels" / "out"), "--check"]


def _filter(*arguments: str) -> Setup:
    def setup(tmp_path: Path, template: Path) -> list[str]:
        return ["-o", str(populated(tmp_path, template)), *arguments]

    return setup


def _foreign_conflict(tmp_path: Path, template: Path) -> list[str]:
    directory = tmp_path / "out"
    directory.mkdir()
    (directory / SAMPLE).write_text("// my own kernel\n")
    (directory / "notes.txt").write_text("keep me\n")
    return ["-o", str(directory)]


def _foreign_conflict_in_owned_directory(tmp_path: Path, template: Path) -> list[str]:
    directory = populated(tmp_path, template)
    manifest = json.loads((directory / MANIFEST_NAME).read_text())
    del manifest["files"][SAMPLE]
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest))
    (directory / SAMPLE).write_text("// my own kernel\n")
    (directory / "flash_bwd_hdim32_fp16_sm80.cu").write_text("// an owned file that needs rewriting\n")
    (directory / ".flashast-tmp-leftover").write_text("from a killed run\n")
    return ["-o", str(directory)]


def _corrupt_manifest(text: str) -> Setup:
    def setup(tmp_path: Path, template: Path) -> list[str]:
        directory = populated(tmp_path, template)
        (directory / MANIFEST_NAME).write_text(text)
        (directory / SAMPLE).write_text("// needs rewriting\n")
        return ["-o", str(directory), "--prune"]

    return setup


def _generated_path_is_a_directory(tmp_path: Path, template: Path) -> list[str]:
    directory = populated(tmp_path, template)
    (directory / SAMPLE).unlink()
    (directory / SAMPLE).mkdir()
    return ["-o", str(directory)]


def _listing_under_a_file(tmp_path: Path, template: Path) -> list[str]:
    directory = populated(tmp_path, template)
    (directory / SAMPLE).write_text("// needs rewriting\n")
    (tmp_path / "build").write_text("a file\n")
    return ["-o", str(directory), "--manifest", str(tmp_path / "build" / "files.json")]


def _listing_is_a_directory(tmp_path: Path, template: Path) -> list[str]:
    (tmp_path / "build").mkdir()
    return ["-o", str(tmp_path / "out"), "--list", "--manifest", str(tmp_path / "build")]


def _missing_plugin(tmp_path: Path, template: Path) -> list[str]:
    return ["-o", str(populated(tmp_path, template)), "--plugin", str(tmp_path / "nowhere.py")]


def _missing_include_dir(tmp_path: Path, template: Path) -> list[str]:
    return ["-o", str(populated(tmp_path, template)), "--include-dir", str(tmp_path / "nowhere")]


USER_ERRORS: dict[str, tuple[Setup, str]] = {
    "missing -o": (_missing_output, "-o/--output DIR is required"),
    "unknown preset": (_unknown_preset, "unknown preset 'pytorh' (known: "),
    "-o is a regular file": (_output_is_a_file, "kernels: exists and is not a directory"),
    "-o under a regular file": (_output_under_a_file, "kernels is not a directory"),
    "--check, -o under a regular file": (_output_under_a_file_checked, "kernels is not a directory"),
    "unknown axis": (_filter("--only", "hdim=128"), "--only hdim=128: unknown axis 'hdim'"),
    "unknown value": (_filter("--only", "head_dim=100"), "--only head_dim=100: head_dim has no value '100'"),
    "unknown kind": (_filter("--exclude", "kind=fwd,fwd_splitkv"), "--exclude kind=fwd,fwd_splitkv: kind has no"),
    "malformed filter": (_filter("--only", "head_dim="), "--only head_dim=: expected AXIS=VALUE"),
    "glob matches nothing": (_filter("--only", "*hdim512*"), "--only *hdim512*: matches no file of preset pytorch"),
    "exclude matches nothing": (_filter("--exclude", "*.cpp"), "--exclude *.cpp: matches no file of preset pytorch"),
    "filters together match nothing": (
        _filter("--only", "kind=bwd", "--only", "flash_fwd_*"),
        "--only kind=bwd --only flash_fwd_*: together select no file of preset pytorch",
    ),
    "everything excluded": (
        _filter("--exclude", "dtype=fp16", "--exclude", "dtype=bf16"),
        "--exclude dtype=fp16 --exclude dtype=bf16: together select no file",
    ),
    "foreign conflict": (_foreign_conflict, "exists, was not written by flashast and differs"),
    "foreign conflict in an owned directory": (_foreign_conflict_in_owned_directory, "was not written by flashast"),
    "manifest not JSON": (_corrupt_manifest("{not json"), ".flashast.json: not a flashast manifest"),
    "manifest without files": (_corrupt_manifest('{"files": []}'), ".flashast.json: not a flashast manifest"),
    "manifest owns a path outside DIR": (
        _corrupt_manifest('{"files": {"../victim.cu": {"sha256": "00"}}}'),
        "'../victim.cu' is not a generated file name",
    ),
    "manifest owns itself": (
        _corrupt_manifest('{"files": {".flashast.json": {"sha256": "00"}}}'),
        "'.flashast.json' is not a generated file name",
    ),
    "manifest entry without sha256": (
        _corrupt_manifest('{"files": {"a.cu": {}}}'),
        "'a.cu' has no sha256",
    ),
    "generated path is a directory": (_generated_path_is_a_directory, "exists and is not a regular file"),
    "--manifest under a regular file": (_listing_under_a_file, "build: exists and is not a directory"),
    "--manifest is a directory": (_listing_is_a_directory, "build: is a directory"),
    "missing plugin file": (_missing_plugin, "nowhere.py: no such file"),
    "missing include dir": (_missing_include_dir, "nowhere: not a directory"),
    "unknown option": (_filter("--frobnicate"), "unrecognized arguments: --frobnicate"),
    "--check with --diff": (_filter("--check", "--diff"), "argument --diff: not allowed with argument --check"),
}
USAGE_FIRST = {"missing -o", "unknown option", "--check with --diff"}
# One case of each stage a user error can come from (argparse, flashast's usage check, the preset, the
# filters, the output path, the directory's ownership, its manifest, a plugin), run by `python -m
# flashast` as well: the process exits with the code `main` returns and prints exactly what it prints.
THROUGH_A_SUBPROCESS = ("unknown option", "missing -o", "unknown preset", "unknown axis", "-o under a regular file",
                        "foreign conflict in an owned directory", "manifest not JSON", "missing plugin file")


def check_user_error(case: str, result: tuple[int, str, str]) -> None:
    """Exit 2, nothing on stdout, no traceback, and one `flashast: error:` line saying what is expected
    (after the usage, for the errors argparse reports)."""
    code, stdout, stderr = result
    assert (code, stdout) == (2, ""), stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    if case in USAGE_FIRST:
        assert lines[0].startswith("usage: flashast ")
        lines = [line for line in lines if not line.startswith(" ")][1:]  # argparse wraps usage lines
    assert len(lines) == 1, stderr
    assert lines[0].startswith("flashast: error: ")
    assert USER_ERRORS[case][1] in lines[0]


@pytest.mark.parametrize("case", USER_ERRORS)
def test_a_user_error_is_one_line_exit_two_and_changes_nothing(
    case: str, tmp_path: Path, populated_template: Path, run_in_process: Callable[..., tuple[int, str, str]]
) -> None:
    arguments = USER_ERRORS[case][0](tmp_path, populated_template)
    before = snapshot(tmp_path)
    paths_before = tree(tmp_path)
    check_user_error(case, run_in_process(*arguments, cwd=tmp_path))
    assert snapshot(tmp_path) == before
    assert tree(tmp_path) == paths_before, "no directory was created either"


@pytest.mark.parametrize("case", THROUGH_A_SUBPROCESS)
def test_python_m_flashast_reports_a_user_error_exactly_as_main_does(
    case: str, tmp_path: Path, populated_template: Path, run_in_process: Callable[..., tuple[int, str, str]]
) -> None:
    """The command a user types, in two fresh directories set up alike: the same exit code, stdout and
    stderr as `main` in process, and the directory exactly as it was."""
    results = []
    for where in ("subprocess", "in process"):
        root = tmp_path / where.replace(" ", "-")
        root.mkdir()
        arguments = USER_ERRORS[case][0](root, populated_template)
        before, paths_before = snapshot(root), tree(root)
        run = run_cli if where == "subprocess" else run_in_process
        code, stdout, stderr = run(*arguments, cwd=root)
        check_user_error(case, (code, stdout, stderr))
        assert snapshot(root) == before
        assert tree(root) == paths_before, "no directory was created either"
        results.append((code, stdout, stderr.replace(str(root), "ROOT")))
    assert results[0] == results[1]



def test_main_in_process_returns_zero_one_and_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")
    directory = tmp_path / "out"
    assert main(["-o", str(directory)]) == 0
    assert {path.name for path in directory.iterdir()} == {*GOLDEN, MANIFEST_NAME}
    assert main(["-o", str(directory), "--check"]) == 0
    (directory / SAMPLE).write_text("// edited\n")
    assert main(["-o", str(directory), "--check"]) == 1
    assert main(["-o", str(directory), "--diff"]) == 1
    assert f"+++ b/{SAMPLE}" in capsys.readouterr().out
    assert main(["-o", str(directory), "-q"]) == 2  # an owned file edited by hand is kept...
    assert main(["-o", str(directory), "-q", "--force"]) == 0  # ...unless asked
    assert main(["-o", str(directory), "--check"]) == 0
    assert main(["--help"]) == 0
    assert main(["--version"]) == 0


def test_missing_output_prints_usage_then_one_error_line(tmp_path: Path) -> None:
    code, stdout, stderr = run_cli(cwd=tmp_path)
    assert (code, stdout) == (2, "")
    assert stderr.startswith("usage: flashast ")
    assert stderr.splitlines()[-1] == "flashast: error: -o/--output DIR is required"
    assert [line for line in stderr.splitlines() if line.startswith("flashast:")] == [stderr.splitlines()[-1]]
    assert list(tmp_path.iterdir()) == []


def test_unknown_preset_lists_the_known_ones(tmp_path: Path) -> None:
    code, _, stderr = run_cli("-o", tmp_path / "out", "--preset", "nope")
    assert code == 2
    assert stderr.startswith("flashast: error: unknown preset 'nope' (known: flash-attn-2, flash-attn-3, llama.cpp, pytorch")
    assert not (tmp_path / "out").exists()


# --help, -q -------------------------------------------------------------------------------------------


def test_help_documents_every_exit_code(tmp_path: Path) -> None:
    code, stdout, stderr = run_cli("--help", cwd=tmp_path)
    assert (code, stderr) == (0, "")
    assert "exit codes:" in stdout
    documented = {line.split()[0] for line in stdout.split("exit codes:")[1].splitlines() if re.match(r"  \d", line)}
    assert documented == {"0", "1", "2", "3", "123", "130", "143"}
    for option in ("--check", "--diff", "--list", "--manifest", "--only", "--exclude", "--prune", "--force", "-q"):
        assert option in stdout


def test_quiet_silences_the_summary_but_not_errors(tmp_path: Path, run_in_process: Callable[..., tuple[int, str, str]]) -> None:
    """The first run through `python -m flashast`; the rerun, the check and the error in process."""
    directory = tmp_path / "out"
    assert run_cli("-o", directory, "-q") == (0, "", "")
    assert {path.name for path in directory.iterdir()} == {*GOLDEN, MANIFEST_NAME}
    assert run_in_process("-o", directory, "-q") == (0, "", "")
    assert run_in_process("-o", directory, "-q", "--check") == (0, "", "")
    code, _, stderr = run_in_process("-o", directory, "-q", "--only", "hdim=1")
    assert code == 2
    assert stderr.startswith("flashast: error: ")


def test_without_quiet_a_run_prints_exactly_the_summary(tmp_path: Path) -> None:
    code, stdout, stderr = run_cli("-o", tmp_path / "out")
    assert (code, stdout) == (0, "")
    assert stderr == "flashast: 48 written, 0 unchanged, 0 stale (pytorch)\n"


# --list, --manifest -------------------------------------------------------------------------------------


def test_list_prints_every_path_a_run_writes_and_writes_nothing(
    tmp_path: Path, run_in_process: Callable[..., tuple[int, str, str]]
) -> None:
    """The listing through `python -m flashast` (what a build system reads); the run it is compared
    with in process."""
    code, stdout, stderr = run_cli("-o", "out", "--list", cwd=tmp_path)
    assert (code, stderr) == (0, "")
    assert listed(stdout) == set(GOLDEN)
    assert stdout.splitlines() == sorted(stdout.splitlines())
    assert list(tmp_path.iterdir()) == [], "--list does not even create the directory"
    assert run_in_process("-o", "out", "-q", cwd=tmp_path)[0] == 0
    written = {path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith(".")}
    assert written == listed(stdout)


def test_list_with_filters_equals_what_the_same_filtered_run_writes(
    tmp_path: Path, run_in_process: Callable[..., tuple[int, str, str]]
) -> None:
    """The listing through `python -m flashast`; the filtered run in process."""
    filters = ["--only", "head_dim=128,256", "--only", "kind=fwd,fwd_split", "--exclude", "*_fp16_*"]
    code, stdout, stderr = run_cli("-o", "out", "--list", *filters, cwd=tmp_path)
    assert (code, stderr) == (0, "")
    expected = names_where(head_dim=("128", "256"), kind=("fwd", "fwd_split"), dtype=("bf16",))
    assert listed(stdout) == expected
    assert len(expected) == 4
    assert run_in_process("-o", "out", "-q", *filters, cwd=tmp_path)[0] == 0
    assert {path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith(".")} == expected


def test_list_of_an_existing_directory_touches_nothing(tmp_path: Path, populated_template: Path) -> None:
    directory = populated(tmp_path, populated_template)
    (directory / SAMPLE).write_text("// edited\n")
    before = snapshot(tmp_path)
    code, stdout, _ = run_cli("-o", directory, "--list")
    assert code == 0
    assert listed(stdout, str(directory)) == set(GOLDEN)
    assert snapshot(tmp_path) == before


def test_manifest_lists_kind_and_axes_per_file(tmp_path: Path) -> None:
    code, stdout, _ = run_cli("-o", "out", "--list", "--manifest", "build/files.json", cwd=tmp_path)
    assert code == 0
    listing = json.loads((tmp_path / "build" / "files.json").read_text())
    assert listing["preset"] == "pytorch"
    entries = {entry["name"]: entry for entry in listing["files"]}
    assert set(entries) == listed(stdout) == set(GOLDEN)
    for name, entry in entries.items():
        assert entry["path"] == f"out/{name}"
        assert entry["kind"] == AXES[name]["kind"]
        assert entry["axes"] == {
            "dtype": AXES[name]["dtype"],
            "head_dim": int(AXES[name]["head_dim"]),
            "sm": int(AXES[name]["sm"]),
        }
        assert entry["aggregator"] is False
    assert not (tmp_path / "out").exists()


def test_manifest_of_a_filtered_run_lists_what_it_wrote_and_is_not_rewritten_when_unchanged(
    tmp_path: Path, run_in_process: Callable[..., tuple[int, str, str]]
) -> None:
    """The first run through `python -m flashast`; the unchanged rerun in process."""
    arguments = ("-o", "out", "-q", "--only", "dtype=bf16", "--manifest", "files.json")
    assert run_cli(*arguments, cwd=tmp_path)[0] == 0
    listing = json.loads((tmp_path / "files.json").read_text())
    written = {path.name for path in (tmp_path / "out").iterdir() if not path.name.startswith(".")}
    assert {entry["name"] for entry in listing["files"]} == written == names_where(dtype=("bf16",))
    mtime = (tmp_path / "files.json").stat().st_mtime_ns
    assert run_in_process(*arguments, cwd=tmp_path)[0] == 0
    assert (tmp_path / "files.json").stat().st_mtime_ns == mtime


# Filters ---------------------------------------------------------------------------------------------------

FILTER_CASES: dict[str, tuple[list[str], set[str]]] = {
    "head_dim=128": (["--only", "head_dim=128"], names_where(head_dim=("128",))),
    "dtype=bf16": (["--only", "dtype=bf16"], names_where(dtype=("bf16",))),
    "kind=fwd,fwd_split": (["--only", "kind=fwd,fwd_split"], names_where(kind=("fwd", "fwd_split"))),
    "sm=80": (["--only", "sm=80"], set(GOLDEN)),
    "glob": (["--only", "flash_bwd_*"], names_where(kind=("bwd",))),
    "globs are alternatives": (
        ["--only", "*_hdim32_*", "--only", "*_bf16_*"],
        names_where(head_dim=("32",)) | names_where(dtype=("bf16",)),
    ),
    "globs as a group and an axis": (
        ["--only", "*_hdim32_*", "--only", "*_hdim64_*", "--only", "kind=bwd"],
        names_where(head_dim=("32", "64"), kind=("bwd",)),
    ),
    "same axis twice is either": (
        ["--only", "head_dim=64", "--only", "head_dim=96"],
        names_where(head_dim=("64", "96")),
    ),
    "axes combine with and": (
        ["--only", "head_dim=128", "--only", "dtype=bf16"],
        names_where(head_dim=("128",), dtype=("bf16",)),
    ),
    "axis and glob": (["--only", "kind=fwd", "--only", "*_bf16_*"], names_where(kind=("fwd",), dtype=("bf16",))),
    "exclude an axis": (["--exclude", "kind=bwd"], names_where(kind=("fwd", "fwd_split"))),
    "exclude a glob": (["--exclude", "flash_fwd_split_*"], names_where(kind=("fwd", "bwd"))),
    "only and exclude": (
        ["--only", "head_dim=64,256", "--exclude", "dtype=fp16", "--exclude", "*_split_*"],
        names_where(head_dim=("64", "256"), dtype=("bf16",), kind=("fwd", "bwd")),
    ),
}


@pytest.mark.parametrize("case", FILTER_CASES)
def test_filters_select_by_axis_and_glob(case: str, list_in_process: Callable[..., tuple[int, str, str]]) -> None:
    arguments, expected = FILTER_CASES[case]
    code, stdout, stderr = list_in_process(*arguments)
    assert (code, stderr) == (0, "")
    assert listed(stdout) == expected
    assert expected, "every case selects something"


def test_aggregator_axis_separates_aggregators_from_their_members(
    list_in_process: Callable[..., tuple[int, str, str]],
) -> None:
    """A build that compiles the members says `--exclude aggregator=true`; the two lists partition the preset."""
    code, members, _ = list_in_process("--preset", "flash-attn-3", "--exclude", "aggregator=true")
    assert code == 0
    code, aggregators, _ = list_in_process("--preset", "flash-attn-3", "--only", "aggregator=true")
    assert code == 0
    golden = set(read_golden("flash-attn-3"))
    assert listed(members) | listed(aggregators) == golden
    assert not listed(members) & listed(aggregators)
    assert all(re.search(r"_(hdimall|hdimdiff|softcapall)_", name) for name in listed(aggregators))
    assert len(listed(aggregators)) == 110
    code, _, stderr = list_in_process("--only", "aggregator=true")
    assert code == 2
    assert "aggregator has no value 'true'" in stderr


@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.sets(st.sampled_from(KINDS)),
    dtypes=st.sets(st.sampled_from(DTYPES)),
    head_dims=st.sets(st.sampled_from(HEAD_DIMS)),
    excluded_dims=st.sets(st.sampled_from(HEAD_DIMS), max_size=2),
)
def test_random_axis_filters_list_exactly_the_matching_files(
    list_in_process: Callable[..., tuple[int, str, str]], kinds: set[str], dtypes: set[str], head_dims: set[str],
    excluded_dims: set[str],
) -> None:
    """Any combination of `--only` per axis and `--exclude head_dim=…`: the files whose axes all match."""
    arguments: list[str] = []
    wanted: dict[str, tuple[str, ...]] = {}
    for axis, values in (("kind", kinds), ("dtype", dtypes), ("head_dim", head_dims)):
        if values:
            arguments += ["--only", f"{axis}={','.join(sorted(values))}"]
            wanted[axis] = tuple(values)
    if excluded_dims:
        arguments += ["--exclude", f"head_dim={','.join(sorted(excluded_dims))}"]
    expected = {name for name in names_where(**wanted) if AXES[name]["head_dim"] not in excluded_dims}
    code, stdout, stderr = list_in_process(*arguments)
    if expected:
        assert (code, stderr) == (0, "")
        assert listed(stdout) == expected
    else:
        assert code == 2
        assert stderr.startswith("flashast: error: ")
        assert "together select no file" in stderr
        assert len(stderr.splitlines()) == 1


def test_main_in_process_returns_three_when_verification_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind registered in Python (no plugin file) whose file does not parse: exit 3, nothing written."""
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")
    registry = Registry()
    registry.add_kind(
        "pytorch",
        Kind("broken", axes={"head_dim": (64,)}, build=lambda config: TranslationUnit((Verbatim("int broken = ;"),)),
             file_name="broken_hdim{head_dim}.cu"),
    )
    directory = tmp_path / "out"
    assert main(["-o", str(directory)], registry=registry) == 3
    assert "broken_hdim64.cu:1:" in capsys.readouterr().err
    assert not directory.exists()
    assert main(["-o", str(directory), "--no-verify", "-q"], registry=registry) == 0
    assert (directory / "broken_hdim64.cu").read_text() == "int broken = ;\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits; '-o under a file' covers root")
def test_an_unwritable_output_directory_is_one_line_naming_it(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for target in (locked, locked / "out"):
            code, stdout, stderr = run_cli("-o", target)
            assert (code, stdout) == (2, "")
            assert stderr == f"flashast: error: {target}: {locked} is not writable\n"
            assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    """`flashast --list | head -1`: the closed pipe ends the run quietly."""
    command = " ".join(["'" + part + "'" for part in cli_command("-o", "out", "--preset", "flash-attn-3", "--list")])
    completed = subprocess.run(
        f"{command} | head -1", shell=True, cwd=tmp_path, capture_output=True, text=True, check=False,
        env=cli_environment(),
    )
    assert completed.stdout == "out/flash_bwd_hdim128_bf16_sm80.cu\n"
    assert completed.stderr == ""
