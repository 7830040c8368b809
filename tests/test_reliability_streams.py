"""The CLI contract where the world around the run fails or objects: standard output that cannot be
written, libclang refusing the command line, options that contradict, plugins raising what is not an
`Exception`, and signals. Every case is one real `python -m flashast` process: one line on stderr,
the documented exit code, no traceback, and nothing left behind (DIR, TMPDIR)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import cli_command, cli_environment, run_cli

from flashast.cli import main


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("flashast: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def run_main(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]) -> tuple[int, str, str]:
    """`flashast.cli.main(ARGS)` in this process, for refusals that come before any process-level
    effect (the exit code and the one line are the same; no interpreter start-up to pay)."""
    code = main([os.fspath(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory is `tmp_path`, and no installed plugin joins in (as `run_cli` runs)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")
    return tmp_path


def run_bytes(*args: str | bytes | os.PathLike[str], env: dict[str, str] | None = None,
              stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[bytes]:
    """`python -m flashast ARGS` with arguments in any bytes; stdout as given (a file, or closed)."""
    command: list[bytes] = [os.fsencode(sys.executable), b"-m", b"flashast", *(os.fsencode(arg) for arg in args)]
    return subprocess.run(command, env=cli_environment(extra=env), stdout=stdout, stderr=subprocess.PIPE,
                          timeout=300, check=False)


# --- standard output that cannot be written ---------------------------------------------------------

NINJA_LOG = "# ninja log v5\n0\t1000\t1733300000000001000\tCMakeFiles/k.dir/flash_fwd_hdim64_fp16_sm80.cu.o\tab12\n"


@pytest.fixture(scope="module")
def undecodable_output(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A pytorch run written into a directory whose name is not UTF-8, with a ninja log of one compile."""
    root = tmp_path_factory.mktemp("streams")
    directory = os.fsencode(root) + b"/k\xffernels"
    completed = run_bytes("-o", directory, "--no-verify", "-q", "--only", "head_dim=64")
    assert completed.returncode == 0, completed.stderr
    (root / ".ninja_log").write_text(NINJA_LOG)
    return directory


@pytest.mark.parametrize(("arguments", "stdout"), [
    (["--version"], "/dev/full"), (["--version"], "closed"), (["--cmake-dir"], "/dev/full"),
    (["--list-kinds"], "/dev/full"), (["--list", "--no-verify"], "/dev/full"), (["--list", "--no-verify"], "closed"),
    (["cost"], "/dev/full"),
])
def test_standard_output_that_cannot_be_written_is_one_line_exit_two(
    undecodable_output: bytes, arguments: list[str], stdout: str
) -> None:
    if arguments == ["cost"]:
        arguments = ["cost", os.fsdecode(os.path.dirname(undecodable_output) + b"/.ninja_log")]
    if "--list" in arguments or "cost" in arguments:
        arguments = [*arguments, "-o", os.fsdecode(undecodable_output)]
    if stdout == "closed":
        completed = subprocess.run(cli_command(*arguments), env=cli_environment(), stderr=subprocess.PIPE,
                                   timeout=300, check=False, preexec_fn=_close_standard_output)
        problem = "standard output: is closed, cannot write"
    else:
        with open(stdout, "wb") as full:
            completed = run_bytes(*arguments, stdout=full.fileno())
        problem = "standard output: cannot write (No space left on device)"
    stderr = completed.stderr.decode(errors="replace")
    assert completed.returncode == 2, stderr
    assert one_error_line(stderr) == f"flashast: error: {problem}"


def test_standard_error_that_cannot_be_written_keeps_the_exit_code(tmp_path: Path) -> None:
    """A user error with stderr on a full device is still exit 2 (it was 1, "differs" to `--check`)."""
    with open("/dev/full", "wb") as full:
        completed = subprocess.run(cli_command("-o", tmp_path / "out", "--check", "--only", "bad=1"),
                                   env=cli_environment(), stderr=full.fileno(), timeout=300, check=False)
    assert completed.returncode == 2


