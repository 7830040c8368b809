"""What a new user meets in the first hour: `--help` that answers the questions a script asks (exit
codes, presets, `-o`), `--check` on a directory that is not there, `--plugin my_kinds` from the
console script, a hint for a plugin's preset named without its plugin, `--list-kinds` that says what
the axes and skips are, and verification reports that say each problem once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_environment, run_cli

from flashast.cli import main

PLUGIN = (
    "from flashast import Kind, LineComment, Preset, TranslationUnit\n"
    "\n"
    "\n"
    "def register(registry):\n"
    "    kind = Kind('one', axes={'head_dim': (64, 128)}, file_name='one_{head_dim}.cu',\n"
    "                build=lambda config: TranslationUnit((LineComment('one'),)))\n"
    "    registry.add_preset(Preset('mine', description='a plugin preset', kinds=(kind,)))\n"
)


@pytest.fixture(autouse=True)
def no_installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHAST_NO_PLUGINS", "1")


def test_help_names_every_exit_code_the_presets_and_that_output_is_required(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    codes = {line.split()[0]: line for line in out.split("exit codes:")[1].splitlines() if line.startswith("  ")}
    assert codes["130"].split() == ["130", "interrupted", "(Ctrl-C)"]
    assert codes["143"].split() == ["143", "terminated", "(SIGTERM)"]
    assert "--conformance" in out.split("  3 ")[1] and "--dispatcher" in out.split("  3 ")[1]
    unwrapped = "".join(out.split())  # argparse wraps help lines where it likes, even inside a name
    presets = unwrapped.split("presettogenerate:")[1].split(",oroneapluginregisters")[0].split(",")
    assert {"pytorch", "flash-attn-2", "flash-attn-3", "llama.cpp"} <= set(presets)
    assert "required,exceptwith--list-kinds,--conformance,--versionand--cmake-dir" in unwrapped


@pytest.mark.parametrize("mode", ["--check", "--diff"])
def test_check_of_a_directory_that_does_not_exist_is_one_line_and_exit_1(
    mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "kernels"
    assert main(["-o", str(missing), mode, "--no-verify", "-q"]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"flashast: {missing} does not exist; a run would write 48 files into it (pytorch)\n"
    assert (captured.out.count("+++ b/") == 48) == (mode == "--diff")
    assert not missing.exists()


def test_a_plugin_module_in_the_current_directory_loads_from_the_console_script(tmp_path: Path) -> None:
    (tmp_path / "my_kinds.py").write_text(PLUGIN)
    console_script = Path(sys.executable).parent / "flashast"
    assert console_script.is_file(), "the package is installed (the README's test command installs it)"
    arguments = ["--plugin", "my_kinds", "--list-kinds"]
    script = subprocess.run([str(console_script), *arguments], cwd=tmp_path, env=cli_environment(),
                            capture_output=True, text=True, timeout=600, check=False)
    assert (script.returncode, script.stderr) == (0, ""), script.stderr
    assert "mine  (2 files, module my_kinds) a plugin preset" in script.stdout
    assert run_cli(*arguments, cwd=tmp_path) == (0, script.stdout, "")


def test_a_plugin_preset_named_without_its_plugin_gets_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-o", str(tmp_path / "out"), "--preset", "mine"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("flashast: error: unknown preset 'mine' (known: flash-attn-2, flash-attn-3, ")
    assert "--plugin MODULE" in line
    (tmp_path / "my_kinds.py").write_text(PLUGIN)
    assert main(["-o", str(tmp_path / "out"), "--preset", "mine", "--plugin", str(tmp_path / "my_kinds.py")]) == 0


def test_list_kinds_shows_axes_values_and_why_configurations_are_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-kinds"]) == 0
    lines = capsys.readouterr().out.splitlines()
    fwd = lines.index(next(line for line in lines if line.startswith("  fwd  (300 files, 2580 skipped")))
    details = lines[fwd + 1 : fwd + 15]
    assert "    dtype: fp16, bf16, e4m3" in details
    assert "    sm: 80, 90" in details
    assert "    skipped 480: e4m3 has no sm80 kernels" in details
    skipped = [line for line in details if line.startswith("    skipped ")]
    assert len(skipped) == 6, "five reasons by count, then the rest counted"
    assert sum(int(line.split()[1].rstrip(":")) for line in skipped) == 2580


REPEATING = (
    "from flashast import Kind, Preset, TranslationUnit\n"
    "from flashast.nodes import Verbatim\n"
    "\n"
    "# One static_assert that ten instantiations fail alike, and more errors than clang's limit.\n"
    "ASSERT = 'template <class T, int N> struct S { static_assert(sizeof(T) == 3, \"three bytes\"); };\\n'\n"
    "TEXTS = {'assert': ASSERT + ''.join(f'template struct S<int, {n}>;\\n' for n in range(10)),\n"
    "         'many': ''.join(f'int x{n} = undeclared{n};\\n' for n in range(30))}\n"
    "\n"
    "\n"
    "def register(registry):\n"
    "    kind = Kind('k', axes={'which': tuple(TEXTS)}, file_name='{which}.cu',\n"
    "                build=lambda config: TranslationUnit((Verbatim(TEXTS[config.which]),)))\n"
    "    registry.add_preset(Preset('repeating', description='errors', kinds=(kind,)))\n"
)


def test_a_diagnostic_repeated_at_one_place_is_shown_once_and_the_error_limit_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = tmp_path / "repeating.py"
    plugin.write_text(REPEATING)
    assert main(["-o", str(tmp_path / "out"), "--plugin", str(plugin), "--preset", "repeating"]) == 3
    err = capsys.readouterr().err
    assert err.count("static assertion failed") == 1, err
    assert "(reported 10 times here, each time for another instantiation; the first one's notes are shown)" in err
    assert "clang: error: too many errors emitted, stopping now\n    (reached verifying many.cu;" in err
    summary = err.splitlines()[-1]
    assert summary.startswith("flashast: error: verification failed: 20 error(s) in 2 of 2 file(s), clang stopped")
    assert "problem(s) in headers" not in summary
    assert not (tmp_path / "out").exists()
