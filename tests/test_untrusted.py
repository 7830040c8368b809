"""Files someone else made are read as untrusted (`flashast.untrusted`): a user's ninja log, a store entry.

`python -m flashast cost LOG` runs as a real subprocess against real FIFOs and devices (a FIFO must not
be waited on, `/dev/zero` not read until memory runs out): exit 2 and one line naming the file, or
the log's line, never a hang, a traceback or exit 123. A damaged dispatcher store entry (a FIFO,
nesting 100,000 deep, a line number `1e999`) is a miss: the dispatcher is read again, in a subprocess
so that a hang fails the test instead of stalling the suite. Reading a dispatcher is linear in its
`sizeof`/`decltype` uses and `if constexpr` branches: the Python calls it makes, counted, grow with the
file, not with its square.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import cli_environment, run_cli
from hypothesis import given
from hypothesis import strategies as st

from flashast.untrusted import UntrustedFileError, ascii_natural, load_json, read_regular_file
from flashast.verify import VerdictStore, VerifyOptions
from flashast.verify.dispatch import requirements
from flashast.verify.dispatch.indexer import required
from flashast.verify.dispatch.spans import Spans

FA2 = Path(__file__).parent / "fixtures" / "dispatch" / "fa2"
COMMON = FA2.parent / "common"
OBJECT = "CMakeFiles/kernels.dir/kernels/flash_fwd_hdim128_bf16_sm80.cu.o"
LINE_FORMAT = "not a ninja log v5 entry (start, end, mtime, output and hash, separated by tabs)"


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DIR as the default preset writes it, so a log that parses reaches the report."""
    root = tmp_path_factory.mktemp("untrusted")
    code, _, stderr = run_cli("-o", root / "kernels", "--no-verify", "-q")
    assert code == 0, stderr
    return root / "kernels"


def cost(log: Path | str, kernels: Path) -> tuple[int, str, str]:
    """`python -m flashast cost LOG -o DIR` as a user runs it; a hang is a failure (the timeout)."""
    completed = subprocess.run([sys.executable, "-m", "flashast", "cost", os.fspath(log), "-o", os.fspath(kernels)],
                               env=cli_environment(), capture_output=True, text=True, timeout=120, check=False,
                               stdin=subprocess.DEVNULL)
    return completed.returncode, completed.stdout, completed.stderr


def assert_one_line_exit_2(result: tuple[int, str, str], message: str) -> None:
    code, stdout, stderr = result
    assert (code, stdout) == (2, ""), stderr
    assert stderr == f"flashast: error: {message}\n"


def test_a_fifo_as_the_log_is_refused_without_waiting_for_a_writer(kernels: Path, tmp_path: Path) -> None:
    fifo = tmp_path / ".ninja_log"
    os.mkfifo(fifo)
    assert_one_line_exit_2(cost(fifo, kernels),
                           f"{fifo}: is a FIFO, not a regular file; give the .ninja_log file in the build directory")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_as_the_log_is_refused_without_reading_it(kernels: Path) -> None:
    assert_one_line_exit_2(
        cost("/dev/zero", kernels),
        "/dev/zero: is a character device, not a regular file; give the .ninja_log file in the build directory")


def test_a_directory_as_the_log_is_refused(kernels: Path, tmp_path: Path) -> None:
    assert_one_line_exit_2(
        cost(tmp_path, kernels),
        f"{tmp_path}: is a directory, not a regular file; give the .ninja_log file in the build directory")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # A version of 5,000 digits: `int()` refuses it (ValueError, exit 123 before).
        ("# ninja log v" + "7" * 5000 + "\n", ": not a ninja log (its first line is not '# ninja log vN')"),
        # `\d` and `int()` take any script's digits: `v٧` is not v7.
        ("# ninja log v\u0667\n", ": not a ninja log (its first line is not '# ninja log vN')"),
        # Times of 5,000 digits, and an end time of 10**400 (a float overflow in the report before).
        (f"# ninja log v5\n0\t{'9' * 5000}\t0\t{OBJECT}\tff\n", f":2: {LINE_FORMAT}"),
        (f"# ninja log v5\n{'1' * 5000}\t{'2' * 5000}\t0\t{OBJECT}\tff\n", f":2: {LINE_FORMAT}"),
        (f"# ninja log v5\n0\t1{'0' * 400}\t0\t{OBJECT}\tff\n", f":2: {LINE_FORMAT}"),
        (f"# ninja log v5\n0\t1e400\t0\t{OBJECT}\tff\n", f":2: {LINE_FORMAT}"),
        # Digits of other scripts, an mtime or a hash longer than ninja's 64 bits.
        (f"# ninja log v5\n0\t1\u0667\t0\t{OBJECT}\tff\n", f":2: {LINE_FORMAT}"),
        (f"# ninja log v5\n0\t10\t{'1' * 30}\t{OBJECT}\tff\n", f":2: {LINE_FORMAT}"),
        (f"# ninja log v5\n0\t10\t0\t{OBJECT}\t{'f' * 17}\n", f":2: {LINE_FORMAT}"),
        # A malformed line after good ones is named by its number.
        (f"# ninja log v5\n0\t10\t0\t{OBJECT}\tff\n\n0\t10\t0\t{OBJECT}\n", f":4: {LINE_FORMAT}"),
    ],
    ids=["version-5000-digits", "version-arabic-indic-digit", "end-5000-digits", "start-and-end-5000-digits",
         "end-10e400", "end-1e400", "end-arabic-indic-digit", "mtime-30-digits", "hash-17-digits",
         "malformed-line-4"],
)
def test_a_log_with_numbers_ninja_never_writes_is_one_line_naming_the_line(
    content: str, message: str, kernels: Path, tmp_path: Path, run_in_process: Callable[..., tuple[int, str, str]]
) -> None:
    """The first log through `python -m flashast cost`; the others, which only vary the numbers, through
    `cli.main` in process (which prints what the command prints: `test_cli`)."""
    log = tmp_path / ".ninja_log"
    log.write_text(content)
    result = cost(log, kernels) if content.startswith("# ninja log v777") else run_in_process("cost", log, "-o", kernels)
    assert_one_line_exit_2(result, f"{log}{message}")