def _close_standard_output() -> None:
    """In the child: start with descriptor 1 closed, as `flashast ... >&-` does."""
    os.close(1)


def test_cost_prints_undecodable_paths_as_list_does_on_a_strict_utf8_stdout(undecodable_output: bytes) -> None:
    log = os.path.dirname(undecodable_output) + b"/.ninja_log"
    completed = run_bytes("cost", log, "-o", undecodable_output, env={"PYTHONIOENCODING": "utf-8:strict"})
    assert completed.returncode == 0, completed.stderr
    assert undecodable_output in completed.stdout.splitlines()[0]
    listed = run_bytes("--list", "-o", undecodable_output, "--only", "head_dim=64", "--no-verify",
                       env={"PYTHONIOENCODING": "utf-8:strict"})
    assert listed.stdout.startswith(undecodable_output + b"/")


# --- when libclang says no --------------------------------------------------------------------------

@pytest.mark.parametrize(("arguments", "culprit"), [
    (["--clang-arg=-std=c++99"], "--clang-arg=-std=c++99: libclang refuses the command line with it"),
    (["--clang-arg=-xnotalang"], "--clang-arg=-xnotalang: libclang refuses the command line with it"),
    (["--conformance", "--include-dir", ".", "--clang-arg=-std=c++99"],
     "--clang-arg=-std=c++99: libclang refuses the command line with it"),
    (["--clang-arg=-###"], "--clang-arg=-###: asks clang to print something and stop"),
    (["--clang-arg=--version"], "--clang-arg=--version: asks clang to print something and stop"),
    (["--include-dir", ".", "--device-arch", "sm_10"], "--device-arch sm_10: not a GPU architecture libclang knows"),
    (["--include-dir", ".", "--device-arch", "sm_80x"], "--device-arch sm_80x: not a GPU architecture libclang knows"),
    (["--include-dir", ".", "--device-arch", "sm_999"], "--device-arch sm_999: not a GPU architecture libclang knows"),
    (["--include-dir", ".", "--device-arch", "sm_90", "--strict"], "--device-arch sm_90: no selected file is for sm_90"),
])
def test_a_command_line_libclang_refuses_is_one_line_naming_the_option(
    in_tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], culprit: str
) -> None:
    tmp_path = in_tmp_path
    code, stdout, stderr = run_main(capsys, "-o", tmp_path / "out", "--only", "head_dim=64", *arguments)
    assert code == 2, stderr
    assert one_error_line(stderr).startswith(f"flashast: error: {culprit}")
    assert stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["--include-dir", "--define", "--clang-arg", "--dispatcher"])
def test_bytes_libclang_cannot_take_are_one_line(in_tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 where: str) -> None:
    """Python keeps undecodable command-line bytes as surrogates, which is what `main` gets here."""
    odd = os.fsdecode(os.fsencode(in_tmp_path) + b"/odd\xff")
    os.mkdir(odd)
    value = os.fsdecode(b"NAME=\xff") if where == "--define" else odd
    code, stdout, stderr = run_main(capsys, "-o", in_tmp_path / "out", "--only", "head_dim=64", "--include-dir",
                                    in_tmp_path, where, value)
    assert code == 2, stderr
    line = one_error_line(stderr)
    assert line.startswith(f"flashast: error: {where} ") and line.endswith(": not valid UTF-8, which is all libclang takes")
    assert stdout == ""
    assert not (in_tmp_path / "out").exists()


def test_a_tmpdir_libclang_cannot_take_is_one_line(tmp_path: Path) -> None:
    odd = os.fsencode(tmp_path) + b"/odd\xff"
    os.mkdir(odd)
    (tmp_path / "include").mkdir()
    completed = run_bytes("-o", tmp_path / "out", "--only", "head_dim=64", "--include-dir", tmp_path / "include",
                          env={"TMPDIR": os.fsdecode(odd)})
    stderr = completed.stderr.decode(errors="replace")
    assert completed.returncode == 2, stderr
    assert one_error_line(stderr).startswith("flashast: error: TMPDIR ") and "not valid UTF-8" in stderr
    assert not (tmp_path / "out").exists()
    assert os.listdir(odd) == []


