"""A plugin written against flashast 0.1.0 keeps working until 0.3.0: it loads through the real CLI's
`--plugin`, each deprecated spelling is shown to its user once, naming what to write instead, and
it writes the same bytes as the same plugin written in 0.2.0's spellings (`new_style_kinds.py`)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import cli_command, cli_environment, run_cli, snapshot

import flashast
from flashast.compat import FlashastDeprecationWarning
from flashast.registry import Registry

HERE = Path(__file__).parent
OLD_STYLE = HERE / "old_style_kinds.py"
NEW_STYLE = HERE / "new_style_kinds.py"

# Each deprecated spelling the old plugin uses, with the line it is first used on (the warning
# names the plugin's line, not flashast's) and the replacement the warning names.
DEPRECATIONS = {
    "Style(final_newline=...)": ("STYLE = Style(", "write Style(insert_newline_at_eof=...)"),
    "Style(spaces_before_close_comment=...)": ("STYLE = Style(", "write Style(spaces_before_trailing_comments=...)"),
    "Preset(name, style, description) with positional arguments": (
        'registry.add_preset(Preset("old-fork"', "write Preset(name, style=..., description=...)"),
    "Preset.kind(name)": ('.kind("fwd")', "write Preset.kind_named(name)"),
    "Kind(name, axes, build, file_name, contract) with positional arguments": (
        'Kind("bwd"', "write Kind(name, axes=..., build=..., file_name=..., contract=...)"),
    "Configuration.get(axis) without a default": ('config.get("is_causal") is not None',
                                                  "write config.get(axis, None)"),
}


def line_of(text: str) -> int:
    return next(number for number, line in enumerate(OLD_STYLE.read_text().splitlines(), 1) if text in line)


def test_an_old_plugin_loads_through_the_cli_warns_once_per_spelling_and_writes_the_same_bytes(
    tmp_path: Path,
) -> None:
    """A subprocess, as users run it: Python hides a DeprecationWarning raised in plugin code, so
    that the CLI shows them is what is tested. `Configuration.get` runs once per configuration; its
    warning is shown once."""
    code, _, old_stderr = run_cli("-o", tmp_path / "old", "--preset", "old-fork", "--plugin", OLD_STYLE)
    assert code == 0, old_stderr
    warned = [line for line in old_stderr.splitlines() if line.startswith("flashast: warning: ")]
    assert len(warned) == len(DEPRECATIONS), old_stderr
    for old, (first_use, replacement) in DEPRECATIONS.items():
        expected = (f"flashast: warning: {OLD_STYLE}:{line_of(first_use)}: {old} is deprecated since flashast 0.2.0"
                    f" and stops working in 0.3.0; {replacement}")
        assert any(line.startswith(expected) for line in warned), (expected, warned)
    assert "flashast: 12 written, 0 unchanged, 0 stale (old-fork)" in old_stderr

    code, _, new_stderr = run_cli("-o", tmp_path / "new", "--preset", "old-fork", "--plugin", NEW_STYLE)
    assert code == 0, new_stderr
    assert "warning" not in new_stderr
    written = {name: content for name, (content, _) in snapshot(tmp_path / "new").items()}
    assert {name: content for name, (content, _) in snapshot(tmp_path / "old").items()} == written
    assert len(written) == 13  # the manifests too


def test_a_user_who_sets_warning_filters_keeps_them(tmp_path: Path) -> None:
    """`python -W error::DeprecationWarning` makes the first deprecated spelling fail the plugin (a
    user's way to find them all in CI); the CLI does not override the user's filters."""
    command = cli_command("--list-kinds", "--plugin", OLD_STYLE)
    strict = [sys.executable, "-W", "error::DeprecationWarning", *command[1:]]
    completed = subprocess.run(strict, env=cli_environment(), capture_output=True, text=True, check=False)
    assert completed.returncode == 2
    assert re.fullmatch(r"flashast: error: .*Style\(final_newline=\.\.\.\) is deprecated .*\n", completed.stderr)


def test_the_python_api_raises_deprecation_warnings_naming_the_replacement() -> None:
    """Outside the CLI they are ordinary `DeprecationWarning`s (pytest, `-W default` show them)."""
    registry = Registry()
    spec = importlib.util.spec_from_file_location("old_style_kinds_under_test", OLD_STYLE)
    assert spec is not None and spec.loader is not None
    plugin = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec.loader.exec_module(plugin)
        plugin.register(registry)
        files = registry.preset("old-fork").generate()
    assert len(files) == 12
    assert all(issubclass(record.category, DeprecationWarning) for record in caught)
    assert all(issubclass(record.category, FlashastDeprecationWarning) for record in caught)
    messages = {str(record.message).split(" is deprecated")[0] for record in caught}
    assert messages == set(DEPRECATIONS)
    assert {record.filename for record in caught} == {str(OLD_STYLE)}


def test_the_version_is_a_minor_bump_past_the_break() -> None:
    """0.1.0's API changed: while the major version is 0, that is a new minor version."""
    assert flashast.__version__.startswith("0.2.")
    changelog = (HERE.parent.parent / "CHANGELOG.md").read_text()
    assert f"## {flashast.__version__}" in changelog
    deprecated = changelog.split("### Deprecated", 1)[1].split("###", 1)[0]
    for spelling in ("Preset(name, style, description", "Preset.kind", "Configuration.get(axis)", "Kind(name, axes"):
        assert spelling in deprecated, spelling


@pytest.mark.parametrize("plugin", [OLD_STYLE, NEW_STYLE])
def test_the_plugins_are_what_they_say(plugin: Path) -> None:
    """The old plugin uses each deprecated spelling and the new one none (a guard against either
    drifting: the comparison above is only as good as the two files)."""
    text = plugin.read_text()
    old_spellings = ("final_newline=", "spaces_before_close_comment=", '.kind("fwd")', 'config.get("is_causal")',
                     'Preset("old-fork", STYLE,', 'Kind("bwd", backward_axes,')
    found = [spelling for spelling in old_spellings if spelling in text]
    assert found == (list(old_spellings) if plugin == OLD_STYLE else [])
