"""Every page under `docs/` is run as a reader would follow it, so the docs cannot drift from flashast.

A page's fenced blocks are carried out in order, in a fresh directory, each as the HTML comment on the
line before it says (blank lines may come between):

- `<!-- run -->` or `<!-- run: exit N -->` before an `sh` block: each line (a trailing `\\` joins the
  next) is run with bash, with this interpreter's `python` first on PATH, and must exit 0 (or N);
- `<!-- script -->` before a `python` block: run with this interpreter;
- `<!-- output -->`: what the last `run` or `script` printed (stdout and stderr together). Without a
  `...` line the output must equal the block; with one, the other lines must appear in this order;
- `<!-- write: PATH -->`, `<!-- append: PATH -->`, `<!-- edit: PATH -->` (a `diff` block of `-`/`+`
  lines): files the reader writes. A written file must be used by a later block;
- `<!-- expect: PATH -->`: a file the commands produced holds exactly the block;
- `<!-- excerpt: PATH -->`: the block is quoted from PATH in this repository;
- `<!-- cmake -->` before a `cmake` block: written as the body of a tiny project's CMakeLists.txt
  (`SCAFFOLD`), which later `run` blocks configure and build with the real cmake;
- `<!-- not-run: REASON -->`: left to a reader, for the reason given (the real FA2 tree, the
  network). Every block carries one of these markers; a block without one fails the page.

A `run` line whose program is not on PATH skips the page (cmake, ninja): the commands are real, and a
machine without them cannot check them; the pages that run cmake or pre-commit are `tools` tests.
Each page is its own test, run in its own directory with its own verification store. Beyond running them: every Python block a reader copies passes the project's
strict mypy, relative links resolve, and the reference pages name every CLI option, every public name
and every manifest key.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import cli_environment

import flashast
from flashast.cli import build_parser
from flashast.manifest import ENTRY_KEYS, MANIFEST_KEYS, PENDING_KEY
from flashast.presets import common

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
WALKTHROUGH = DOCS / "how-to" / "adding-a-kind.md"
# Written by another engineer; linked from here before it lands.
PAGES_LINKED_BEFORE_THEY_EXIST = {DOCS / "how-to" / "build-a-subset.md"}
# What the `cmake` block of a page is pasted into: a project with the target the snippet names. Only
# CXX is enabled, so the generated .cu files are sources CMake tracks but does not compile (compiling
# them needs the real flash-attention headers).
SCAFFOLD = """\
cmake_minimum_required(VERSION 3.19)
project(flash_kernels_doc LANGUAGES CXX)
add_library(flash_attn STATIC api.cpp)