def test_the_largest_numbers_ninja_writes_are_read(kernels: Path, tmp_path: Path) -> None:
    log = tmp_path / ".ninja_log"
    log.write_text(f"# ninja log v5\n0\t{(1 << 64) - 1}\t-{(1 << 63) - 1}\t{OBJECT}\t{'f' * 16}\n")
    code, stdout, stderr = cost(log, kernels)
    assert code == 0, stderr
    assert "1 compile steps of generated files" in stdout or "compile step" in stdout


def test_reading_is_bounded_in_size_and_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"x" * 10)
    assert read_regular_file(small, 10) == b"x" * 10
    with pytest.raises(UntrustedFileError, match="is larger than 9 bytes"):
        read_regular_file(small, 9)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UntrustedFileError, match="is a FIFO"):
        read_regular_file(fifo, 10)
    with pytest.raises(UntrustedFileError, match="No such file"):
        read_regular_file(tmp_path / "absent", 10)


def test_numbers_are_ascii_digits_within_their_range() -> None:
    assert ascii_natural("0123", 4) == 123
    assert [ascii_natural(text, 4, 999) for text in ("", "12345", "1000", "\u0667", "+1", " 1", "1_0")] == [None] * 7
    assert load_json(b'{"a": [1, -2, "[[[", true, null]}') == {"a": [1, -2, "[[[", True, None]}
    for damaged in (b"[" * 100_000, b"[1e999]", b"[NaN]", b"[Infinity]", b"[" + b"9" * 5000 + b"]", b"\xff"):
        with pytest.raises(UntrustedFileError):
            load_json(damaged)


# The dispatcher's store ---------------------------------------------------------------------------

READ_WITH_STORE = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    from flashast.verify import VerdictStore, VerifyOptions
    from flashast.verify.dispatch import requirements
    from flashast.verify.dispatch.indexer import required

    fa2, common, store, damages = map(Path, sys.argv[1:5])

    def read():
        options = VerifyOptions(include_dirs=(common, fa2))
        found = required(fa2 / "api.cpp", options, {"run_mha_fwd_"}, VerdictStore(store))
        return f"{'cached' if found.cached else 'read'} {len(requirements([found]))}"

    print("first", read())
    print("again", read())
    (entry,) = (store / "payloads").iterdir()
    good = entry.read_bytes()
    for name, damage in json.loads(damages.read_text()).items():
        entry.unlink()
        if damage == "FIFO":
            os.mkfifo(entry)
        elif damage == "/dev/zero":
            entry.symlink_to("/dev/zero")
        elif damage == "DIRECTORY":
            entry.mkdir()
        else:
            entry.write_bytes(damage.encode("utf-8", "surrogateescape"))
        print(name, read())  # a miss reads the dispatcher and stores the entry again
        if entry.is_dir():
            entry.rmdir()
        entry.unlink(missing_ok=True)
        entry.write_bytes(good)
    print("restored", read())