ODD_HEADER_KIND = """
from flashast import Include, Kind, LineComment, TranslationUnit


def build(config):
    return TranslationUnit((Include("a.h"), LineComment(str(config.index))))


def register(registry):
    registry.add_kind("pytorch", Kind("odd", axes={"index": (1,)}, build=build, file_name="odd_{index}.cu"))
"""


def test_a_header_whose_name_is_not_utf8_is_read_and_named(in_tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """libclang's binding decoded file names as strict UTF-8 (exit 123 for any such header in a tree)."""
    include = in_tmp_path / "include"
    include.mkdir()
    (include / "a.h").write_bytes(b'#pragma once\n#include "b\xff.h"\n')
    with open(os.fsencode(include) + b"/b\xff.h", "wb") as odd:
        odd.write(b"#pragma once\n#warning from the odd header\n")
    (in_tmp_path / "odd.py").write_text(ODD_HEADER_KIND)
    code, _, stderr = run_main(capsys, "-o", in_tmp_path / "out", "--plugin", in_tmp_path / "odd.py",
                               "--only", "kind=odd", "--include-dir", include, "--strict", "--header-warnings")
    assert code == 3, stderr
    assert "from the odd header" in stderr and "b\\udcff.h:2:" in stderr
    assert "Traceback" not in stderr


INCLUDE_ONLY_KIND = """
from flashast import Include, Kind, LineComment, TranslationUnit


def build(config):
    return TranslationUnit((Include("empty.h"), LineComment(str(config.index))))


def register(registry):
    registry.add_kind("pytorch", Kind("tiny", axes={"index": (1,)}, build=build, file_name="tiny_{index}.cu",
                                      architectures=("sm_80",)))
"""


def test_an_architecture_no_selected_file_is_for_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "empty.h").write_text("#pragma once\n")
    (tmp_path / "tiny.py").write_text(INCLUDE_ONLY_KIND)
    code, _, stderr = run_cli("-o", tmp_path / "out", "--plugin", tmp_path / "tiny.py", "--only", "kind=tiny",
                              "--include-dir", tmp_path / "include", "--device-arch", "sm_90", "--check")
    assert code == 1, stderr
    warnings = [line for line in stderr.splitlines() if line.startswith("flashast: warning:")]
    assert warnings == ["flashast: warning: --device-arch sm_90: no selected file is for sm_90"
                        " (their kinds declare other architectures)"]


# --- options that contradict, user paths -------------------------------------------------------------

@pytest.mark.parametrize(("arguments", "culprit"), [
    (["--conformance", "--include-dir", ".", "--dispatcher", "dispatch.cu"], "--dispatcher: --conformance"),
    (["--conformance", "--include-dir", ".", "--device-arch", "sm_80"], "--device-arch: --conformance"),
    (["--no-verify", "--header-warnings"], "--header-warnings: configures verification, which --no-verify skips"),
    (["--no-verify", "--jobs", "2"], "--jobs: configures verification, which --no-verify skips"),
    (["--list", "--include-dir", "."], "--include-dir: configures verification; --list names files"),
    (["--list-kinds", "--only", "head_dim=64"], "--only: --list-kinds lists every preset and kind"),
    (["--include-dir", ".", "--dispatcher", "missing.cu"], "--dispatcher missing.cu: no such file"),
    (["--include-dir", ".", "--dispatcher", "folder"], "--dispatcher folder: is a directory"),
    (["--include-dir", ".", "--dispatcher", "fifo"], "--dispatcher fifo: not a regular file"),
    (["--dispatcher", "dispatch.cu"], "--dispatcher: the dispatcher is read against the real headers"),
])
def test_options_that_cannot_take_effect_are_refused_before_any_work(
    in_tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], culprit: str
) -> None:
    tmp_path = in_tmp_path
    (tmp_path / "dispatch.cu").write_text("int main() { return 0; }\n")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    output: list[str | os.PathLike[str]] = [] if "--list-kinds" in arguments else ["-o", tmp_path / "out"]
    code, stdout, stderr = run_main(capsys, *output, *arguments)
    assert code == 2, stderr
    assert one_error_line(stderr).startswith(f"flashast: error: {culprit}")
    assert stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.tools
