"""Verification keys: a verdict is reused only for exactly the inputs libclang passed, and only while
every file that parse read still holds what it held.

All real: libclang parses, files on disk under `tmp_path` (a `Verbatim` `#include` of an absolute
path, a header it includes, real include directories), a `VerdictStore` on a real directory, the
CLI in a subprocess. Which files a run parsed is what `progress` is told (files whose verdict is
reused are not parsed, so not told about).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, snapshot

from flashast import (
    ClassDeclaration,
    Contract,
    Declaration,
    FunctionTemplate,
    Include,
    Kind,
    LineComment,
    Namespace,
    PragmaOnce,
    Preset,
    TranslationUnit,
    TypeParameter,
    ValueParameter,
    Verbatim,
    VerificationError,
    render,
)
from flashast.generated import GeneratedFile
from flashast.registry import Registry
from flashast.verify import CONTRACT_MODE, Report, VerdictStore, VerifyOptions, verify

KERNEL = FunctionTemplate((TypeParameter("T"), ValueParameter("int", "N")), "void", "kernel", (), defined=True)
CONTRACT = Contract({"kernel.h": (PragmaOnce(), Namespace("ns", (ClassDeclaration("half"), KERNEL)))})
OTHER_CONTRACT = Contract({"other.h": (PragmaOnce(), Namespace("ns", (ClassDeclaration("half"), KERNEL)))})
EXT_TYPE = "namespace ns { struct ext_type {}; }\n"

Body = Callable[[], Sequence[Declaration]]


def make_files(bodies: Sequence[Body], contract: Contract = CONTRACT, header: str = "kernel.h",
               top: Callable[[int], Sequence[Declaration]] = lambda index: (), name: str = "f") -> list[GeneratedFile]:
    """One file per body (the namespace's declarations); `top(index)`: declarations before it."""

    def build(config: object) -> TranslationUnit:
        index = config.index  # type: ignore[attr-defined]
        return TranslationUnit((LineComment("generated"), Include(header), *top(index),
                                Namespace("ns", tuple(bodies[index]()))))

    kind = Kind(name, axes={"index": tuple(range(len(bodies)))}, build=build, file_name=name + "_{index}.cu",
                contract=contract)
    return Preset("keys", kinds=(kind,)).generate()


def instantiations(count: int, first: int = 0) -> list[Body]:
    """Bodies instantiating kernel<half, N> for N from `first` on (another N in every file)."""
    return [lambda index=index: [KERNEL.instantiate("half", index)] for index in range(first, first + count)]


def on_parsed(record: Callable[[str, bool], None]) -> Callable[..., None]:
    """A `progress` callback passing on each parsed file's name and whether it failed; it is told a
    `Parsed(file, failed, ...)` record (or `(file, failed)`, as `verify` told it before)."""

    def told(parsed: Any, *failed: bool) -> None:
        if failed:
            record(parsed.name, failed[0])
        else:
            record(parsed.file.name, parsed.failed)

    return told


def run(files: Sequence[GeneratedFile], store: VerdictStore,
        options: VerifyOptions = CONTRACT_MODE) -> tuple[Report, list[str]]:
    """Verify with `store`; the report and the names of the files parsed (not reused)."""
    parsed: list[str] = []
    report = verify(files, options, store, progress=on_parsed(lambda name, failed: parsed.append(name)))
    assert report.parsed == len(parsed) and report.reused == len(files) - len(parsed)
    return report, sorted(parsed)


def names(files: Sequence[GeneratedFile]) -> list[str]:
    return sorted(generated.name for generated in files)


def store_at(directory: Path) -> VerdictStore:
    """A store as a new run opens it (each run of the CLI is a new process)."""
    return VerdictStore(directory / "verified-v2")


def readings_files(directory: Path) -> list[Path]:
    return sorted((directory / "verified-v2" / "readings").glob("*.json"))


# Reuse -----------------------------------------------------------------------------------------------


def test_a_second_run_parses_nothing(tmp_path: Path) -> None:
    """flash-attn-3's 450 files, 110 of them aggregators whose verdicts are keyed on their members."""
    files = Registry().preset("flash-attn-3").generate()
    assert run(files, store_at(tmp_path))[1] == names(files)
    report, parsed = run(files, store_at(tmp_path))
    assert (parsed, report.parsed, report.reused, report.errors, report.warnings) == ([], 0, len(files), [], [])


def test_a_second_run_with_the_same_store_object_parses_nothing(tmp_path: Path) -> None:
    """A tool that keeps one `VerdictStore` for several runs gets what a new process gets."""
    files = make_files(instantiations(4))
    store = store_at(tmp_path)
    run(files, store)
    report, parsed = run(files, store)
    assert (parsed, report.reused) == ([], 4)


def test_without_a_store_nothing_is_reused(tmp_path: Path) -> None:
    files = make_files(instantiations(3))
    verify(files)
    assert verify(files).reused == 0


def test_a_changed_text_parses_that_file_again(tmp_path: Path) -> None:
    run(make_files(instantiations(4)), store_at(tmp_path))
    bodies = instantiations(4)
    bodies[2] = lambda: [KERNEL.instantiate("half", 2), KERNEL.instantiate("half", 20)]
    assert run(make_files(bodies), store_at(tmp_path))[1] == ["f_2.cu"]
    bodies[2] = lambda: [KERNEL.instantiate("undeclared_type", 2)]
    with pytest.raises(VerificationError, match=r"1 error\(s\) in 1 of 4 file\(s\)"):
        run(make_files(bodies), store_at(tmp_path))


def test_other_clang_arguments_parse_every_file_again(tmp_path: Path) -> None:
    files = make_files(instantiations(3))
    run(files, store_at(tmp_path))
    defined = VerifyOptions(clang_args=("-DFLASHAST_KEYS_TEST=1",))
    assert run(files, store_at(tmp_path), defined)[1] == names(files)
    assert run(files, store_at(tmp_path), defined)[1] == []
    assert run(files, store_at(tmp_path), VerifyOptions(clang_args=("-DFLASHAST_KEYS_TEST=2",)))[1] == names(files)
    assert run(files, store_at(tmp_path))[1] == []


def test_a_changed_contract_header_parses_its_files_again(tmp_path: Path) -> None:
    def files_with(contract: Contract) -> list[GeneratedFile]:
        others = make_files(instantiations(2, 100), OTHER_CONTRACT, "other.h", name="g")
        return [*make_files(instantiations(2), contract), *others]

    run(files_with(CONTRACT), store_at(tmp_path))
    grown = Contract({"kernel.h": (PragmaOnce(), Namespace("ns", (ClassDeclaration("half"), ClassDeclaration("bf16"),
                                                                    KERNEL)))})
    assert run(files_with(grown), store_at(tmp_path))[1] == ["f_0.cu", "f_1.cu"]
    without_kernel = Contract({"kernel.h": (PragmaOnce(), Namespace("ns", (ClassDeclaration("half"),)))})
    with pytest.raises(VerificationError, match=r"2 error\(s\) in 2 of 4 file\(s\)"):
        run(files_with(without_kernel), store_at(tmp_path))


# Every file the parse read ---------------------------------------------------------------------------


def including(path: Path, count: int = 3) -> list[GeneratedFile]:
    """`count` files; f_0 includes `path` (an absolute path, through `Verbatim`) and instantiates
    kernel<ext_type, 0>, which that header must declare."""
    bodies = instantiations(count)
    bodies[0] = lambda: [KERNEL.instantiate("ext_type", 0)]
    return make_files(bodies, top=lambda index: (Verbatim(f'#include "{path}"'),) if index == 0 else ())


def test_a_header_a_verbatim_include_reads_is_part_of_the_key(tmp_path: Path) -> None:
    """The key covers what the parse read: the header changing makes f_0 parse again, and a broken
    header fails the run though f_0's own text is the same."""
    header = tmp_path / "ext" / "ext.h"
    header.parent.mkdir()
    header.write_text(EXT_TYPE)
    files = including(header)
    assert run(files, store_at(tmp_path))[1] == names(files)
    assert run(files, store_at(tmp_path))[1] == []
    header.write_text("namespace ns { struct ext_type { int member; }; }\n")
    assert run(files, store_at(tmp_path))[1] == ["f_0.cu"]
    assert run(files, store_at(tmp_path))[1] == []
    header.write_text("namespace ns { struct other_type {}; }\n")
    with pytest.raises(VerificationError) as raised:
        run(files, store_at(tmp_path))
    assert raised.value.report.startswith("f_0.cu:")
    assert "ext_type" in raised.value.report.splitlines()[0]
    assert str(raised.value) == "verification failed: 1 error(s) in 1 of 3 file(s); nothing was written"


def test_a_header_changed_with_its_size_and_times_kept_is_read_again(tmp_path: Path) -> None:
    """Content, not metadata: the same size and modification time still make f_0 parse again."""
    header = tmp_path / "ext.h"
    header.write_text(EXT_TYPE)
    files = including(header)
    run(files, store_at(tmp_path))
    status = header.stat()
    header.write_text(EXT_TYPE.replace("ext_type", "ext_typo"))
    os.utime(header, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert header.stat().st_size == status.st_size
    with pytest.raises(VerificationError):
        run(files, store_at(tmp_path))


def test_a_missing_header_fails_again(tmp_path: Path) -> None:
    header = tmp_path / "ext.h"
    header.write_text(EXT_TYPE)
    files = including(header)
    run(files, store_at(tmp_path))
    header.unlink()
    with pytest.raises(VerificationError, match="1 error"):
        run(files, store_at(tmp_path))


def test_a_header_the_included_header_includes_is_part_of_the_key(tmp_path: Path) -> None:
    header = tmp_path / "ext" / "ext.h"
    header.parent.mkdir()
    inner = header.parent / "detail" / "inner.h"
    inner.parent.mkdir()
    header.write_text('#include "detail/inner.h"\n')
    inner.write_text(EXT_TYPE)
    files = including(header)
    run(files, store_at(tmp_path))
    assert run(files, store_at(tmp_path))[1] == []
    inner.write_text("namespace ns { struct ext_type { long member; }; }\n")
    assert run(files, store_at(tmp_path))[1] == ["f_0.cu"]
    inner.write_text("namespace ns { struct ext_type { broken }; }\n")
    with pytest.raises(VerificationError) as raised:
        run(files, store_at(tmp_path))
    assert str(inner) in raised.value.report


def test_an_aggregators_member_changing_parses_the_aggregator_again(tmp_path: Path) -> None:
    def files_with(first: Body) -> list[GeneratedFile]:
        bodies = [first, *instantiations(4)[1:]]

        def build_member(config: object) -> TranslationUnit:
            return TranslationUnit((Include("kernel.h"), Namespace("ns", tuple(bodies[config.index]()))))  # type: ignore[attr-defined]

        def build_aggregator(config: object) -> TranslationUnit:
            pair = (0, 1) if config.index == 0 else (2, 3)  # type: ignore[attr-defined]
            return TranslationUnit(tuple(Include(f"m_{index}.cu") for index in pair))

        members = Kind("member", axes={"index": (0, 1, 2, 3)}, build=build_member, file_name="m_{index}.cu",
                       contract=CONTRACT)
        aggregators = Kind("all", axes={"index": (0, 1)}, build=build_aggregator, file_name="agg_{index}.cu",
                           contract=CONTRACT, aggregator=True)
        return Preset("keys", kinds=(members, aggregators)).generate()

    run(files_with(lambda: [KERNEL.instantiate("half", 0)]), store_at(tmp_path))
    parsed = run(files_with(lambda: [KERNEL.instantiate("half", 10)]), store_at(tmp_path))[1]
    # agg_1 was verified in one parse with agg_0 (a batch), yet it never read m_0.cu: not parsed again.
    assert parsed == ["agg_0.cu", "m_0.cu"]
    with pytest.raises(VerificationError) as raised:
        run(files_with(lambda: [KERNEL.instantiate("undeclared_type", 0)]), store_at(tmp_path))
    assert "in 2 of 6 file(s)" in str(raised.value)
    assert "included from: agg_0.cu" in raised.value.report


# Real headers ------------------------------------------------------------------------------------------


def real_tree(tmp_path: Path) -> tuple[Path, Path, VerifyOptions]:
    """Two include directories; kernel.h (the contract's header, rendered) is in the second."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (second / "kernel.h").write_text(render(CONTRACT.header_units()["kernel.h"]))
    return first, second, VerifyOptions(include_dirs=(first, second))


def test_a_real_header_changing_parses_its_files_again(tmp_path: Path) -> None:
    _, second, options = real_tree(tmp_path)
    files = make_files(instantiations(3))
    assert run(files, store_at(tmp_path), options)[1] == names(files)
    assert run(files, store_at(tmp_path), options)[1] == []
    with (second / "kernel.h").open("a") as header:
        header.write("namespace ns { struct bf16; }\n")
    assert run(files, store_at(tmp_path), options)[1] == names(files)
    (second / "kernel.h").write_text("#error \"a broken real header\"\n")
    with pytest.raises(VerificationError, match="nothing was written"):
        run(files, store_at(tmp_path), options)


def test_a_header_added_where_it_shadows_the_one_read_parses_again(tmp_path: Path) -> None:
    """A kernel.h added to an include directory searched before the one the parse read is what a
    parse would read now."""
    first, _, options = real_tree(tmp_path)
    files = make_files(instantiations(3))
    run(files, store_at(tmp_path), options)
    (first / "kernel.h").write_text("#error \"the shadowing header\"\n")
    with pytest.raises(VerificationError) as raised:
        run(files, store_at(tmp_path), options)
    assert "the shadowing header" in raised.value.report


# What is not remembered ----------------------------------------------------------------------------------


def test_a_parse_with_a_warning_is_not_remembered(tmp_path: Path) -> None:
    """A warning in a contract header does not fail the run, but is shown again on every run; files
    of another contract are remembered."""
    noisy = Contract({"kernel.h": (PragmaOnce(), Namespace("ns", (
        ClassDeclaration("half"), KERNEL, Verbatim("inline int noisy() { int unused_in_header; return 0; }"))))})
    files = [*make_files(instantiations(2), noisy),
             *make_files(instantiations(2, 100), OTHER_CONTRACT, "other.h", name="g")]
    for parsed_again in (names(files), ["f_0.cu", "f_1.cu"]):
        report, parsed = run(files, store_at(tmp_path))
        assert parsed == parsed_again
        assert [warning.message for warning in report.warnings] == [
            "unused variable 'unused_in_header' [-Wunused-variable]"
        ]


def test_a_failing_file_is_not_remembered_and_a_passing_one_is(tmp_path: Path) -> None:
    bodies = instantiations(3)
    bodies[1] = lambda: [KERNEL.instantiate("undeclared_type", 1)]
    files = make_files(bodies)
    for _ in range(2):
        with pytest.raises(VerificationError, match=r"1 error\(s\) in 1 of 3 file\(s\)"):
            run(files, store_at(tmp_path))
    assert run(make_files(instantiations(3)), store_at(tmp_path))[1] == ["f_1.cu"]


# A damaged store is a miss, never an error -----------------------------------------------------------


def verified_once(tmp_path: Path) -> list[GeneratedFile]:
    files = make_files(instantiations(3))
    run(files, store_at(tmp_path))
    assert run(files, store_at(tmp_path))[1] == []
    return files


def test_garbage_index_lines_are_skipped(tmp_path: Path) -> None:
    files = verified_once(tmp_path)
    with (tmp_path / "verified-v2" / "index").open("a") as handle:
        handle.write("garbage\n\n a b c d\nnot-a-key ../../escape\n" + "x" * 10000 + "\n")
    assert run(files, store_at(tmp_path))[1] == []


def test_an_index_that_is_not_text_is_a_miss(tmp_path: Path) -> None:
    files = verified_once(tmp_path)
    (tmp_path / "verified-v2" / "index").write_bytes(b"\xff\xfe\x00 not text\n")
    assert run(files, store_at(tmp_path))[1] == names(files)


def test_an_undecodable_index_line_spoils_no_other_line(tmp_path: Path) -> None:
    """A line that is not UTF-8 (a torn write, a bad sector) is one garbage line: the lines before it
    and those later runs append still count."""
    files = make_files(instantiations(4))
    run(files[:2], store_at(tmp_path))
    with (tmp_path / "verified-v2" / "index").open("ab") as handle:
        handle.write(b"\xff\xfe\x00 not text\n")
    assert run(files, store_at(tmp_path))[1] == ["f_2.cu", "f_3.cu"]
    assert run(files, store_at(tmp_path))[1] == []


@pytest.mark.parametrize("content", ["not json {", "{\"a\": 1}", "[[1, 2]]", "[\"a\"]", "[" * 100000, "\udcff"])
def test_a_readings_file_that_cannot_be_read_is_a_miss(content: str, tmp_path: Path) -> None:
    files = verified_once(tmp_path)
    for path in readings_files(tmp_path):
        path.write_bytes(content.encode("utf-8", errors="surrogateescape"))
    assert run(files, store_at(tmp_path))[1] == names(files)


def test_a_readings_file_that_is_not_what_its_name_says_is_a_miss(tmp_path: Path) -> None:
    """A readings file is named by its content's digest; an empty list in its place would say the
    parse read nothing, and a changed header would go unnoticed."""
    header = tmp_path / "ext.h"
    header.write_text(EXT_TYPE)
    files = including(header)
    run(files, store_at(tmp_path))
    for path in readings_files(tmp_path):
        path.write_text("[]")
    header.write_text("namespace ns {}\n")
    with pytest.raises(VerificationError, match=r"1 error\(s\) in 1 of 3 file\(s\)"):
        run(files, store_at(tmp_path))


def test_a_store_in_the_way_of_directories_is_a_miss(tmp_path: Path) -> None:
    files = make_files(instantiations(3))
    store = tmp_path / "verified-v2"
    store.mkdir()
    (store / "index").mkdir()
    (store / "readings").write_text("a file where a directory belongs\n")
    for _ in range(2):
        assert run(files, store_at(tmp_path))[1] == names(files)
    unwritable = tmp_path / "file-not-directory"
    unwritable.write_text("")
    assert run(files, VerdictStore(unwritable / "verified-v2"))[1] == names(files)


def verify_in_time(files: Sequence[GeneratedFile], store: VerdictStore, fifos: Sequence[Path]) -> Report:
    """`verify` on a thread, given three seconds (it needs milliseconds); if it is still running,
    it is blocked opening a FIFO: open their other ends so that it can finish, and fail."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["report"] = verify(files, store=store)
        except BaseException as error:  # re-raised on the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(3)
    if thread.is_alive():
        descriptors = [os.open(fifo, os.O_RDWR | os.O_NONBLOCK) for fifo in fifos]  # never blocks
        thread.join(5)
        for descriptor in descriptors:
            os.close(descriptor)
        pytest.fail("verify blocks opening a FIFO in the store")
    if "error" in outcome:
        raise outcome["error"]
    report: Report = outcome["report"]
    return report


@pytest.mark.parametrize("where", ["index", "readings"])
def test_a_fifo_in_the_store_neither_hangs_nor_fails(where: str, tmp_path: Path) -> None:
    """Opening a FIFO blocks until someone opens its other end: a run must never open one."""
    files = make_files(instantiations(3))
    store = tmp_path / "verified-v2"
    store.mkdir()
    if where == "index":
        fifos = [store / "index"]
    else:
        run(files, store_at(tmp_path))
        fifos = readings_files(tmp_path)
        for path in fifos:
            path.unlink()
    for fifo in fifos:
        os.mkfifo(fifo)
    report = verify_in_time(files, store_at(tmp_path), fifos)
    assert (report.parsed, report.reused, report.errors) == (3, 0, [])


# Where the store is --------------------------------------------------------------------------------------


def test_the_store_is_under_the_cache_directory_and_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHAST_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("FLASHAST_NO_CACHE", raising=False)
    assert VerdictStore.default().directory == tmp_path / "verified-v2"
    monkeypatch.setenv("FLASHAST_NO_CACHE", "0")
    assert VerdictStore.default().directory == tmp_path / "verified-v2"
    monkeypatch.setenv("FLASHAST_NO_CACHE", "1")
    store = VerdictStore.default()
    assert store.directory is None
    files = make_files(instantiations(2))
    for _ in range(2):
        assert run(files, store)[1] == names(files)
    assert not (tmp_path / "verified-v2").exists()


def test_a_second_cli_run_succeeds_and_writes_nothing(tmp_path: Path, isolated_verification_cache: Path) -> None:
    out = tmp_path / "out"
    code, _, stderr = run_cli("-o", out)
    assert code == 0, stderr
    index = isolated_verification_cache / "verified-v2" / "index"
    assert len(index.read_text().splitlines()) >= 48
    before = snapshot(out)
    code, _, stderr = run_cli("-o", out, "--timings")
    assert code == 0, stderr
    assert snapshot(out) == before
    assert "flashast: 48 file(s) not parsed again: their inputs passed before" in stderr.splitlines()
