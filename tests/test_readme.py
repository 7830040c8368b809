"""README.md's commands and code are real: every block is run here, or says why it is not.

The README marks each fenced block with an HTML comment on the line before it:
- `setup-command`: the install-and-run line; the install is what made this test environment, so the
  test runs the flashast command after it;
- `test-command`: the line `.ci/run` extracts and runs in CI (the test suite itself; this file only
  checks that CI reads it from here);
- `script` / `output`: the API example, run; what it prints must equal the block that follows;
- `not-run: REASON`: not a command (the synopsis), with the reason.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import run_cli

from flashast.cli import EXIT_DIFFERENCES, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, EXIT_VERIFICATION

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MARKED_BLOCK = re.compile(r"<!--\s*(.*?)\s*-->\n```(\w*)\n(.*?)```", re.S)
MARKERS = ("setup-command", "test-command", "script", "output", "not-run:")


def marked_blocks() -> list[tuple[str, str, str]]:
    """(marker, language, text) of every fenced block that has a marker right before it."""
    return [(marker, language, text) for marker, language, text in MARKED_BLOCK.findall(README)]


def block(marker: str) -> str:
    found = [text for found_marker, _, text in marked_blocks() if found_marker == marker]
    assert len(found) == 1, f"README.md has {len(found)} blocks marked {marker!r}"
    return found[0]


def test_every_block_is_run_or_says_why_not() -> None:
    fences = README.count("```") // 2
    blocks = marked_blocks()
    assert len(blocks) == fences, "a fenced block in README.md has no marker on the line before it"
    for marker, _, _ in blocks:
        assert marker.startswith(MARKERS), f"unknown marker {marker!r}"
        if marker.startswith("not-run:"):
            assert marker.removeprefix("not-run:").strip(), "not-run needs a reason"


def test_the_setup_command_writes_the_default_preset(tmp_path: Path) -> None:
    install, separator, command = block("setup-command").strip().partition(" && ")
    assert install == "python -m pip install ." and separator
    assert command.startswith("python -m flashast ")
    code, _, stderr = run_cli(*command.split()[3:], cwd=tmp_path)
    assert code == 0, stderr
    assert stderr == "flashast: 48 written, 0 unchanged, 0 stale (pytorch)\n"
    assert len(list((tmp_path / "kernels").glob("*.cu"))) == 48


def test_the_api_example_prints_the_cpp_the_readme_shows(tmp_path: Path) -> None:
    completed = subprocess.run([sys.executable, "-c", block("script")], capture_output=True, text=True,
                               cwd=tmp_path, check=True)
    assert completed.stdout == block("output") + "\n"  # print() adds a newline after render's final one


def test_ci_runs_the_readme_test_command() -> None:
    command = re.search(r"<!-- test-command -->\n```sh\n(.*)\n```", README)
    assert command is not None
    assert command.group(1) == block("test-command").strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and "README.md" in ci
    extracted = subprocess.run(
        ["awk", "/<!-- test-command -->/{getline; getline; print; exit}", "README.md"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == command.group(1)
    assert extracted.startswith("python -m pip install -e '.[test]'")
    for step in ("python -m mypy", "python -m ruff check .", "python -m pytest -q"):
        assert step in extracted


def test_the_exit_code_table_is_the_cli_s() -> None:
    rows = dict(re.findall(r"^\| (\d+) \| (.*) \|$", README, re.M))
    assert sorted(map(int, rows)) == sorted(
        [EXIT_OK, EXIT_DIFFERENCES, EXIT_USAGE, EXIT_VERIFICATION, EXIT_INTERNAL, 130, 143]
    )
    assert "interrupted" in rows["130"]
    assert "terminated" in rows["143"]


def test_nothing_about_removed_machinery() -> None:
    """Run records, the no-op stamp and the durability heuristics are gone; so is their prose."""
    text = README.lower()
    for gone in ("run record", "stamp", "syncfs", "fingerprint", "batched fsync", "thread"):
        assert gone not in text, gone