""")


def read_with_damaged_entries(store: Path, damages: dict[str, str]) -> dict[str, str]:
    """`required` with the store in one subprocess, the entry damaged in each way in turn: what each
    read says (`read N` or `cached N`). An entry that blocks the read fails on the timeout."""
    listing = store.parent / "damages.json"
    listing.write_text(json.dumps(damages))
    completed = subprocess.run([sys.executable, "-c", READ_WITH_STORE, str(FA2), str(COMMON), str(store), str(listing)],
                               env=cli_environment(), capture_output=True, text=True, timeout=300, check=False,
                               stdin=subprocess.DEVNULL)
    assert completed.returncode == 0, completed.stderr
    return dict(line.split(" ", 1) for line in completed.stdout.splitlines())


def entry_document(tmp_path: Path) -> dict[str, object]:
    """The store entry this dispatcher read leaves, as JSON."""
    store = tmp_path / "model-store"
    required(FA2 / "api.cpp", VerifyOptions(include_dirs=(COMMON, FA2)), {"run_mha_fwd_"}, VerdictStore(store))
    (entry,) = (store / "payloads").iterdir()
    document: dict[str, object] = json.loads(entry.read_text())
    return document


def damaged_entries(document: dict[str, object]) -> dict[str, str]:
    references = document["references"]
    assert isinstance(references, list) and references
    template, arguments, file, line, column, tracked = references[0]

    def with_first(*fields: object) -> str:
        return json.dumps({**document, "references": [list(fields), *references[1:]]})

    return {
        "fifo": "FIFO",
        "dev-zero": "/dev/zero",
        "directory": "DIRECTORY",
        "nested-100000-deep": "[" * 100_000,
        "line-1e999": with_first(template, arguments, file, "LINE", column, tracked).replace('"LINE"', "1e999"),
        "line-5000-digits": with_first(template, arguments, file, "LINE", column, tracked).replace('"LINE"', "9" * 5000),
        "line-a-boolean": with_first(template, arguments, file, True, column, tracked),
        "line-negative": with_first(template, arguments, file, -1, column, tracked),
        "tracked-a-string": with_first(template, arguments, file, line, column, "yes"),
        "arguments-not-strings": with_first(template, [1, 2], file, line, column, tracked),
        "indexed-a-string": json.dumps({**document, "indexed": "no"}),
        "not-utf-8": "\udcff",
    }


def test_a_damaged_store_entry_is_a_miss_and_the_dispatcher_is_read_again(tmp_path: Path) -> None:
    """A FIFO is not waited on, `/dev/zero` not read, deep nesting and huge numbers not parsed: each is
    a miss (the dispatcher read again, the same calls found), then the good entry answers again."""
    damages = damaged_entries(entry_document(tmp_path))
    said = read_with_damaged_entries(tmp_path / "store", damages)
    first = said.pop("first")
    assert first.startswith("read ") and int(first.split()[1]) > 0
    assert said.pop("again") == said.pop("restored") == first.replace("read", "cached")
    assert said == dict.fromkeys(damages, first)


# Linear-time reading --------------------------------------------------------------------------------


def dispatcher_of(lines: int, directory: Path) -> Path:
    """A dispatcher whose every line has an unevaluated operand and a call, and an `if constexpr`."""
    directory.mkdir()
    (directory / "kernel.h").write_text("template <int N> int run_kernel(int x);\n")
    body = []
    for index in range(lines):
        body.append(f"  if (x == {index}) {{ (void)sizeof(run_kernel<1>(x)); run_kernel<{index % 3}>(x); }}")
        body.append(f"  if constexpr ({index % 2} == 1) {{ run_kernel<7>(x); }}")
    path = directory / "api.cpp"
    path.write_text('#include "kernel.h"\nvoid dispatch(int x) {\n' + "\n".join(body) + "\n}\n")
    return path


def python_calls_to_read(lines: int, directory: Path) -> int:
    """How many Python functions run (generator resumptions included) to read and merge the dispatcher."""
    path = dispatcher_of(lines, directory)
    options = VerifyOptions(include_dirs=(directory,))
    count = 0

    def profile(frame: object, event: str, argument: object) -> None:
        nonlocal count
        count += event == "call"

    sys.setprofile(profile)
    try:
        read = required(path, options, {"run_kernel"})
        merged = requirements([read])
    finally:
        sys.setprofile(None)
    assert not read.problems
    # Every line's call, and the live half of the `if constexpr` branches; sizeof's call is not a use.
    assert len(read.references) == lines + lines // 2
    assert {str(requirement.specialization) for requirement in merged} == {
        "run_kernel<0>", "run_kernel<1>", "run_kernel<2>", "run_kernel<7>"}
    return count


def test_reading_a_dispatcher_is_linear_in_its_unevaluated_operands_and_branches(tmp_path: Path) -> None:
    """Four times the lines make about four times the calls (a quadratic reading made over seven times
    as many at these sizes, and 18 s for 20,000 lines): a count, so no clock decides the test."""
    small = python_calls_to_read(150, tmp_path / "small")
    large = python_calls_to_read(600, tmp_path / "large")
    assert large < 4.5 * small, (small, large)


RANGES = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 20)).map(lambda pair: (pair[0], pair[0] + pair[1])))


@given(RANGES, RANGES)
def test_spans_hold_exactly_the_offsets_of_their_ranges_however_they_nest_or_touch(
    built: list[tuple[int, int]], added: list[tuple[int, int]]
) -> None:
    spans = Spans(built)
    for start, end in added:
        spans.add(start, end)
    every = built + added
    assert [offset in spans for offset in range(-1, 90)] == [
        any(start <= offset < end for start, end in every) for offset in range(-1, 90)]
    # Sorted and merged: each range ends before the next one starts.
    assert all(end < start for end, start in zip(spans.ends, spans.starts[1:], strict=False))
