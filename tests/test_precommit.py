"""The `flashast-check` pre-commit hook (`.pre-commit-hooks.yaml`), run by the real pre-commit.

pre-commit installs a hook from a git repository at a revision, so the test commits this working tree
(the package, its pyproject and the hook file: uncommitted work included) into a temporary
repository, and points a project's `.pre-commit-config.yaml` at it, with the arguments a user gives:
which directory, which plugin. pre-commit then builds the hook's environment as it would from the
published repository (a virtualenv, `pip install` of flashast and libclang from the registries) and
runs `flashast --check` in the project: it passes on an up-to-date tree, and on a stale one fails
naming each file.

`pre-commit try-repo` is the command for trying a hook repository, but it runs hooks without `args`,
and `flashast --check` needs `-o DIR`: so the test writes the configuration `try-repo` would, with
the arguments. Marker `tools` (deselected by default, run by `.ci/run`): installing the hook's
environment takes tens of seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_environment, run_cli, write_extra_kind_plugin

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "flashast tests", "GIT_AUTHOR_EMAIL": "tests@flashast.invalid",
    "GIT_COMMITTER_NAME": "flashast tests", "GIT_COMMITTER_EMAIL": "tests@flashast.invalid",
}


def environment(tmp_path: Path) -> dict[str, str]:
    """The CLI tests' environment, with the test extra's tools first on PATH, pre-commit's store in
    `tmp_path` (a hook environment of this test's own), and a git identity for the commits."""
    env = cli_environment(extra={"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), **GIT_IDENTITY})
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env


def run(*command: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(part) for part in command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900, check=False)


def git(*arguments: str, cwd: Path, env: dict[str, str]) -> str:
    completed = run("git", *arguments, cwd=cwd, env=env)
    assert completed.returncode == 0, completed.stdout
    return completed.stdout.strip()


def commit_working_tree(destination: Path, env: dict[str, str]) -> str:
    """This checkout's package, pyproject, README and hook file, as they are now, committed in a new
    repository at `destination`; returns the commit."""
    destination.mkdir()
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(ROOT / name, destination / name)
    shutil.copytree(ROOT / "flashast", destination / "flashast", ignore=shutil.ignore_patterns("__pycache__"))
    git("init", "-q", cwd=destination, env=env)
    git("add", "-A", cwd=destination, env=env)
    git("commit", "-q", "-m", "flashast as tested", cwd=destination, env=env)
    return git("rev-parse", "HEAD", cwd=destination, env=env)


@pytest.mark.tools
def test_the_hook_passes_an_up_to_date_tree_and_names_each_file_of_a_stale_one(tmp_path: Path) -> None:
    pre_commit = shutil.which("pre-commit", path=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    if pre_commit is None:
        pytest.skip("pre-commit is not installed (pip install -e '.[test]')")
    env = environment(tmp_path)
    hooks = tmp_path / "flashast"
    revision = commit_working_tree(hooks, env)

    project = tmp_path / "project"
    project.mkdir()
    git("init", "-q", cwd=project, env=env)
    write_extra_kind_plugin(project / "extra.py", head_dims="(128,)")
    code, _, stderr = run_cli("-o", "kernels", "--plugin", "extra.py", "-q", cwd=project)
    assert code == 0, stderr
    (project / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        f"  - repo: {hooks}\n"
        f"    rev: {revision}\n"
        "    hooks:\n"
        "      - id: flashast-check\n"
        "        args: [-o, kernels, --plugin, extra.py]\n"
    )
    git("add", "-A", cwd=project, env=env)
    git("commit", "-q", "-m", "kernels", cwd=project, env=env)

    passed = run(pre_commit, "run", "--all-files", cwd=project, env=env)
    assert passed.returncode == 0, passed.stdout
    assert "flashast --check" in passed.stdout and "Passed" in passed.stdout

    # The generator changed, the tree did not: a new configuration's file is missing, and a file was
    # edited by hand. The hook fails and names both; it writes nothing.
    write_extra_kind_plugin(project / "extra.py", head_dims="(128, 256)")
    edited = project / "kernels" / "flash_fwd_hdim64_fp16_sm80.cu"
    edited.write_text(edited.read_text() + "// tweak\n")
    failed = run(pre_commit, "run", "--all-files", cwd=project, env=env)
    assert failed.returncode == 1, failed.stdout
    assert "Failed" in failed.stdout
    assert "flashast: missing kernels/extra_hdim256.cu" in failed.stdout
    assert "flashast: edited kernels/flash_fwd_hdim64_fp16_sm80.cu (since flashast wrote it)" in failed.stdout
    assert "flashast: kernels differs (1 missing, 1 changed, 48 unchanged, 0 stale, pytorch)" in failed.stdout
    assert not (project / "kernels" / "extra_hdim256.cu").exists()