{snippet}
"""
VERBS = {"run", "script", "output", "write", "append", "edit", "expect", "excerpt", "cmake", "not-run"}


@dataclass(frozen=True)
class Block:
    """One fenced block of a page and the `<!-- marker -->` that says what to do with it."""

    page: Path
    marker: str
    language: str
    text: str
    line: int

    @property
    def verb(self) -> str:
        return self.marker.partition(":")[0].strip()

    @property
    def argument(self) -> str:
        return self.marker.partition(":")[2].strip()

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


_MARKER = re.compile(r"\s*<!--\s*(.*?)\s*-->\s*\Z")
_FENCE = re.compile(r"(\s*)```(\w*)\s*\Z")


def blocks_of(page: Path) -> list[Block]:
    """Every fenced block in order, with the marker on the line before it (blank lines between are fine)."""
    blocks: list[Block] = []
    lines = page.read_text().splitlines()
    marker: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker_match = _MARKER.match(line)
        fence = _FENCE.match(line)
        if marker_match:
            marker = marker_match.group(1)
        elif fence:
            indent, language = fence.groups()
            start = index + 1
            index = start
            while lines[index].strip() != "```":
                index += 1
            body = [text[len(indent):] if text.startswith(indent) else text.lstrip() for text in lines[start:index]]
            where = f"{page.relative_to(ROOT)}:{start}"
            assert marker is not None, f"{where}: a code block with no marker is not tested"
            blocks.append(Block(page, marker, language, "\n".join(body), start))
            marker = None
        elif line.strip():
            marker = None
        index += 1
    return blocks


def contains_in_order(expected: list[str], actual: list[str]) -> bool:
    """Whether the expected lines (`...` lines skipped) occur in `actual` in this order."""
    remaining = iter(actual)
    return all(any(line == candidate for candidate in remaining) for line in expected if line != "...")


def apply_edit(path: Path, diff: str) -> None:
    lines = diff.splitlines()
    old = "\n".join(line[1:] for line in lines if line.startswith("-"))
    new = "\n".join(line[1:] for line in lines if line.startswith("+"))
    text = path.read_text()
    assert text.count(old) == 1, f"the edit's old text is not in {path.name} exactly once: {old!r}"
    path.write_text(text.replace(old, new))


def command_lines(text: str) -> list[str]:
    """The commands of an `sh` block: continuation lines joined, blank lines and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def environment(cache: Path) -> dict[str, str]:
    """The CLI tests' environment, with this interpreter's directory first on PATH (so `python` in a
    command is the interpreter with flashast installed) and the page's own verification store."""
    env = cli_environment(extra={"FLASHAST_CACHE_DIR": str(cache)})
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_line(command: str, workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    program = re.sub(r"^(\w+=\S*\s+)*", "", command).split()[0]
    for needed in (program, *(["ninja"] if "-G Ninja" in command else [])):
        if shutil.which(needed, path=env["PATH"]) is None:
            pytest.skip(f"{needed} is not on PATH: {command}")
    return subprocess.run(
        ["bash", "-c", command], cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=600, check=False,
    )


def execute(blocks: list[Block], workdir: Path) -> Iterator[Block]:
    """Carry out each block in `workdir`, yielding it once done; assertion failures name its line.
    The page's verification store is `workdir/.cache`: a page must not pass because another verified."""
    (workdir / "examples").symlink_to(ROOT / "examples")  # pages run from a checkout's point of view
    env = environment(workdir / ".cache")
    output: list[str] = []
    for block in blocks:
        verb, argument, where = block.verb, block.argument, block.where
        if verb == "write":
            (workdir / argument).parent.mkdir(parents=True, exist_ok=True)
            (workdir / argument).write_text(block.text + "\n")
        elif verb == "append":
            with (workdir / argument).open("a") as handle:
                handle.write("\n\n" + block.text + "\n")
        elif verb == "edit":
            apply_edit(workdir / argument, block.text)
        elif verb == "cmake":
            (workdir / "CMakeLists.txt").write_text(SCAFFOLD.format(snippet=block.text))
            (workdir / "api.cpp").write_text("int flash_attn_api() { return 0; }\n")
        elif verb == "run":
            expected_code = int(argument.removeprefix("exit")) if argument else 0
            output = []
            for command in command_lines(block.text):
                completed = run_line(command, workdir, env)
                output += completed.stdout.splitlines()
                assert completed.returncode == expected_code, (
                    f"{where}: {command}\nexit {completed.returncode}, expected {expected_code}\n{completed.stdout}"
                )
        elif verb == "script":
            completed = subprocess.run(
                [sys.executable, "-c", block.text], cwd=workdir, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, timeout=600, check=False,
            )
            assert completed.returncode == 0, f"{where}:\n{completed.stdout}"
            output = completed.stdout.splitlines()
        elif verb == "output":
            expected = block.text.splitlines()
            shown = "\n".join(output)
            if "..." in expected:
                assert contains_in_order(expected, output), f"{where}: got\n{shown}"
            else:
                assert expected == output, f"{where}: got\n{shown}"
        elif verb == "expect":
            assert (workdir / argument).read_text() == block.text + "\n", where
        elif verb == "excerpt":
            assert block.text in (ROOT / argument).read_text(), f"{where}: not in {argument}"
        elif verb == "not-run":
            pass
        else:
            raise AssertionError(f"{where}: unknown marker {block.marker!r}")
        yield block


# Every page, run --------------------------------------------------------------------------------------


@dataclass
class PageRun:
    """How far a page got: where it ran, the blocks carried out, what stopped it (an assertion, a skip)."""

    workdir: Path
    done: list[Block]
    error: BaseException | None


def run_page(page: Path, workdir: Path) -> PageRun:
    done: list[Block] = []
    try:
        for block in execute(blocks_of(page), workdir):
            done.append(block)
    except BaseException as error:  # re-raised by the page's own test, skips included
        return PageRun(workdir, done, error)
    return PageRun(workdir, done, None)


def type_check(workdir: Path) -> subprocess.CompletedProcess[str]:
    """mypy, with the project's strict settings, over every Python block a reader writes or runs:
    README.md's example, each page's scripts, and each file as the page leaves it (edits applied)."""
    sources: dict[str, str] = {}
    for page in PAGES:
        blocks = blocks_of(page)
        files = [block for block in blocks if block.verb in ("write", "append", "edit")
                 and block.argument.endswith(".py")]
        written = workdir / "files" / page.stem
        written.mkdir(parents=True)
        for _ in execute(files, written):
            pass
        for path in sorted(written.glob("*.py")):
            assert path.name not in sources, f"two pages write {path.name}: mypy would take them for one module"
            sources[path.name] = path.read_text()
        for block in blocks:
            if block.verb == "script":
                sources[f"{page.stem.replace('-', '_')}_{block.line}.py"] = block.text
    readme = re.search(r"<!-- script -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert readme is not None
    sources["readme_example.py"] = readme.group(1)
    checked = workdir / "checked"
    checked.mkdir()
    for name, text in sources.items():
        (checked / name).write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
         str(ROOT / ".mypy_cache"), *sorted(sources)],
        cwd=checked, env={**os.environ, "MYPYPATH": str(ROOT)}, capture_output=True, text=True, timeout=600,
        check=False,
    )


