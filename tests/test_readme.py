"""README.md's code is real: the API example prints what the README says, the plugin example runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import run_cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_the_api_example_prints_the_cpp_the_readme_shows(tmp_path: Path) -> None:
    example = next(block for block in fenced_blocks("python") if "print(render(unit))" in block)
    shown = next(block for block in fenced_blocks("cpp") if "run_mha_fwd_hdim128" in block)
    completed = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert completed.stdout == shown + "\n"  # print() adds the newline render's final one precedes


def test_the_plugin_example_adds_its_kind_with_the_stated_skip(tmp_path: Path) -> None:
    plugin = next(block for block in fenced_blocks("python") if block.startswith("# my_kinds.py"))
    (tmp_path / "my_kinds.py").write_text(plugin)
    code, stdout, stderr = run_cli("-o", "out", "--plugin", "my_kinds.py", "--only", "kind=fwd_paged", "--list", cwd=tmp_path)
    assert code == 0, stderr
    assert sorted(stdout.split()) == sorted(
        f"out/flash_fwd_paged_hdim{head_dim}_{dtype}_sm80.cu"
        for dtype in ("fp16", "bf16")
        for head_dim in (64, 128, 256)
        if (dtype, head_dim) != ("bf16", 256)
    )
    code, _, stderr = run_cli("-o", "out", "--plugin", "my_kinds.py", cwd=tmp_path)
    assert code == 0, stderr
    assert "53 written" in stderr


def test_ci_runs_the_readme_test_command() -> None:
    command = re.search(r"<!-- test-command -->\n```sh\n(.*)\n```", README)
    assert command is not None
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci and "README.md" in ci
    assert command.group(1).startswith("python -m pip install") and "python -m pytest" in command.group(1)
