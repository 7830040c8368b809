"""A hostile user's inputs through the real CLI: every user error is one line, exit 2, and leaves the
output directory exactly as it was (names, bytes and mtimes); verification failures are exit 3.

What only a process shows (signals, file-size limits, the locale, a hang caught by a timeout, a plugin
that exits) runs as `python -m flashast`; a family of variants of one refusal keeps a case through it
and checks the others through `cli.main` in process (`run_in_process`), which prints the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import cli_command, cli_environment, run_cli, snapshot


@pytest.fixture(scope="module")
def written_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete pytorch run, written once by the CLI for the module; tests change copies of it."""
    directory = tmp_path_factory.mktemp("written") / "out"
    code, _, stderr = run_cli("-o", directory, "--no-verify", "-q")
    assert code == 0, stderr
    return directory


def written(tmp_path: Path, template: Path) -> Path:
    """An output directory holding a complete pytorch run (a copy of the module's, contents and times)."""
    directory = tmp_path / "out"
    shutil.copytree(template, directory)
    return directory


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("flashast: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


Run = Callable[..., tuple[int, str, str]]


@pytest.mark.parametrize("name", [".flashast.json", "flash_fwd_hdim128_fp16_sm80.cu", "listing.json"])
def test_a_listing_path_inside_the_output_directory_is_refused_before_anything_is_written(
    tmp_path: Path, written_template: Path, name: str, run_in_process: Run
) -> None:
    """The manifest's own name through `python -m flashast`, the other two through `main` in process."""
    directory = written(tmp_path, written_template)
    before = snapshot(directory)
    run = run_cli if name == ".flashast.json" else run_in_process
    code, _, stderr = run("-o", directory, "--no-verify", "--only", "head_dim=64", "--manifest", directory / name)
    assert code == 2
    assert f"{directory / name}: lies in the output directory" in one_error_line(stderr)
    assert snapshot(directory) == before


@pytest.mark.parametrize(
    ("arguments", "culprit"),
    [
        (["--check", "--prune"], "--prune"),
        (["--diff", "--force"], "--force"),
        (["--list", "--prune"], "--prune"),
        (["--check", "--manifest", "listing.json"], "--manifest"),
        (["--no-verify", "--strict"], "--strict"),
        (["--no-verify", "--include-dir", "."], "--include-dir"),
        (["--list-kinds", "--prune"], "--list-kinds"),
    ],
)
def test_contradictory_options_are_usage_errors(
    tmp_path: Path, written_template: Path, arguments: list[str], culprit: str, run_in_process: Run
) -> None:
    """The first pair through `python -m flashast`, the others through `main` in process."""
    directory = written(tmp_path, written_template)
    before = snapshot(directory)
    run = run_cli if arguments == ["--check", "--prune"] else run_in_process
    code, stdout, stderr = run("-o", directory, *arguments, cwd=tmp_path)
    assert code == 2
    assert one_error_line(stderr).startswith(f"flashast: error: {culprit}:")
    assert stdout == ""
    assert snapshot(directory) == before


def test_list_refuses_an_output_path_that_cannot_be_a_directory(tmp_path: Path, run_in_process: Run) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    code, stdout, stderr = run_in_process("-o", blocker / "kernels", "--list")
    assert code == 2
    assert "is not a directory" in one_error_line(stderr)
    assert stdout == ""


def test_an_aggregator_without_its_members_is_a_selection_error_not_a_verification_failure(
    tmp_path: Path, run_in_process: Run
) -> None:
    directory = tmp_path / "out"
    code, _, stderr = run_in_process("-o", directory, "--preset", "flash-attn-3", "--only", "*hdimall*", "--only", "sm=90")
    assert code == 2
    line = one_error_line(stderr)
    assert "includes files the filters leave out" in line
    assert "--exclude aggregator=true" in line
    assert not directory.exists()


AGGREGATOR_PLUGIN = """
from flashast import Contract, FunctionTemplate, Include, Kind, Namespace, Preset, TranslationUnit
from flashast import TypeParameter, ValueParameter, MacroDefinition, PragmaOnce

TEMPLATE = FunctionTemplate((ValueParameter("int", "D"),), "void", "run", (), defined=True)
CONTRACT = Contract({{"launch.h": (PragmaOnce(), MacroDefinition("FLASH_NAMESPACE", "flash"),
                                   Namespace("flash", (TEMPLATE,)))}})


def build(config):
    namespace = {namespace}
    return TranslationUnit((Include("launch.h"), Namespace(namespace, (TEMPLATE.instantiate(config.head_dim),))))


def build_macro(config):
    return TranslationUnit((Include("launch.h"), Namespace("FLASH_NAMESPACE", (TEMPLATE.instantiate(64),))))


def register(registry):
    print("hello from the plugin")
    registry.add_preset(Preset("clash", kinds=(
        Kind("plain", axes={{"head_dim": (64, 128)}}, build=build, file_name="plain_{{head_dim}}.cu",
             contract=CONTRACT),
        Kind("macro", axes={{"variant": ("a",)}}, build=build_macro, file_name="macro_{{variant}}.cu",
             contract=CONTRACT),
    )))
"""


def test_a_definition_repeated_under_a_macro_namespace_is_a_duplicate(tmp_path: Path, run_in_process: Run) -> None:
    plugin = tmp_path / "clash.py"
    plugin.write_text(textwrap.dedent(AGGREGATOR_PLUGIN.format(namespace='"flash"')))
    code, _, stderr = run_in_process("-o", tmp_path / "out", "--plugin", plugin, "--preset", "clash")
    assert code == 3, stderr
    assert "macro_a.cu" in stderr and "plain_64.cu" in stderr
    assert "duplicate symbol at link time" in stderr
    assert not (tmp_path / "out").exists()


def test_what_plugins_print_never_reaches_the_listing(tmp_path: Path, run_in_process: Run) -> None:
    """In process, captured at the file descriptors: a print reaching the real stdout would show."""
    plugin = tmp_path / "clash.py"
    plugin.write_text(textwrap.dedent(AGGREGATOR_PLUGIN.format(namespace='"other"')))
    code, stdout, stderr = run_in_process("-o", tmp_path / "out", "--plugin", plugin, "--preset", "clash", "--list")
    assert code == 0, stderr
    assert stdout.splitlines() == [os.path.join(tmp_path / "out", name) for name in
                                   ("macro_a.cu", "plain_128.cu", "plain_64.cu")]
    assert "hello from the plugin" in stderr


def test_a_culprit_with_a_newline_stays_on_one_error_line(tmp_path: Path) -> None:
    code, _, stderr = run_cli("-o", tmp_path / "out", "--only", "head_dim=12\n8")
    assert code == 2
    line = one_error_line(stderr)
    assert "12\\n8" in line
    assert len([line for line in stderr.splitlines() if "flashast" in line]) == 1


def test_diff_prints_undecodable_bytes_as_they_are_in_any_locale(tmp_path: Path, written_template: Path) -> None:
    directory = written(tmp_path, written_template)
    target = directory / "flash_fwd_hdim128_fp16_sm80.cu"
    target.write_bytes(target.read_bytes() + b"// \xff\xfe odd bytes\n")
    for encoding in ("utf-8", "ascii"):
        completed = subprocess.run(
            cli_command("-o", directory, "--diff", "--no-verify"),
            env=cli_environment(extra={"PYTHONIOENCODING": encoding, "LC_ALL": "C"}),
            capture_output=True, timeout=120, check=False,
        )
        assert completed.returncode == 1, completed.stderr
        assert b"Traceback" not in completed.stderr
        assert b"-// \xff\xfe odd bytes\n" in completed.stdout


DEEPLY_NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("content", ["[]", "null", '"x"', DEEPLY_NESTED, '{"files": {"' + "a" * 300 + '.cu": {"sha256": "0"}}}'],
                         ids=["list", "null", "string", "deeply nested", "long name"])  # short ids: pytest puts them in the environment
@pytest.mark.parametrize("mode", [[], ["--check"], ["--prune"]])
def test_a_manifest_flashast_did_not_write_is_a_one_line_user_error(
    tmp_path: Path, written_template: Path, content: str, mode: list[str], run_in_process: Run
) -> None:
    """The deeply nested manifest (a recursion a fresh interpreter must survive) through `python -m
    flashast`, the other shapes through `main` in process."""
    directory = written(tmp_path, written_template)
    (directory / ".flashast.json").write_text(content)
    before = snapshot(directory)
    run = run_cli if content == DEEPLY_NESTED else run_in_process
    code, _, stderr = run("-o", directory, "--no-verify", *mode)
    assert code == 2, stderr
    assert one_error_line(stderr).startswith(f"flashast: error: {directory / '.flashast.json'}: not a flashast manifest (")
    assert snapshot(directory) == before


@pytest.mark.parametrize("where", [".flashast.json", "flash_fwd_hdim128_fp16_sm80.cu"])
def test_nothing_hangs_on_a_fifo_in_the_output_directory(tmp_path: Path, written_template: Path, where: str) -> None:
    directory = written(tmp_path, written_template)
    (directory / where).unlink()
    os.mkfifo(directory / where)
    for mode in ([], ["--check"]):
        code, _, stderr = run_cli("-o", directory, "--no-verify", *mode)  # run_cli's timeout catches a hang
        assert code == 2, stderr
        assert f"{directory / where}:" in one_error_line(stderr)


def test_a_users_edit_of_an_owned_file_is_never_lost_without_force(
    tmp_path: Path, written_template: Path, run_in_process: Run
) -> None:
    """The refusal through `python -m flashast`; `--check` and `--force` after it in process."""
    directory = written(tmp_path, written_template)
    target = directory / "flash_bwd_hdim64_bf16_sm80.cu"
    target.write_text(target.read_text() + "// my local tweak\n")
    before = snapshot(directory)
    code, _, stderr = run_cli("-o", directory, "--no-verify")
    assert code == 2
    assert f"{target}: edited since flashast wrote it" in one_error_line(stderr)
    assert snapshot(directory) == before
    code, _, stderr = run_in_process("-o", directory, "--no-verify", "--check")
    assert code == 1
    assert f"flashast: edited {target}" in stderr
    code, _, stderr = run_in_process("-o", directory, "--no-verify", "--force")
    assert code == 0, stderr
    assert "my local tweak" not in target.read_text()


def test_a_foreign_file_that_looks_generated_is_named_and_refused_under_strict(
    tmp_path: Path, written_template: Path, run_in_process: Run
) -> None:
    """The warnings in process; the refusal under `--strict` through `python -m flashast`."""
    directory = written(tmp_path, written_template)
    look_alike = directory / "flash_fwd_hdim128_bf16_sm100.cu"
    look_alike.write_text((directory / "flash_fwd_hdim128_bf16_sm80.cu").read_text())
    unrelated = directory / "notes.txt"
    unrelated.write_text("mine\n")
    for mode in ([], ["--check"]):
        code, _, stderr = run_in_process("-o", directory, *mode)
        assert code == 0, stderr
        warnings = [line for line in stderr.splitlines() if line.startswith("flashast: warning:")]
        assert len(warnings) == 1 and str(look_alike) in warnings[0]
    before = snapshot(directory)
    code, _, stderr = run_cli("-o", directory, "--strict")
    assert code == 2
    assert str(look_alike) in one_error_line(stderr)
    assert snapshot(directory) == before


def test_only_exact_temp_leftovers_are_removed(tmp_path: Path, written_template: Path, run_in_process: Run) -> None:
    directory = written(tmp_path, written_template)
    leftover = directory / ".flashast-tmp-4242-0123456789abcdef"
    leftover.write_text("half a fi")
    notes = directory / ".flashast-tmp-notes"
    notes.write_text("mine\n")
    (directory / "flash_fwd_hdim64_fp16_sm80.cu").unlink()
    code, _, stderr = run_in_process("-o", directory, "--no-verify")
    assert code == 0, stderr
    assert not leftover.exists()
    assert notes.read_text() == "mine\n"


EXITING_PLUGIN = """
import sys
from flashast import Kind, LineComment, TranslationUnit


def build(config):
    {build}
    return TranslationUnit((LineComment("x"),))


def register(registry):
    {register}
    registry.add_kind("pytorch", Kind("exiting", axes={{"head_dim": (64,)}}, build=build, file_name="exiting_{{head_dim}}.cu"))
"""


@pytest.mark.parametrize(("build", "register", "where"), [
    ("pass", "sys.exit(0)", "register() failed: SystemExit"),
    ("sys.exit(0)", "pass", "build failed for head_dim=64: SystemExit"),
    ("pass", "raise SystemExit('bye')", "register() failed: SystemExit: bye"),
    ("raise KeyboardInterrupt", "pass", "build failed for head_dim=64: KeyboardInterrupt"),
    ("pass", "raise KeyboardInterrupt('plugin code')", "register() failed: KeyboardInterrupt: plugin code"),
])
def test_a_plugin_cannot_take_over_the_exit_code(tmp_path: Path, build: str, register: str, where: str) -> None:
    plugin = tmp_path / "exiting.py"
    plugin.write_text(EXITING_PLUGIN.format(build=build, register=register))
    code, _, stderr = run_cli("-o", tmp_path / "out", "--plugin", plugin)
    assert code == 2, stderr
    line = one_error_line(stderr)
    assert where in line and "exiting" in line
    assert not (tmp_path / "out").exists()


CASE_PLUGIN = """
from flashast import Kind, LineComment, TranslationUnit


def register(registry):
    registry.add_kind("pytorch", Kind("upper", axes={"tag": ("A",)}, build=lambda config: TranslationUnit(()),
                                      file_name="Flash_fwd_hdim128_fp16_sm80.cu"))
"""


def test_two_generated_names_that_differ_only_in_case_are_refused(tmp_path: Path) -> None:
    plugin = tmp_path / "case.py"
    plugin.write_text(CASE_PLUGIN)
    code, _, stderr = run_cli("-o", tmp_path / "out", "--plugin", plugin, "--no-verify")
    assert code == 2, stderr
    assert "differs from flash_fwd_hdim128_fp16_sm80.cu only in case" in one_error_line(stderr)


@pytest.mark.parametrize(("construct", "problem"), [
    ("IntArg(10**5000)", "outside the range of a 32-bit int"),
    ("IntArg(2**31)", "outside the range of a 32-bit int"),
    ("LineComment('a\\x00b')", "NUL"),
    ("LineComment('what??/')", "trigraph"),
    ("FileName('a' * 253 + '.cu')", "longer than 255 bytes"),
])
def test_the_model_refuses_what_cpp_or_the_file_system_cannot_hold(construct: str, problem: str) -> None:
    import flashast
    from flashast.signatures import IntArg

    with pytest.raises(flashast.ModelError, match=problem):
        eval(construct, {**vars(flashast), "IntArg": IntArg})


@pytest.mark.parametrize("make", ["long component", "unsearchable parent"])
def test_a_file_system_error_on_the_output_path_is_one_line(tmp_path: Path, make: str, run_in_process: Run) -> None:
    """A run through `python -m flashast`; `--check` and `--list` in process."""
    if make == "long component":
        output = tmp_path / ("x" * 300) / "out"
    else:
        if os.geteuid() == 0:
            pytest.skip("root searches any directory; the long-component case covers the class")
        locked_parent = tmp_path / "locked"
        locked_parent.mkdir(mode=0o000)
        output = locked_parent / "out"
    for mode in ([], ["--check"], ["--list"]):
        code, _, stderr = (run_in_process if mode else run_cli)("-o", output, "--no-verify", *mode)
        assert code == 2, stderr
        assert one_error_line(stderr).startswith(f"flashast: error: {output}:")


def test_list_prints_an_undecodable_output_path_as_its_bytes(tmp_path: Path) -> None:
    output = os.fsencode(tmp_path) + b"/k\xffernels"
    completed = subprocess.run(
        [*cli_command("--list", "--only", "head_dim=64"), b"-o", output],
        env=cli_environment(extra={"PYTHONIOENCODING": "ascii", "LC_ALL": "C"}),
        capture_output=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[0].startswith(output + b"/flash_")


def test_the_verification_store_never_writes_through_a_symlink(
    tmp_path: Path, isolated_verification_cache: Path, run_in_process: Run
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    store = isolated_verification_cache / "verified-v2"
    store.mkdir(parents=True)
    (store / "index").symlink_to(victim)
    code, _, stderr = run_in_process("-o", tmp_path / "out")
    assert code == 0, stderr
    assert victim.read_text() == "mine\n"


def _limit_file_size() -> None:
    """In the child: writing past 4 KiB fails with EFBIG (SIGXFSZ ignored), as a full disk would fail it."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.parametrize("existing", [False, True])
def test_a_write_that_fails_midway_leaves_the_directory_as_it_was(tmp_path: Path, written_template: Path, existing: bool) -> None:
    directory = tmp_path / "out"
    if existing:
        directory = written(tmp_path, written_template)
        (directory / "flash_fwd_hdim64_fp16_sm80.cu").unlink()  # something to write, before the manifest
    before = snapshot(directory)
    completed = subprocess.run(
        cli_command("-o", directory, "--preset", "flash-attn-3", "--no-verify", "--force"),
        env=cli_environment(), capture_output=True, text=True, timeout=300, check=False,
        preexec_fn=_limit_file_size,
    )
    assert completed.returncode == 2, completed.stderr
    assert "cannot write" in one_error_line(completed.stderr)
    assert snapshot(directory) == before
    assert not any(path.name.startswith(".flashast-tmp-") for path in (directory.iterdir() if directory.is_dir() else ()))


def test_the_users_ctrl_c_inside_plugin_code_is_an_interrupt_not_a_plugin_error(tmp_path: Path) -> None:
    import signal
    import time

    plugin = tmp_path / "slow.py"
    plugin.write_text("import sys, time\n\n\ndef register(registry):\n    print('ready', file=sys.stderr, flush=True)\n"
                      "    time.sleep(60)\n")
    process = subprocess.Popen(cli_command("-o", tmp_path / "out", "--plugin", plugin), env=cli_environment(),
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    assert process.stderr.readline().strip() == "ready"
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 130, stderr
    assert "flashast: interrupted" in stderr and "PluginError" not in stderr and "plugin" not in stderr.lower()
    assert not (tmp_path / "out").exists()


SLOW_HEADER = """#pragma once
constexpr long spin(long n) { long sum = 0; for (long i = 0; i < n; ++i) { sum += i % 7; } return sum; }
template <int N> struct Kernel { static_assert(spin(N) >= 0, "spins"); };
"""
SLOW_FILES = 24


def test_ctrl_c_during_real_header_verification_ends_after_the_parses_in_flight(tmp_path: Path) -> None:
    """A real-header run is minutes of parses; Ctrl-C must not wait for every file left, only for
    the one parse each thread is in (a thread cannot be stopped inside libclang)."""
    import signal

    include = tmp_path / "include"
    include.mkdir()
    (include / "slow.h").write_text(SLOW_HEADER)
    plugin = tmp_path / "slow_kind.py"
    plugin.write_text(
        "from flashast import Include, Kind, TranslationUnit, Verbatim\n\n\n"
        "def build(config):\n"
        "    return TranslationUnit((Include('slow.h'), Verbatim(f'template struct Kernel<{200000 + config.index}>;')))\n\n\n"
        "def register(registry):\n"
        f"    registry.add_kind('pytorch', Kind('slow', axes={{'index': tuple(range({SLOW_FILES}))}}, build=build,"
        " file_name='slow_{index}.cu'))\n"
    )
    process = subprocess.Popen(
        cli_command("-o", tmp_path / "out", "--plugin", plugin, "--only", "kind=slow", "--include-dir", include,
                    "--timings", "--jobs", "2"),
        env=cli_environment(extra={"FLASHAST_CACHE_DIR": str(tmp_path / "cache")}), stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    before = []
    for line in process.stderr:
        before.append(line)
        if line.startswith("flashast: verified "):
            break
    process.send_signal(signal.SIGINT)
    stderr = "".join(before) + process.stderr.read()
    assert process.wait(timeout=120) == 130, stderr
    assert stderr.rstrip().endswith("flashast: interrupted"), "nothing is reported after the interrupt"
    verified = stderr.count("flashast: verified ")
    assert 1 <= verified <= 1 + 2 + 2, f"{verified} of {SLOW_FILES} files parsed after Ctrl-C:\n{stderr}"
    assert not (tmp_path / "out").exists()
