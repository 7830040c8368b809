"""`--dispatcher` through the CLI: a subset the dispatcher still calls into fails before anything is
written (exit 3, the missing specialization at the dispatcher's line, the file and filter that would
provide it); the full selection passes and says how many calls it checked."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_cli, snapshot
from test_dispatch import fa2_preset

from flashast.pipeline import Action, Options
from flashast.pipeline import run as run_pipeline
from flashast.registry import Registry
from flashast.verify import VerifyOptions

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dispatch"
TESTS = Path(__file__).resolve().parent

PLUGIN = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from test_dispatch import fa2_preset


def register(registry):
    registry.add_preset(fa2_preset())
"""


def run(tmp_path: Path, *arguments: str | Path) -> tuple[int, str]:
    plugin = tmp_path / "standin.py"
    plugin.write_text(PLUGIN)
    code, stdout, stderr = run_cli(
        "-o", tmp_path / "out", "--plugin", plugin, "--preset", "fa2-standin",
        "--include-dir", FIXTURES / "common", "--include-dir", FIXTURES / "fa2",
        "--dispatcher", FIXTURES / "fa2" / "api.cpp", *arguments,
    )
    assert stdout == ""
    return code, stderr


def test_the_full_selection_provides_every_call(tmp_path: Path) -> None:
    code, stderr = run(tmp_path)
    assert code == 0, stderr
    assert re.search(r"^flashast: dispatch: \d+ specialization\(s\) called, all provided", stderr, re.MULTILINE), stderr


def test_a_subset_that_leaves_calls_undefined_fails_before_writing(tmp_path: Path) -> None:
    code, stderr = run(tmp_path, "--only", "head_dim=128")
    assert code == 3, stderr
    assert "left out by --only head_dim=128" in stderr
    assert re.search(r"api\.cpp:\d+:\d+: error: ", stderr), stderr
    assert snapshot(tmp_path / "out") == {}


def test_the_dispatcher_needs_real_headers(tmp_path: Path) -> None:
    code, _, stderr = run_cli("-o", tmp_path / "out", "--dispatcher", FIXTURES / "fa2" / "api.cpp")
    assert code == 2
    assert "flashast: error: --dispatcher: the dispatcher is read against the real headers" in stderr


def test_the_dispatcher_is_remembered_in_the_one_verdict_store(tmp_path: Path, isolated_verification_cache: Path) -> None:
    """A run keeps what the dispatcher calls in the store that keeps the files' verdicts (under
    `verified-v2/`, beside nothing else in the cache), and the next run reads it from there."""
    registry = Registry()
    registry.add_preset(fa2_preset())
    options = Options(output=tmp_path / "out", preset="fa2-standin", action=Action.CHECK,
                      verification=VerifyOptions(include_dirs=(FIXTURES / "common", FIXTURES / "fa2")),
                      dispatchers=(FIXTURES / "fa2" / "api.cpp",))
    first = run_pipeline(registry, options).dispatch
    assert first is not None and not first.dispatchers[0].cached
    assert sorted(path.name for path in isolated_verification_cache.iterdir()) == ["verified-v2"]
    assert len(list((isolated_verification_cache / "verified-v2" / "payloads").iterdir())) == 1
    again = run_pipeline(registry, options).dispatch
    assert again is not None and again.dispatchers[0].cached
    assert again.dispatchers[0].references == first.dispatchers[0].references