@pytest.mark.parametrize("arguments", ['ONLY ""', "ONLY ${UNSET_FILTER}", 'EXCLUDE ""', 'ONLY head_dim=64 "" fwd'])
def test_cmake_refuses_an_empty_filter_at_configure_time(tmp_path: Path, arguments: str) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "CMakeLists.txt").write_text(textwrap.dedent(f"""\
        cmake_minimum_required(VERSION 3.20)
        project(empty LANGUAGES NONE)
        find_package(flashast CONFIG REQUIRED)
        flashast_generate(KERNELS OUTPUT_DIR kernels {arguments})
    """))
    cmake_dir = subprocess.run(cli_command("--cmake-dir"), capture_output=True, text=True, check=True).stdout.strip()
    completed = subprocess.run(["cmake", "-S", source, "-B", tmp_path / "build", f"-Dflashast_DIR={cmake_dir}"],
                               env=cli_environment(), capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode != 0
    assert "flashast: error: --" in completed.stderr and "'': empty value" in completed.stderr
    assert not (tmp_path / "build" / "kernels").exists()


# --- plugins cannot take over the process -----------------------------------------------------------

RAISING_PLUGIN = """
import asyncio
from flashast import Kind, LineComment, TranslationUnit


class Mine(BaseException):
    pass


def build(config):
    {build}
    return TranslationUnit((LineComment("x"),))


def constraint(config):
    print("said by the plugin")
    {constraint}
    return None


def register(registry):
    {register}
    registry.add_kind("pytorch", Kind("raising", axes={{"head_dim": (64,)}}, build={builder}, constraint=constraint,
                                      file_name="raising_{{head_dim}}.cu"))
"""


@pytest.mark.parametrize(("build", "constraint", "register", "builder", "said"), [
    ("pass", "pass", "raise asyncio.CancelledError('stop')", "build", "register() failed: CancelledError: stop"),
    ("raise GeneratorExit", "pass", "pass", "build", "kind raising: build failed for head_dim=64: GeneratorExit"),
    ("pass", "raise Mine('mine')", "pass", "build", "kind raising: constraint failed for head_dim=64: Mine: mine"),
    ("pass", "pass", "pass", "int", "kind raising: build failed for head_dim=64: TypeError"),
])
def test_a_plugin_raising_any_base_exception_is_one_line_naming_plugin_and_kind(
    in_tmp_path: Path, capsys: pytest.CaptureFixture[str], build: str, constraint: str, register: str, builder: str,
    said: str,
) -> None:
    tmp_path = in_tmp_path
    plugin = tmp_path / "raising.py"
    plugin.write_text(RAISING_PLUGIN.format(build=build, constraint=constraint, register=register, builder=builder))
    code, stdout, stderr = run_main(capsys, "-o", tmp_path / "out", "--plugin", plugin, "--check", "--no-verify")
    assert code == 2, stderr
    line = one_error_line(stderr)
    assert said in line and "raising.py" in line
    assert stdout == ""
    assert not (tmp_path / "out").exists()


def test_what_a_plugin_prints_during_list_kinds_goes_to_stderr(
    in_tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = in_tmp_path / "raising.py"
    plugin.write_text(RAISING_PLUGIN.format(build="pass", constraint="pass", register="pass", builder="build"))
    code, stdout, stderr = run_main(capsys, "--list-kinds", "--plugin", plugin)
    assert code == 0, stderr
    assert "said by the plugin" in stderr and "said by the plugin" not in stdout
    assert "raising" in stdout


# --- signals ----------------------------------------------------------------------------------------

SLOW_HEADER = """#pragma once
constexpr long spin(long n) { long sum = 0; for (long i = 0; i < n; ++i) { sum += i % 7; } return sum; }
template <int N> struct Kernel { static_assert(spin(N) >= 0, "spins"); };
"""
SLOW_KIND = """
from flashast import Include, Kind, TranslationUnit, Verbatim


def build(config):
    return TranslationUnit((Include('slow.h'), Verbatim(f'template struct Kernel<{200000 + config.index}>;')))


def register(registry):
    registry.add_kind('pytorch', Kind('slow', axes={'index': tuple(range(12))}, build=build,
                                      file_name='slow_{index}.cu'))
"""


@pytest.mark.parametrize(("sent", "code", "said"), [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated")])
def test_a_signal_during_real_header_verification_leaves_nothing_behind(
    tmp_path: Path, sent: signal.Signals, code: int, said: str
) -> None:
    """Scratch folders and libclang's preambles live in TMPDIR while the parses run; after the
    signal the run waits for the parses in flight, removes them, and says one line."""
    include = tmp_path / "include"
    include.mkdir()
    (include / "slow.h").write_text(SLOW_HEADER)
    (tmp_path / "slow_kind.py").write_text(SLOW_KIND)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # What runs killed outright left (SIGKILL cannot be cleaned up after): the next run removes the
    # folder of a process that is gone, and keeps that of one still running (this test's own).
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True).stdout.strip()
    host = socket.gethostname()
    (scratch / f"flashast-run-{host}-{ended}-killed").mkdir()
    (scratch / f"flashast-run-{host}-{ended}-killed" / "preamble-1.pch").write_bytes(b"big")
    running = scratch / f"flashast-run-{host}-{os.getpid()}-running"
    running.mkdir()
    process = subprocess.Popen(
        cli_command("-o", tmp_path / "out", "--plugin", tmp_path / "slow_kind.py", "--only", "kind=slow",
                    "--include-dir", include, "--timings", "--jobs", "2"),
        env=cli_environment(extra={"TMPDIR": str(scratch)}), stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    before = []
    for line in process.stderr:
        before.append(line)
        if line.startswith("flashast: verified "):
            break
    own = list(scratch.glob(f"flashast-run-{host}-{process.pid}-*"))
    assert len(own) == 1 and any(path.name.endswith(".pch") for path in own[0].rglob("*")), "parses use TMPDIR"
    assert not (scratch / f"flashast-run-{host}-{ended}-killed").exists()
    process.send_signal(sent)
    stderr = "".join(before) + process.stderr.read()
    assert process.wait(timeout=120) == code, stderr
    assert stderr.rstrip().splitlines()[-1] == f"flashast: {said}"
    assert "Traceback" not in stderr
    assert list(scratch.iterdir()) == [running]
    assert not (tmp_path / "out").exists()


STARTUP_HOOK = """
import sys
import time


class SlowPresets:
    \"\"\"Tells the test that flashast is importing its presets, then takes a while.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "flashast.registry":
            print("importing", file=sys.stderr, flush=True)
            time.sleep(30)
        return None


sys.meta_path.insert(0, SlowPresets())
"""


@pytest.mark.parametrize(("sent", "code", "said"), [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated")])
def test_a_signal_while_flashast_imports_is_one_line(tmp_path: Path, sent: signal.Signals, code: int,
                                                     said: str) -> None:
    """The first few hundred milliseconds are imports (the presets are built then), before main()."""
    (tmp_path / "sitecustomize.py").write_text(STARTUP_HOOK)
    process = subprocess.Popen(cli_command("-o", tmp_path / "out", "--no-verify"),
                               env=cli_environment(extra={"PYTHONPATH": str(tmp_path)}), stderr=subprocess.PIPE,
                               text=True)
    assert process.stderr is not None
    assert process.stderr.readline().strip() == "importing"
    process.send_signal(sent)
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == code, stderr
    assert stderr.strip() == f"flashast: {said}"
    assert not (tmp_path / "out").exists()
