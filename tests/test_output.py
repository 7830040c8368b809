"""The output directory through the real CLI: parity, write-only-what-changed, ownership, `--check`,
`--diff`, `--prune`, foreign files, filtered runs, SIGKILL in the middle of writing, concurrent runs.

Every test works on real files in a temporary directory and runs `python -m flashast` as a build
would; mtimes are compared as `st_mtime_ns`, so "nothing written" means not even a same-bytes rewrite.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    cli_command,
    cli_environment,
    digest_files,
    read_golden,
    run_cli,
    snapshot,
    write_extra_kind_plugin,
)

from flashast.output import MANIFEST_NAME, TEMP_PREFIX

GOLDEN = read_golden("pytorch")
SAMPLE = "flash_fwd_hdim128_bf16_sm80.cu"
OTHER = "flash_bwd_hdim64_fp16_sm80.cu"


def generate(directory: Path, *args: str) -> str:
    """A normal run that must succeed; returns its stderr."""
    code, stdout, stderr = run_cli("-o", directory, *args)
    assert code == 0, stderr
    assert stdout == ""
    return stderr


def manifest_of(directory: Path) -> dict[str, object]:
    return json.loads((directory / MANIFEST_NAME).read_text())


def temp_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith(TEMP_PREFIX))


def stderr_lines(stderr: str) -> list[str]:
    return stderr.splitlines()


@pytest.fixture
def output(tmp_path: Path) -> Path:
    """A directory a normal run has just written (48 files and the manifest)."""
    directory = tmp_path / "out"
    generate(directory)
    return directory


def test_parity_with_the_upstream_pytorch_generator(tmp_path: Path) -> None:
    """The CLI creates the directory (parents too) and writes exactly the 48 upstream files, byte for byte."""
    directory = tmp_path / "a" / "b" / "kernels"
    stderr = generate(directory)
    assert digest_files(directory) == GOLDEN
    assert sorted(path.name for path in directory.iterdir()) == sorted([*GOLDEN, MANIFEST_NAME])
    assert stderr_lines(stderr) == ["flashast: 48 written, 0 unchanged, 0 stale (pytorch)"]


def test_manifest_owns_every_file_with_its_sha256_kind_and_axes(output: Path) -> None:
    manifest = manifest_of(output)
    files = manifest["files"]
    assert isinstance(files, dict)
    assert {name: entry["sha256"] for name, entry in files.items()} == GOLDEN
    assert files[SAMPLE]["kind"] == "fwd"
    assert files[SAMPLE]["axes"] == {"dtype": "bf16", "head_dim": 128, "sm": 80}
    assert manifest["preset"] == "pytorch"
    lines = (output / MANIFEST_NAME).read_text().splitlines()
    file_lines = [line for line in lines if line.startswith('  "') and line.rstrip(",").endswith("}")]
    assert [json.loads("{" + line.rstrip(",") + "}") for line in file_lines] == [
        {name: files[name]} for name in sorted(files)
    ], "one line per owned file, in name order"
    top_level = [line.split('"')[1] for line in lines if line.startswith(' "')]
    assert top_level == sorted(manifest) == ["files", "flashast", "format", "preset", "stamp"], "sorted keys"


def test_a_no_op_rerun_writes_nothing(output: Path) -> None:
    """Files, the manifest and the directory entry itself keep their mtimes; no temp file is made."""
    before = snapshot(output)
    directory_mtime = output.stat().st_mtime_ns
    stderr = generate(output)
    assert snapshot(output) == before
    assert output.stat().st_mtime_ns == directory_mtime
    assert stderr_lines(stderr) == ["flashast: 0 written, 48 unchanged, 0 stale (pytorch)"]


def test_only_the_changed_file_is_rewritten(output: Path) -> None:
    (output / SAMPLE).write_text("// edited by hand\n")
    before = snapshot(output)
    stderr = generate(output)
    after = snapshot(output)
    assert digest_files(output) == GOLDEN
    assert {name for name in after if after[name] != before[name]} == {SAMPLE}
    assert stderr_lines(stderr) == ["flashast: 1 written, 47 unchanged, 0 stale (pytorch)"]


def test_check_is_quiet_and_zero_on_an_up_to_date_directory(output: Path) -> None:
    before = snapshot(output)
    code, stdout, stderr = run_cli("-o", output, "--check")
    assert (code, stdout) == (0, "")
    assert stderr_lines(stderr) == [f"flashast: {output} up to date (0 missing, 0 changed, 48 unchanged, 0 stale, pytorch)"]
    assert snapshot(output) == before


def test_check_lists_each_changed_missing_and_stale_file(tmp_path: Path) -> None:
    """An edit, a deletion and a stale owned file (made by a plugin kind, then run without it)."""
    plugin = write_extra_kind_plugin(tmp_path / "extra_kind.py")
    directory = tmp_path / "out"
    generate(directory, "--plugin", str(plugin))
    assert (directory / "extra_hdim128.cu").is_file()
    generate(directory)

    assert run_cli("-o", directory, "--check")[0] == 1, "a stale file alone makes the directory differ"
    (directory / SAMPLE).write_text("// edited by hand\n")
    (directory / OTHER).unlink()
    before = snapshot(directory)
    code, stdout, stderr = run_cli("-o", directory, "--check")
    assert (code, stdout) == (1, "")
    assert stderr_lines(stderr) == [
        f"flashast: missing {directory / OTHER}",
        f"flashast: changed {directory / SAMPLE}",
        f"flashast: stale {directory / 'extra_hdim128.cu'}",
        f"flashast: {directory} differs (1 missing, 1 changed, 46 unchanged, 1 stale, pytorch)",
    ]
    assert snapshot(directory) == before, "--check writes nothing"


@pytest.mark.parametrize("damage", ["edit", "delete", "stale"])
def test_check_exits_one_for_each_kind_of_difference(output: Path, damage: str) -> None:
    if damage == "edit":
        (output / SAMPLE).write_bytes((output / SAMPLE).read_bytes() + b"\n")
        expected = f"flashast: changed {output / SAMPLE}"
    elif damage == "delete":
        (output / SAMPLE).unlink()
        expected = f"flashast: missing {output / SAMPLE}"
    else:
        # The manifest owns a file the preset does not generate: what an older flashast run leaves.
        manifest = manifest_of(output)
        manifest["files"]["flash_fwd_hdim224_fp8_sm80.cu"] = {"sha256": hashlib.sha256(b"old\n").hexdigest()}
        (output / MANIFEST_NAME).write_text(json.dumps(manifest))
        (output / "flash_fwd_hdim224_fp8_sm80.cu").write_text("old\n")
        expected = f"flashast: stale {output / 'flash_fwd_hdim224_fp8_sm80.cu'}"
    code, stdout, stderr = run_cli("-o", output, "--check")
    assert (code, stdout) == (1, "")
    assert stderr_lines(stderr)[:-1] == [expected]


def test_check_ignores_foreign_files_that_are_not_generated(output: Path) -> None:
    (output / "notes.txt").write_text("mine\n")
    (output / "my_kernel.cu").write_text("// mine\n")
    assert run_cli("-o", output, "--check")[0] == 0


def test_check_of_a_missing_directory_reports_every_file_and_creates_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "absent"
    code, _, stderr = run_cli("-o", directory, "--check")
    assert code == 1
    assert len([line for line in stderr_lines(stderr) if line.startswith("flashast: missing ")]) == 48
    assert not directory.exists()


def test_diff_names_exactly_the_edited_file(output: Path) -> None:
    original = (output / SAMPLE).read_text()
    (output / SAMPLE).write_text(original.replace("cutlass::bfloat16_t", "cutlass::half_t"))
    before = snapshot(output)
    code, stdout, stderr = run_cli("-o", output, "--diff")
    assert code == 1
    headers = [line for line in stdout.splitlines() if line.startswith(("--- ", "+++ "))]
    assert headers == [f"--- a/{SAMPLE}", f"+++ b/{SAMPLE}"]
    assert "+    run_mha_fwd_hdim128<cutlass::bfloat16_t>(params, stream);" in stdout.splitlines()
    assert "-    run_mha_fwd_hdim128<cutlass::half_t>(params, stream);" in stdout.splitlines()
    assert stderr_lines(stderr)[0] == f"flashast: changed {output / SAMPLE}"
    assert snapshot(output) == before


def test_diff_of_an_up_to_date_directory_is_empty(output: Path) -> None:
    code, stdout, _ = run_cli("-o", output, "--diff")
    assert (code, stdout) == (0, "")


def test_stale_files_are_reported_and_kept_until_prune(tmp_path: Path) -> None:
    plugin = write_extra_kind_plugin(tmp_path / "extra_kind.py", head_dims="(64, 128)")
    directory = tmp_path / "out"
    generate(directory, "--plugin", str(plugin))
    stale = ["extra_hdim128.cu", "extra_hdim64.cu"]
    (directory / "notes.cu").write_text("// a file flashast never wrote\n")

    stderr = generate(directory)
    assert stderr_lines(stderr) == [
        *(f"flashast: stale {directory / name} (no longer generated; --prune deletes it)" for name in stale),
        "flashast: 0 written, 48 unchanged, 2 stale (pytorch)",
    ]
    assert all((directory / name).is_file() for name in stale)

    foreign = snapshot(directory)["notes.cu"]
    stderr = generate(directory, "--prune")
    assert stderr_lines(stderr) == ["flashast: 0 written, 48 unchanged, 0 stale, 2 pruned (pytorch)"]
    assert not any((directory / name).exists() for name in stale)
    assert snapshot(directory)["notes.cu"] == foreign, "a foreign file is never pruned"
    assert set(manifest_of(directory)["files"]) == set(GOLDEN)
    assert digest_files(directory) == {**GOLDEN, "notes.cu": hashlib.sha256(foreign[0]).hexdigest()}
    assert run_cli("-o", directory, "--check")[0] == 0


def test_prune_keeps_a_stale_file_edited_since_flashast_wrote_it_unless_forced(tmp_path: Path) -> None:
    plugin = write_extra_kind_plugin(tmp_path / "extra_kind.py")
    directory = tmp_path / "out"
    generate(directory, "--plugin", str(plugin))
    (directory / "extra_hdim128.cu").write_text("// someone's work now\n")

    stderr = generate(directory, "--prune")
    assert (directory / "extra_hdim128.cu").read_text() == "// someone's work now\n"
    assert f"flashast: stale {directory / 'extra_hdim128.cu'} (edited since flashast wrote it" in stderr
    assert stderr_lines(stderr)[-1] == "flashast: 0 written, 48 unchanged, 1 stale, 0 pruned (pytorch)"

    generate(directory, "--prune", "--force")
    assert not (directory / "extra_hdim128.cu").exists()
    assert set(manifest_of(directory)["files"]) == set(GOLDEN)


def test_a_stale_file_deleted_by_hand_is_dropped_from_the_manifest(tmp_path: Path) -> None:
    plugin = write_extra_kind_plugin(tmp_path / "extra_kind.py")
    directory = tmp_path / "out"
    generate(directory, "--plugin", str(plugin))
    (directory / "extra_hdim128.cu").unlink()
    stderr = generate(directory)
    assert stderr_lines(stderr) == ["flashast: 0 written, 48 unchanged, 0 stale (pytorch)"]
    assert set(manifest_of(directory)["files"]) == set(GOLDEN)


def test_a_foreign_file_in_the_way_is_refused_in_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    (directory / SAMPLE).write_text("// my own kernel\n")
    before = snapshot(tmp_path)
    code, stdout, stderr = run_cli("-o", directory, "--prune")
    assert (code, stdout) == (2, "")
    assert stderr_lines(stderr) == [
        f"flashast: error: {directory / SAMPLE}: exists, was not written by flashast and differs;"
        " move it away or pass --force"
    ]
    assert snapshot(tmp_path) == before
    assert sorted(path.name for path in directory.iterdir()) == [SAMPLE]


def test_force_overwrites_a_foreign_file_and_takes_ownership(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    (directory / SAMPLE).write_text("// my own kernel\n")
    (directory / OTHER).write_text("// mine too\n")
    stderr = generate(directory, "--force")
    assert digest_files(directory) == GOLDEN
    assert set(manifest_of(directory)["files"]) == set(GOLDEN)
    assert stderr_lines(stderr) == ["flashast: 48 written, 0 unchanged, 0 stale (pytorch)"]
    (directory / SAMPLE).write_text("// edited after\n")
    generate(directory)  # owned now, so an edit is simply repaired without --force
    assert digest_files(directory) == GOLDEN


def test_a_byte_identical_foreign_file_is_adopted_silently(tmp_path: Path) -> None:
    """How a tree made by the upstream generator moves to flashast: zero diff, zero rewrites."""
    reference = tmp_path / "reference"
    generate(reference)
    directory = tmp_path / "out"
    directory.mkdir()
    for name in (SAMPLE, OTHER):
        (directory / name).write_bytes((reference / name).read_bytes())
        os.utime(directory / name, ns=(1_000_000_000, 1_000_000_000))
    stderr = generate(directory)
    assert stderr_lines(stderr) == ["flashast: 46 written, 2 unchanged, 0 stale (pytorch)"]
    assert (directory / SAMPLE).stat().st_mtime_ns == 1_000_000_000
    assert (directory / OTHER).stat().st_mtime_ns == 1_000_000_000
    assert set(manifest_of(directory)["files"]) == set(GOLDEN)


def test_an_upstream_tree_is_adopted_whole_with_only_the_manifest_written(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    generate(reference)
    directory = tmp_path / "out"
    directory.mkdir()
    for name in GOLDEN:
        (directory / name).write_bytes((reference / name).read_bytes())
    before = snapshot(directory)
    assert run_cli("-o", directory, "--check")[0] == 0, "an adoptable tree is already up to date"
    stderr = generate(directory)
    after = snapshot(directory)
    assert stderr_lines(stderr) == ["flashast: 0 written, 48 unchanged, 0 stale (pytorch)"]
    assert set(after) - set(before) == {MANIFEST_NAME}
    assert all(after[name] == before[name] for name in before)


def test_a_filtered_run_leaves_filtered_out_files_alone_and_not_stale(output: Path) -> None:
    (output / OTHER).write_text("// edited, but not part of this run\n")
    before = snapshot(output)
    stderr = generate(output, "--only", "kind=fwd", "--only", "head_dim=128,256")
    assert stderr_lines(stderr) == ["flashast: 0 written, 4 unchanged, 0 stale (pytorch)"]
    after = snapshot(output)
    # Every generated file is untouched; the manifest's ownership entries are too, and only its
    # no-op stamp (see flashast.cache) now describes this run's inputs.
    assert {name: value for name, value in after.items() if name != MANIFEST_NAME} == {
        name: value for name, value in before.items() if name != MANIFEST_NAME
    }
    manifest_before = json.loads(before[MANIFEST_NAME][0])
    manifest_after = json.loads(after[MANIFEST_NAME][0])
    assert manifest_after.pop("stamp")["files"].keys() == {
        "flash_fwd_hdim128_bf16_sm80.cu", "flash_fwd_hdim128_fp16_sm80.cu",
        "flash_fwd_hdim256_bf16_sm80.cu", "flash_fwd_hdim256_fp16_sm80.cu",
    }
    manifest_before.pop("stamp", None)
    assert manifest_after == manifest_before
    assert snapshot(output) == after, "the same filtered run again touches nothing"
    generate(output, "--only", "kind=fwd", "--only", "head_dim=128,256")
    assert snapshot(output) == after
    assert run_cli("-o", output, "--check", "--only", "kind=bwd", "--exclude", "head_dim=64")[0] == 0
    code, _, stderr = run_cli("-o", output, "--check", "--only", "kind=bwd")
    assert code == 1
    assert stderr_lines(stderr)[:-1] == [f"flashast: changed {output / OTHER}"]


def test_a_filtered_run_into_an_empty_directory_then_a_full_run(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    stderr = generate(directory, "--only", "dtype=bf16", "--exclude", "flash_fwd_split_*")
    assert stderr_lines(stderr) == ["flashast: 16 written, 0 unchanged, 0 stale (pytorch)"]
    assert set(digest_files(directory)) == {
        name for name in GOLDEN if "_bf16_" in name and not name.startswith("flash_fwd_split_")
    }
    first = snapshot(directory)
    stderr = generate(directory)
    assert stderr_lines(stderr) == ["flashast: 32 written, 16 unchanged, 0 stale (pytorch)"]
    assert digest_files(directory) == GOLDEN
    after = snapshot(directory)
    assert all(after[name] == first[name] for name in first if name != MANIFEST_NAME)


def test_leftover_temp_files_of_a_killed_run_are_removed_by_the_next_run_that_writes(output: Path) -> None:
    leftover = output / f"{TEMP_PREFIX}killed"
    leftover.write_text("half a fi")
    (output / SAMPLE).unlink()
    generate(output)
    assert temp_files(output) == []
    assert digest_files(output) == GOLDEN


def edit_every_file(directory: Path, round_: int) -> dict[str, bytes]:
    """Hand-edit every generated file (a different edit each round); returns the edited bytes."""
    edited: dict[str, bytes] = {}
    for name in GOLDEN:
        data = (directory / name).read_bytes() if (directory / name).exists() else b""
        edited[name] = data.split(b"// hand edit")[0] + f"// hand edit {round_}\n".encode()
        (directory / name).write_bytes(edited[name])
    return edited


def timed_run(directory: Path, *arguments: str) -> float:
    """Seconds one run takes here (to aim the kills, never asserted on)."""
    started = time.monotonic()
    subprocess.run(cli_command("-o", directory, "-q", *arguments), env=cli_environment(), capture_output=True)
    return time.monotonic() - started


def test_sigkill_in_the_middle_of_writing_never_leaves_a_torn_file(tmp_path: Path) -> None:
    """30 runs, each killed after a random delay while it rewrites every file (and, every other run,
    the manifest): each file is always whole, old or new; the next normal run repairs the directory."""
    directory = tmp_path / "out"
    generate(directory)
    new = {name: (directory / name).read_bytes() for name in GOLDEN}
    manifests = {
        arguments: (generate(directory, *arguments), (directory / MANIFEST_NAME).read_bytes())[1]
        for arguments in ((), ("--no-verify",))
    }
    # Most kills aim between the end of planning (a --check run's length) and the end of a rewriting
    # run, where the writes are; the rest anywhere in the run.
    windows = {}
    for arguments in manifests:
        edit_every_file(directory, 0)
        planned = timed_run(directory, "--check", *arguments)
        written = timed_run(directory, *arguments)
        windows[arguments] = (0.8 * planned, 1.1 * max(written, planned))
    rng = random.Random(20240601)
    torn_runs = 0
    for round_ in range(1, 31):
        old = edit_every_file(directory, round_)
        old_manifest = (directory / MANIFEST_NAME).read_bytes()
        arguments = ("--no-verify",) if round_ % 2 else ()
        low, high = windows[arguments]
        delay = rng.uniform(low, high) if round_ % 3 else rng.uniform(0.0, high)
        process = subprocess.Popen(
            cli_command("-o", directory, "-q", *arguments),
            env=cli_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        rewritten = 0
        for name in GOLDEN:
            data = (directory / name).read_bytes()
            assert data in (old[name], new[name]), f"round {round_}: {name} is neither its old nor its new content"
            rewritten += data == new[name]
        assert (directory / MANIFEST_NAME).read_bytes() in (old_manifest, manifests[arguments])
        visible = {path.name for path in directory.iterdir() if not path.name.startswith(".")}
        assert visible == set(GOLDEN)
        torn_runs += 0 < rewritten < len(GOLDEN)
    generate(directory)
    assert digest_files(directory) == GOLDEN
    assert temp_files(directory) == []
    assert run_cli("-o", directory, "--check")[0] == 0
    print(f"{torn_runs} of 30 runs were killed between their first and last file")


def run_concurrently(directory: Path, *arguments: str, count: int = 2) -> list[tuple[int, str]]:
    processes = [
        subprocess.Popen(
            cli_command("-o", directory, *arguments),
            env=cli_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    results = []
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        results.append((process.returncode, stderr))
    return results


def assert_exact_parity(directory: Path) -> None:
    assert digest_files(directory) == GOLDEN
    assert sorted(path.name for path in directory.iterdir()) == sorted([*GOLDEN, MANIFEST_NAME])
    files = manifest_of(directory)["files"]
    assert {name: entry["sha256"] for name, entry in files.items()} == GOLDEN


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_runs_on_an_empty_directory(tmp_path: Path, round_: int) -> None:
    directory = tmp_path / "new" / "out"
    results = run_concurrently(directory)
    assert [code for code, _ in results] == [0, 0], results
    assert_exact_parity(directory)
    # One run wrote everything, the other (serialised by the lock) found it done.
    summaries = sorted(stderr.splitlines()[-1] for _, stderr in results)
    assert summaries == [
        "flashast: 0 written, 48 unchanged, 0 stale (pytorch)",
        "flashast: 48 written, 0 unchanged, 0 stale (pytorch)",
    ]


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_runs_on_a_stale_directory(tmp_path: Path, round_: int) -> None:
    plugin = write_extra_kind_plugin(tmp_path / "extra_kind.py", head_dims="(32, 64, 96)")
    directory = tmp_path / "out"
    generate(directory, "--plugin", str(plugin))
    edit_every_file(directory, 1)
    results = run_concurrently(directory, "--prune")
    assert [code for code, _ in results] == [0, 0], results
    assert_exact_parity(directory)


def test_a_verification_failure_writes_nothing_at_all(tmp_path: Path) -> None:
    """Exit 3 with the diagnostic, and the directory (an edited file, a stale one) exactly as it was."""
    plugin = write_extra_kind_plugin(tmp_path / "extra_kind.py")
    directory = tmp_path / "out"
    generate(directory, "--plugin", str(plugin))
    (directory / SAMPLE).write_text("// needs rewriting\n")
    broken = tmp_path / "broken_kind.py"
    broken.write_text(
        "from flashast import Kind, TranslationUnit, Verbatim\n"
        "\n"
        "\n"
        "def register(registry):\n"
        "    build = lambda config: TranslationUnit((Verbatim('int broken = ;'),))\n"
        "    registry.add_kind('pytorch', Kind('broken', {'head_dim': (64,)}, build, 'broken_hdim{head_dim}.cu'))\n"
    )
    before = snapshot(directory)  # (not tmp_path: importing the plugin may write its __pycache__ there)
    code, stdout, stderr = run_cli("-o", directory, "--plugin", str(broken), "--prune", "--force")
    assert (code, stdout) == (3, "")
    assert "broken_hdim64.cu:1:" in stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1].startswith("flashast: error: ")
    assert snapshot(directory) == before


def test_refused_listings_and_prunes_leave_the_directory_as_it_was(tmp_path: Path) -> None:
    """Refusals that only show late (a listing path that is not a file, a stale path that became a
    directory) still come before the first write."""
    plugin = write_extra_kind_plugin(tmp_path / "extra_kind.py")
    directory = tmp_path / "out"
    generate(directory, "--plugin", str(plugin))
    (directory / SAMPLE).write_text("// needs rewriting\n")
    (directory / "extra_hdim128.cu").unlink()
    (directory / "extra_hdim128.cu").mkdir()
    fifo = tmp_path / "listing.fifo"
    os.mkfifo(fifo)
    cases = {
        "stale path is a directory": (["--prune"], "extra_hdim128.cu: owned by flashast but now not a regular file"),
        "listing is a fifo": (["--manifest", str(fifo)], "is not a regular file"),
        "empty listing path": (["--manifest", ""], "--manifest '': needs a file name"),
    }
    for case, (arguments, message) in cases.items():
        before = snapshot(directory)
        code, stdout, stderr = run_cli("-o", directory, *arguments)
        assert (code, stdout) == (2, ""), case
        assert len(stderr.splitlines()) == 1 and message in stderr, (case, stderr)
        assert snapshot(directory) == before, case


# Durability: both ways of flushing before the renames ----------------------------------------------


@pytest.mark.parametrize("use_syncfs", [True, False], ids=["syncfs asked for", "one fsync per file"])
def test_the_flush_before_renaming_reports_a_failure_instead_of_renaming(tmp_path: Path, use_syncfs: bool) -> None:
    """A flush that fails (here: a descriptor already closed) raises, so no file is renamed over its
    old bytes on the strength of a flush that did not happen. With `syncfs` asked for, a descriptor
    whose file system cannot be read is not trusted with it, and the fsync fallback reports it."""
    from flashast.output import _make_durable

    descriptor = os.open(tmp_path / "x", os.O_WRONLY | os.O_CREAT, 0o666)
    os.write(descriptor, b"x")
    _make_durable([descriptor] * 20, 1, use_syncfs=use_syncfs)  # an open file flushes
    os.close(descriptor)
    with pytest.raises(OSError):
        _make_durable([descriptor] * 20, 1, use_syncfs=use_syncfs)


def test_syncfs_is_not_trusted_on_a_file_system_not_known_to_honour_it() -> None:
    from flashast.output import _syncfs

    descriptor = os.open("/proc", os.O_RDONLY)
    try:
        assert _syncfs(descriptor) is False
    finally:
        os.close(descriptor)


def test_syncfs_is_chosen_only_while_little_else_is_unwritten() -> None:
    from flashast.output import SYNCFS_BUDGET_PER_FILE, _little_else_unwritten

    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    unwritten = sum(int(fields[name].split()[0]) << 10 for name in ("Dirty", "Writeback"))
    # What is dirty may change between two reads, but not by a gibibyte in a moment.
    assert _little_else_unwritten(unwritten + (1 << 30), 0), "our own bytes count as ours"
    assert _little_else_unwritten(0, (unwritten + (1 << 30)) // SYNCFS_BUDGET_PER_FILE), "so does the budget"


def test_a_short_write_fails_the_run_instead_of_renaming_a_truncated_file(tmp_path: Path) -> None:
    """Past a file-size limit (or on a nearly full disk) `write` writes less than asked: the run must
    say so and leave the directory as it was, not rename the partial manifest into place."""
    import resource

    out = tmp_path / "out"
    assert run_cli("-o", out, "-q")[0] == 0
    (out / MANIFEST_NAME).unlink()  # the next run only has to write the manifest (it adopts the files)
    before = snapshot(out)

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    completed = subprocess.run(cli_command("-o", out), capture_output=True, text=True, env=cli_environment(),
                               preexec_fn=limit_file_size, check=False)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines()[-1].startswith(f"flashast: error: {out}/")
    assert "cannot write" in completed.stderr and "Traceback" not in completed.stderr
    assert snapshot(out) == before


def test_check_works_in_a_directory_that_can_be_searched_but_not_listed(tmp_path: Path) -> None:
    """Write and search permission without read (mode 0311): files are opened by name, as before a
    listing was used to spare a new directory its per-file opens. Root ignores the mode, so as root
    the CLI runs as nobody in a user namespace."""
    out = tmp_path / "out"
    assert run_cli("-o", out, "-q")[0] == 0
    tmp_path.chmod(0o755)
    command = cli_command("-o", out, "--check")
    if os.geteuid() == 0:
        if subprocess.run(["unshare", "-U", "true"], capture_output=True, check=False).returncode != 0:
            pytest.skip("running as root without user namespaces: the mode would not be enforced")
        command = ["unshare", "-U", *command]
    out.chmod(0o311)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=cli_environment(), check=False)
    finally:
        out.chmod(0o755)
    assert (completed.returncode, completed.stderr.splitlines()[-1]) == (0, f"flashast: {out} up to date (0 missing, 0 changed, 48 unchanged, 0 stale, pytorch)")


def test_a_file_whose_name_differs_only_in_case_is_another_file_here(tmp_path: Path) -> None:
    """On this case-sensitive file system `Flash_…` is not `flash_…`: it stays, untouched and not owned."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "Flash_fwd_hdim64_bf16_sm80.cu").write_text("// mine\n")
    assert run_cli("-o", out, "-q")[0] == 0
    assert (out / "Flash_fwd_hdim64_bf16_sm80.cu").read_text() == "// mine\n"
    assert (out / "flash_fwd_hdim64_bf16_sm80.cu").is_file()
    assert "Flash_fwd_hdim64_bf16_sm80.cu" not in json.loads((out / MANIFEST_NAME).read_text())["files"]
