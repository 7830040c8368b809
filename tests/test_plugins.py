"""Plugin loading through the real CLI: `--plugin FILE.py|MODULE`, entry points, failures, `--list-kinds`.

Installed plugins are real distributions: a package and its `.dist-info` (METADATA, entry_points.txt)
written into a temporary directory put on `PYTHONPATH`, which is exactly what `importlib.metadata`
reads after `pip install --target`. Every failure must be one line on stderr naming the plugin, exit
code 2, with the output directory untouched.

Entry points, module plugins found on `PYTHONPATH` and the first case of each family of failing file
plugins run `python -m flashast`; the other variants of a family run `cli.main` in process
(`run_in_process`, which prints the same), loading the plugin file under its own module name.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli, snapshot, write_distribution

Run = Callable[..., tuple[int, str, str]]

KIND_PLUGIN = """\
from flashast import Kind, LineComment, TranslationUnit


def build(config):
    return TranslationUnit((LineComment("{kind} " + str(config.head_dim)),))


def register(registry):
    registry.add_kind({preset!r}, Kind({kind!r}, axes={{"head_dim": (64, 128)}}, build=build, file_name="{kind}_hdim{{head_dim}}.cu"))
"""


def write_plugin(path: Path, kind: str = "extra", preset: str = "pytorch") -> Path:
    """A plugin adding kind `kind` (two files, `KIND_hdim64.cu` and `KIND_hdim128.cu`) to `preset`."""
    path.write_text(KIND_PLUGIN.format(kind=kind, preset=preset))
    return path


def assert_one_line_error(code: int, stderr: str, expected: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0] == f"flashast: error: {expected}", lines[0]


# --plugin FILE.py ------------------------------------------------------------------------------------


def test_file_plugin_adds_a_kind_whose_files_are_verified_and_written(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "extra_kind.py")
    output = tmp_path / "out"
    code, _, stderr = run_cli("-o", output, "--plugin", plugin, "--only", "kind=extra")
    assert code == 0, stderr
    assert "verification skipped" not in stderr
    assert (output / "extra_hdim128.cu").read_text() == "// extra 128\n"
    assert sorted(path.name for path in output.glob("*.cu")) == ["extra_hdim128.cu", "extra_hdim64.cu"]


def test_plugins_load_in_order_and_module_plugins_are_named_as_modules(tmp_path: Path) -> None:
    first = write_plugin(tmp_path / "first.py", kind="first")
    write_plugin(tmp_path / "second_kinds.py", kind="second", preset="flash-attn-2")
    code, stdout, stderr = run_cli(
        "--list-kinds", "--plugin", first, "--plugin", "second_kinds", env={"PYTHONPATH": str(tmp_path)}
    )
    assert code == 0, stderr
    assert f"  first  (2 files, file {first}) " not in stdout  # no description: nothing after the origin
    assert f"  first  (2 files, file {first})" in stdout.splitlines()
    assert "  second  (2 files, module second_kinds)" in stdout.splitlines()
    assert "pytorch  (50 files, built-in) " in stdout
    assert "flash-attn-2  (98 files, built-in) " in stdout


FAILING_PLUGINS = {
    "import error": (
        "import flashast\nimport flashast_no_such_module\n",
        "failed to import: ModuleNotFoundError: No module named 'flashast_no_such_module' (at {name}:2)",
    ),
    "syntax error": (
        "def register(registry)\n    pass\n",
        "failed to import: SyntaxError: expected ':' ({name}, line 1)",
    ),
    "no register": ("REGISTER = None\n", "defines no register(registry) function"),
    "register raises": (
        "def register(registry):\n    raise RuntimeError('the fork is\\nnot configured')\n",
        "register() failed: RuntimeError: the fork is not configured (at {name}:2)",
    ),
    "register fails inside flashast": (
        "from flashast import Kind\n\ndef register(registry):\n    Kind('fwd', axes={'kind': (1,)}, build=print, file_name='x.cu')\n",
        "Kind.axes='kind': is reserved for flashast's own filters (at {name}:4)",
    ),
    "duplicate kind": (
        KIND_PLUGIN.format(kind="fwd", preset="pytorch"),
        "kind 'fwd' of preset 'pytorch' already exists (first registered: built-in) (at {name}:9)",
    ),
    "duplicate preset": (
        "from flashast import Preset\n\ndef register(registry):\n    registry.add_preset(Preset('flash-attn-3'))\n",
        "preset 'flash-attn-3' already exists (first registered: built-in); to add a revision of it, give the"
        " Preset a revision=... (at {name}:4)",
    ),
    "unknown preset": (
        KIND_PLUGIN.format(kind="extra", preset="pytorh"),
        "unknown preset 'pytorh' (known: flash-attn-2, flash-attn-3, llama.cpp, pytorch, pytorch-mem-eff) (at {name}:9)",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILING_PLUGINS))
def test_a_failing_file_plugin_is_one_line_naming_it_and_writes_nothing(tmp_path: Path, case: str, run_in_process: Run) -> None:
    source, problem = FAILING_PLUGINS[case]
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text(source)
    output = tmp_path / "out"
    output.mkdir()
    (output / "mine.cu").write_text("// not flashast's\n")
    before = snapshot(output)
    run = run_cli if case == "import error" else run_in_process
    code, stdout, stderr = run("-o", output, "--plugin", plugin)
    assert_one_line_error(code, stderr, f"plugin {plugin}: {problem.format(name=plugin.name)}")
    assert stdout == ""
    assert snapshot(output) == before


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("missing/plugin.py", "no such file"),
        ("examples/research_fork", "is a directory, not a Python file"),
        ("flashast_no_such_plugin", "failed to import: ModuleNotFoundError: No module named 'flashast_no_such_plugin'"),
    ],
)
def test_a_plugin_that_cannot_be_found_is_one_line(tmp_path: Path, spec: str, problem: str, run_in_process: Run) -> None:
    """The module name through `python -m flashast` (which searches the current directory); the paths
    in process."""
    (tmp_path / "examples" / "research_fork").mkdir(parents=True)
    run = run_in_process if "/" in spec else run_cli
    code, _, stderr = run("--list-kinds", "--plugin", spec, cwd=tmp_path)
    assert_one_line_error(code, stderr, f"plugin {spec}: {problem}")


def test_two_plugins_registering_one_name_name_the_first(tmp_path: Path, run_in_process: Run) -> None:
    first = write_plugin(tmp_path / "a.py")
    second = write_plugin(tmp_path / "b.py")
    code, _, stderr = run_in_process("--list-kinds", "--plugin", first, "--plugin", second)
    assert_one_line_error(
        code, stderr, f"plugin {second}: kind 'extra' of preset 'pytorch' already exists"
        f" (first registered: file {first}) (at b.py:9)"
    )


def test_a_kind_whose_builder_fails_names_the_kind_and_configuration(tmp_path: Path, run_in_process: Run) -> None:
    plugin = tmp_path / "arity.py"
    plugin.write_text(
        "from flashast import FunctionTemplate, Kind, TranslationUnit, TypeParameter\n"
        "\n"
        "RUN = FunctionTemplate((TypeParameter('T'),), 'void', 'run_')\n"
        "\n"
        "\n"
        "def register(registry):\n"
        "    build = lambda config: TranslationUnit((RUN.instantiate(config.head_dim),))\n"
        "    registry.add_kind('pytorch', Kind('arity', axes={'head_dim': (64,)}, build=build, file_name='a{head_dim}.cu'))\n"
    )
    code, _, stderr = run_in_process("-o", tmp_path / "out", "--plugin", plugin)
    assert_one_line_error(
        code, stderr,
        "Kind(arity).build='head_dim=64': FunctionTemplate(run_).template_arguments[T]=64: expects a type",
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("role", "code_line", "expected"),
    [
        ("build", "build=lambda config: {}[config.head_dim], file_name='b{head_dim}.cu'", "build failed for head_dim=64: KeyError: 64"),
        ("file_name", "build=lambda config: TranslationUnit(()), file_name=lambda config: 1 / 0", "file_name failed for head_dim=64: ZeroDivisionError: division by zero"),
        ("constraint", "build=lambda config: TranslationUnit(()), file_name='b.cu', constraint=lambda config: config.missing", "constraint failed for head_dim=64: AttributeError: configuration has no axis 'missing' (its axes: head_dim)"),
    ],
)
def test_an_ordinary_exception_in_a_plugin_kind_is_one_line_naming_kind_configuration_and_line(
    tmp_path: Path, role: str, code_line: str, expected: str, run_in_process: Run
) -> None:
    """A plugin's bug (not flashast's) is a user error: exit 2, one line naming the plugin that
    registered the kind, the kind, and the plugin's own line number (the build through `python -m
    flashast`, the other roles in process)."""
    plugin = tmp_path / "buggy.py"
    plugin.write_text(
        "from flashast import Kind, TranslationUnit\n"
        "\n"
        "\n"
        "def register(registry):\n"
        f"    registry.add_kind('pytorch', Kind('buggy', axes={{'head_dim': (64,)}}, {code_line}))\n"
    )
    code, _, stderr = (run_cli if role == "build" else run_in_process)("-o", tmp_path / "out", "--plugin", plugin)
    assert_one_line_error(code, stderr, f"plugin file {plugin}: kind buggy: {expected} (at buggy.py:5)")
    assert not (tmp_path / "out").exists()


# Entry points ----------------------------------------------------------------------------------------

DEMO_MODULE = KIND_PLUGIN.format(kind="demo", preset="pytorch")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory with one installed plugin distribution, `flashast-demo-plugin 1.2.3`."""
    directory = tmp_path / "site"
    directory.mkdir()
    write_distribution(directory, "flashast-demo-plugin", "1.2.3", {"demo": "demo_kinds:register"},
                       {"demo_kinds": DEMO_MODULE})
    return directory


def test_an_installed_plugin_is_discovered_through_its_entry_point(site: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run_cli("--list-kinds", discover_plugins=True, env={"PYTHONPATH": str(site)})
    assert code == 0, stderr
    assert "  demo  (2 files, distribution flashast-demo-plugin 1.2.3)" in stdout.splitlines()
    output = tmp_path / "out"
    code, _, stderr = run_cli("-o", output, "--only", "kind=demo", discover_plugins=True,
                              env={"PYTHONPATH": str(site)})
    assert code == 0, stderr
    assert (output / "demo_hdim64.cu").read_text() == "// demo 64\n"


def test_an_entry_point_may_name_the_module_instead_of_the_function(tmp_path: Path) -> None:
    write_distribution(tmp_path, "module-plugin", "0.3", {"whole": "whole_module"},
                       {"whole_module": KIND_PLUGIN.format(kind="whole", preset="flash-attn-3")})
    code, stdout, stderr = run_cli("--list-kinds", discover_plugins=True, env={"PYTHONPATH": str(tmp_path)})
    assert code == 0, stderr
    assert "  whole  (2 files, distribution module-plugin 0.3)" in stdout.splitlines()


@pytest.mark.parametrize(
    ("arguments", "env"),
    [(["--no-plugins"], {}), ([], {"FLASHAST_NO_PLUGINS": "1"}), ([], {"FLASHAST_NO_PLUGINS": "yes"})],
    ids=["--no-plugins", "FLASHAST_NO_PLUGINS=1", "FLASHAST_NO_PLUGINS=yes"],
)
def test_discovery_can_be_turned_off_and_explicit_plugins_still_load(
    site: Path, tmp_path: Path, arguments: list[str], env: dict[str, str]
) -> None:
    plugin = write_plugin(tmp_path / "named.py", kind="named")
    code, stdout, stderr = run_cli("--list-kinds", "--plugin", plugin, *arguments, discover_plugins=True,
                                   env={"PYTHONPATH": str(site), **env})
    assert code == 0, stderr
    assert "demo" not in stdout
    assert f"  named  (2 files, file {plugin})" in stdout.splitlines()


def test_discovery_stays_on_when_the_variable_says_0(site: Path) -> None:
    code, stdout, stderr = run_cli("--list-kinds", discover_plugins=True,
                                   env={"PYTHONPATH": str(site), "FLASHAST_NO_PLUGINS": "0"})
    assert code == 0, stderr
    assert "distribution flashast-demo-plugin 1.2.3" in stdout


def test_a_broken_installed_plugin_is_one_line_naming_its_distribution(site: Path, tmp_path: Path) -> None:
    write_distribution(site, "flashast-broken", "0.9", {"broken": "broken_kinds:register"},
                       {"broken_kinds": "import flashast_missing_dependency\n"})
    output = tmp_path / "out"
    code, _, stderr = run_cli("-o", output, discover_plugins=True, env={"PYTHONPATH": str(site)})
    assert_one_line_error(
        code, stderr, "plugin broken (flashast-broken 0.9): failed to import: ModuleNotFoundError:"
        " No module named 'flashast_missing_dependency' (at broken_kinds.py:1)",
    )
    assert not output.exists()
    # The way out for a user stuck with someone else's broken plugin:
    code, _, stderr = run_cli("-o", output, "--no-plugins", discover_plugins=True, env={"PYTHONPATH": str(site)})
    assert code == 0, stderr


def test_an_installed_plugin_clashing_with_a_file_plugin_names_the_distribution(site: Path, tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path / "again.py", kind="demo")
    code, _, stderr = run_cli("--list-kinds", "--plugin", plugin, discover_plugins=True,
                              env={"PYTHONPATH": str(site)})
    assert_one_line_error(
        code, stderr, f"plugin {plugin}: kind 'demo' of preset 'pytorch' already exists"
        " (first registered: distribution flashast-demo-plugin 1.2.3) (at again.py:9)",
    )


def test_importing_flashast_runs_no_plugin(tmp_path: Path) -> None:
    """Discovery happens when the CLI runs, not at `import flashast` (nor when a registry is used)."""
    write_distribution(tmp_path, "flashast-loud-plugin", "1.0", {"loud": "loud_kinds:register"},
                       {"loud_kinds": "print('plugin imported')\n" + KIND_PLUGIN.format(kind="loud", preset="pytorch")})
    probe = (
        "import flashast\n"
        "print([kind.name for kind in flashast.default_registry.preset('pytorch').kinds])\n"
        "print([kind.name for kind in flashast.Registry().preset('pytorch').kinds])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True, text=True, timeout=600, check=True,
    )
    assert completed.stdout.splitlines() == ["['fwd', 'bwd', 'fwd_split']"] * 2


# --list-kinds ----------------------------------------------------------------------------------------


def test_list_kinds_shows_origin_file_counts_skips_and_aggregators(tmp_path: Path) -> None:
    plugin = tmp_path / "fork.py"
    plugin.write_text(
        '"""A preset with a constraint and an aggregator, to read in --list-kinds."""\n'
        "from flashast import Include, Kind, LineComment, Preset, TranslationUnit\n"
        "\n"
        "\n"
        "def one(config):\n"
        "    return TranslationUnit((LineComment(config.describe()),))\n"
        "\n"
        "\n"
        "def small(config):\n"
        "    return 'head_dim 256 is too large' if config.head_dim == 256 else None\n"
        "\n"
        "\n"
        "FWD = Kind('fwd', axes={'head_dim': (64, 128, 256)}, build=one, file_name='fwd_{head_dim}.cu', constraint=small,\n"
        "           description='one per head_dim')\n"
        "ALL = Kind('fwd_all', axes={'group': ('all',)}, build=lambda config: TranslationUnit(\n"
        "    tuple(Include(FWD.name_for(head_dim=d)) for d in (64, 128, 256) if FWD.skip_reason(head_dim=d) is None)),\n"
        "    file_name='fwd_{group}.cu', aggregator=True, description='every fwd file')\n"
        "\n"
        "\n"
        "def register(registry):\n"
        "    registry.add_preset(Preset('fork', description='a fork', kinds=(FWD, ALL)))\n"
    )
    code, stdout, stderr = run_cli("--list-kinds", "--plugin", plugin)
    assert code == 0, stderr
    lines = stdout.splitlines()
    start = lines.index(f"fork  (3 files, file {plugin}) a fork")
    assert lines[start:start + 6] == [
        f"fork  (3 files, file {plugin}) a fork",
        f"  fwd  (2 files, 1 skipped, file {plugin}) one per head_dim",
        "    head_dim: 64, 128, 256",
        "    skipped 1: head_dim 256 is too large",
        f"  fwd_all  (1 files, aggregator, file {plugin}) every fwd file",
        "    group: all",
    ]
    assert lines[0] == "flash-attn-2  (96 files, built-in) flash-attention 2 (Dao-AILab/flash-attention csrc/flash_attn/src)"
    assert "  fwd  (300 files, 2580 skipped, built-in) " in stdout
    # Presets are listed by name, each followed by its other revisions, each followed by its kinds.
    presets = [line.split("  ")[0] for line in lines if not line.startswith(" ")]
    assert presets == ["flash-attn-2", "flash-attn-2@v2.8.3", "flash-attn-3", "fork", "llama.cpp", "pytorch",
                       "pytorch-mem-eff"]
    # The aggregator really includes the two member files and verifies.
    code, _, stderr = run_cli("-o", tmp_path / "out", "--preset", "fork", "--plugin", plugin)
    assert code == 0, stderr
    assert (tmp_path / "out" / "fwd_all.cu").read_text() == '#include "fwd_64.cu"\n#include "fwd_128.cu"\n'
