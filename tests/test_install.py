"""Every way docs/how-to/install.md installs flashast, run as written against a clone of this checkout.

flashast is installed from its git repository at a commit, never from a package index (it is not on
one). The test commits this working tree into a temporary repository (as `tests/test_precommit.py`
does) and runs the page's blocks with that repository's `file://` URL and its commit in place of the
example URL and sha: `git ls-remote` prints the commit, pip installs the direct reference into a fresh
virtual environment (the installed distribution records that commit), setuptools builds a project
whose `[build-system] requires` is the page's block (pip's isolated build environment gets flashast
from the repository, and `setup.py` runs it through the helper of docs/how-to/setuptools.md), and
pre-commit installs the hook from the configuration of docs/how-to/pre-commit.md, `rev:` set by
`pre-commit autoupdate --freeze` as the page says. Marker `tools`: pip and pre-commit build
environments from the registries, tens of seconds each.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import run_cli
from test_docs import Block, blocks_of, command_lines
from test_precommit import commit_working_tree, environment, git, run

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "docs" / "how-to" / "install.md"
EXAMPLE_URL = "https://git.example.com/you/flashast.git"
EXAMPLE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
BIN = Path(sys.executable).parent


def page_blocks(page: Path, language: str) -> list[Block]:
    """The page's blocks in `language` that name the example repository (each marked not-run, for
    this test to run)."""
    found = [block for block in blocks_of(page) if block.language == language and EXAMPLE_URL in block.text]
    assert found and all(block.verb == "not-run" and "tests/test_install.py" in block.argument for block in found)
    return found


def as_this_checkout(text: str, url: str, commit: str | None) -> str:
    text = text.replace(EXAMPLE_URL, url)
    return text.replace(EXAMPLE_COMMIT, commit) if commit is not None else text


@pytest.fixture
def repository(tmp_path: Path) -> tuple[str, str, dict[str, str]]:
    """This checkout committed in a repository of its own: its `file://` URL, the commit, the environment.
    The URL names the host (`localhost`, which git accepts): pip before 23.3 refuses `git+file:///`."""
    env = environment(tmp_path)
    commit = commit_working_tree(tmp_path / "flashast-repository", env)
    return f"file://localhost{tmp_path / 'flashast-repository'}", commit, env


@pytest.mark.tools
def test_pip_installs_the_direct_reference_to_a_commit_as_the_page_writes_it(
    tmp_path: Path, repository: tuple[str, str, dict[str, str]]
) -> None:
    url, commit, env = repository
    venv = tmp_path / "venv"
    created = run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stdout
    # `python` in the page's commands is the fresh environment's: nothing of this checkout's install.
    env = {**env, "VIRTUAL_ENV": str(venv), "PATH": os.pathsep.join([str(venv / "bin"), env["PATH"]])}
    env.pop("PYTHONPATH", None)
    printed = []
    for block in page_blocks(INSTALL, "sh"):
        for command in command_lines(as_this_checkout(block.text, url, commit)):
            completed = run("bash", "-c", command, cwd=tmp_path, env=env)
            assert completed.returncode == 0, f"{block.where}: {command}\n{completed.stdout}"
            printed.append(completed.stdout)
    assert printed[0].split() == [commit, "HEAD"], "git ls-remote prints the commit to pin"
    python = venv / "bin" / "python"
    where = run(python, "-c", "import flashast, importlib.metadata as m;"
                "print(flashast.__file__); print(m.distribution('flashast').read_text('direct_url.json'))",
                cwd=tmp_path, env=env)
    assert where.returncode == 0, where.stdout
    module, direct_url = where.stdout.split("\n", 1)
    assert Path(module).is_relative_to(venv)
    recorded = json.loads(direct_url)
    assert (recorded["url"], recorded["vcs_info"]["vcs"], recorded["vcs_info"]["commit_id"]) == (url, "git", commit)
    # The installed console script writes and verifies (libclang came with it from the index).
    project = tmp_path / "project"
    project.mkdir()
    wrote = run(venv / "bin" / "flashast", "-o", "kernels", "-q", cwd=project, env=env)
    assert wrote.returncode == 0, wrote.stdout
    assert len(list((project / "kernels").glob("*.cu"))) == 48


SETUP_PY = '''\
"""A project whose build runs flashast: the list of kernel sources becomes a module of its wheel."""

from pathlib import Path

from setuptools import setup

from flash_kernels import flash_kernel_sources

Path("kernel_sources.py").write_text(f"SOURCES = {flash_kernel_sources()!r}\\n")
setup(name="my-flash-kernels", version="0.0.0", py_modules=["kernel_sources"])
'''


@pytest.mark.tools
def test_a_setup_py_build_gets_flashast_from_its_build_requirements_as_the_page_writes_them(
    tmp_path: Path, repository: tuple[str, str, dict[str, str]]
) -> None:
    url, commit, env = repository
    (toml,) = page_blocks(INSTALL, "toml")
    (helper,) = [block for block in blocks_of(ROOT / "docs" / "how-to" / "setuptools.md")
                 if block.marker == "write: flash_kernels.py"]
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(as_this_checkout(toml.text, url, commit) + "\n")
    (project / "flash_kernels.py").write_text(helper.text + "\n")
    (project / "setup.py").write_text(SETUP_PY)
    env = {key: value for key, value in env.items() if key != "PYTHONPATH"}
    # Build isolation on, as pip does by default: flashast exists in the build only through `requires`.
    built = run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", "dist", cwd=project, env=env)
    assert built.returncode == 0, built.stdout
    (wheel,) = (project / "dist").glob("my_flash_kernels-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        listed = archive.read("kernel_sources.py").decode()
    sources: list[str] = eval(listed.removeprefix("SOURCES = "))  # written by setup.py above
    assert sources and all(source.startswith("csrc/flash_attn/src/instantiations/") for source in sources)
    assert all((project / source).is_file() for source in sources), "flashast wrote them during the build"


@pytest.mark.tools
def test_pre_commit_installs_the_hook_at_the_commit_autoupdate_pins(
    tmp_path: Path, repository: tuple[str, str, dict[str, str]]
) -> None:
    pre_commit = shutil.which("pre-commit", path=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    if pre_commit is None:
        pytest.skip("pre-commit is not installed (pip install -e '.[test]')")
    url, commit, env = repository
    (configuration,) = page_blocks(ROOT / "docs" / "how-to" / "pre-commit.md", "yaml")
    project = tmp_path / "project"
    project.mkdir()
    git("init", "-q", cwd=project, env=env)
    # The tree the page's arguments name, written by this checkout's flashast.
    code, _, stderr = run_cli("-o", "csrc/flash_attn/src/instantiations", "--preset", "flash-attn-2", "-q",
                              cwd=project)
    assert code == 0, stderr
    config = project / ".pre-commit-config.yaml"
    config.write_text(as_this_checkout(configuration.text, url, None) + "\n")
    # `autoupdate --freeze`, as the page says, replaces the example sha with the repository's commit.
    updated = run(pre_commit, "autoupdate", "--freeze", cwd=project, env=env)
    assert updated.returncode == 0, updated.stdout
    assert f"rev: {commit}" in config.read_text() and EXAMPLE_COMMIT not in config.read_text()
    git("add", "-A", cwd=project, env=env)
    git("commit", "-q", "-m", "kernels", cwd=project, env=env)

    passed = run(pre_commit, "run", "--all-files", cwd=project, env=env)
    assert passed.returncode == 0, passed.stdout
    assert "flashast --check" in passed.stdout and "Passed" in passed.stdout
    edited = project / "csrc" / "flash_attn" / "src" / "instantiations" / "flash_fwd_hdim128_bf16_sm80.cu"
    edited.write_text(edited.read_text() + "// tweak\n")
    failed = run(pre_commit, "run", "--all-files", cwd=project, env=env)
    assert failed.returncode == 1, failed.stdout
    assert f"flashast: edited {edited.relative_to(project)} (since flashast wrote it)" in failed.stdout