# Programs whose pages are checked in CI's tools step (`-m tools`), like the other tests that start
# them: real builds and installs take seconds each, out of the default suite's time.
TOOLS = {"cmake", "ninja", "pre-commit", "pip"}


def needs_tools(page: Path) -> bool:
    """Whether a page's commands run a real build or install tool (or configure a `cmake` block)."""
    for block in blocks_of(page):
        if block.verb == "cmake":
            return True
        if block.verb == "run":
            for command in command_lines(block.text):
                words = re.sub(r"^(\w+=\S*\s+)*", "", command).split()
                if words[0] in TOOLS or words[:3] == ["python", "-m", "pip"]:
                    return True
    return False


class DocRuns:
    """Each page's run, carried out the first time a test asks for it, in its own directory: a page
    is one test, so parallel workers share the pages out, and a deselected page (tools) is not run."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._factory = tmp_path_factory
        self._pages: dict[Path, PageRun] = {}
        self._typed: subprocess.CompletedProcess[str] | None = None

    def page(self, page: Path) -> PageRun:
        if page not in self._pages:
            self._pages[page] = run_page(page, self._factory.mktemp(page.stem))
        return self._pages[page]

    def typed(self) -> subprocess.CompletedProcess[str] | None:
        """The type check of the Python blocks (None when mypy is not installed)."""
        if self._typed is None and importlib.util.find_spec("mypy") is not None:
            self._typed = type_check(self._factory.mktemp("typed"))
        return self._typed


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> DocRuns:
    return DocRuns(tmp_path_factory)


@pytest.mark.parametrize(
    "page",
    [pytest.param(page, marks=[pytest.mark.tools] if needs_tools(page) else []) for page in PAGES],
    ids=[page.relative_to(DOCS).as_posix() for page in PAGES],
)
def test_page_runs_as_written(page: Path, runs: DocRuns) -> None:
    error = runs.page(page).error
    if error is not None:
        raise error


def test_every_block_is_run_or_says_why_not() -> None:
    """The rule the pages follow: commands and code are run; what is not run carries its reason."""
    for page in PAGES:
        blocks = blocks_of(page)
        for index, block in enumerate(blocks):
            assert block.verb in VERBS, f"{block.where}: unknown marker {block.marker!r}"
            if block.verb == "not-run":
                assert block.argument, f"{block.where}: not-run needs a reason"
            elif block.language == "sh":
                assert block.verb == "run", f"{block.where}: an sh block is run, or marked not-run with a reason"
            elif block.language == "python":
                assert block.verb in ("script", "write", "append"), f"{block.where}: a python block is run"
            if block.verb in ("write", "append"):
                name = Path(block.argument).stem
                later = " ".join(other.text for other in blocks[index + 1:] if other.verb in ("run", "script"))
                # CMake reads CMakeLists.txt from the source directory it is given, unnamed; a source
                # it lists (a written `api.cpp`) is used through it.
                built = " ".join(other.text for other in blocks if other.argument == "CMakeLists.txt")
                used = name in later or ("cmake -S" in later and (name == "CMakeLists" or block.argument in built))
                assert used, f"{block.where}: {block.argument} is written but no later block uses it"
            if block.verb == "output":
                before = [other.verb for other in blocks[:index] if other.verb in ("run", "script", "not-run")]
                assert before and before[-1] != "not-run", f"{block.where}: output of a block that is not run"


def test_markdown_links_resolve() -> None:
    """Relative links in README.md and docs/ name files that exist (anchors aside)."""
    for page in [ROOT / "README.md", *PAGES]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.exists() or path in PAGES_LINKED_BEFORE_THEY_EXIST, f"{page.relative_to(ROOT)}: {target}"


# Reference pages are complete -------------------------------------------------------------------------


def test_cli_reference_names_every_option() -> None:
    text = (DOCS / "reference" / "cli.md").read_text()
    for action in build_parser()._actions:
        for option in action.option_strings:
            assert f"`{option}" in text, f"docs/reference/cli.md does not document {option}"
    for code in ("0", "1", "2", "3", "123", "130", "143"):
        assert f"| {code} |" in text


def test_python_api_reference_names_every_public_name() -> None:
    text = (DOCS / "reference" / "python-api.md").read_text()
    helpers = [name for name in vars(common) if not name.startswith("_") and name.isidentifier()
               and getattr(getattr(common, name), "__module__", common.__name__) == common.__name__
               and name not in {"annotations", "MemberValues"}]
    for name in [*flashast.__all__, *helpers]:
        assert f"`{name}" in text, f"docs/reference/python-api.md does not name {name}"


def test_manifest_reference_names_every_key() -> None:
    text = (DOCS / "reference" / "manifest.md").read_text()
    for key in (*MANIFEST_KEYS, *ENTRY_KEYS, PENDING_KEY, "name", "path"):
        assert f"`{key}`" in text, f"docs/reference/manifest.md does not name the key {key}"


# The walkthrough ---------------------------------------------------------------------------------------


def test_walkthrough_takes_the_reader_through_failing_and_fixing(runs: DocRuns) -> None:
    walkthrough = runs.page(WALKTHROUGH)
    assert walkthrough.error is None, "see test_page_runs_as_written[how-to/adding-a-kind.md]"
    verbs = [block.verb for block in walkthrough.done]
    assert verbs.count("run") >= 5 and "expect" in verbs and "edit" in verbs and "script" in verbs
    assert any(block.marker == "run: exit 3" for block in walkthrough.done)
    assert len(list((walkthrough.workdir / "kernels").glob("*.cu"))) == 10


def test_walkthrough_plugin_is_ruff_clean(tmp_path: Path) -> None:
    """The file a reader ends up with follows the project's lint rules, like the examples."""
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    for _ in execute([block for block in blocks_of(WALKTHROUGH) if block.verb in ("write", "append", "edit")], tmp_path):
        pass
    completed = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), "my_kinds.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_python_blocks_type_check(runs: DocRuns) -> None:
    """The code readers copy passes the project's strict mypy, as the package does."""
    typed = runs.typed()
    if typed is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    assert typed.returncode == 0, typed.stdout + typed.stderr
