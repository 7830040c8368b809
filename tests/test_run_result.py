"""The run's result is what the command prints and exits with: `pipeline.run` returns a `Result` that
knows its exit code, and a failed verification raises a `VerificationError` carrying its findings as
data, rendered once, by the command's `--header-warnings` choice.

In process: `pipeline.run(registry, Options(...))` and `cli.main([...])`, no subprocess.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_verify import SAME_INSTANTIATION_TWICE, registry_with

from flashast.cli import main
from flashast.errors import VerificationError
from flashast.pipeline import Action, Options, Result, run
from flashast.registry import Registry
from flashast.report import report_error
from flashast.verify import Report
from flashast.verify.diagnostics import Diagnostic, Location


def _run(output: Path, action: Action) -> Result:
    return run(Registry(), Options(output=output, action=action, verification=None))


def test_exit_code_is_1_while_dir_differs_from_what_a_run_writes_and_0_once_written(tmp_path: Path) -> None:
    output = tmp_path / "kernels"
    assert _run(output, Action.CHECK).exit_code == 1, "a DIR that does not exist differs"
    assert _run(output, Action.DIFF).exit_code == 1
    written = _run(output, Action.WRITE)
    assert written.outcome is not None and written.outcome.written
    assert written.exit_code == 0, "a write that changed DIR succeeded: exit 0, not 'differs'"
    assert _run(output, Action.CHECK).exit_code == 0
    assert _run(output, Action.LIST).exit_code == 0
    sorted(output.glob("*.cu"))[0].unlink()
    checked = _run(output, Action.CHECK)
    assert checked.plan is not None and checked.plan.differs
    assert checked.exit_code == 1
    assert _run(output, Action.WRITE).exit_code == 0


def test_the_command_exits_with_the_results_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "kernels"
    modes = {"--check": Action.CHECK, "--diff": Action.DIFF, "--list": Action.LIST}
    for step in ("--check", "--diff", "write", "--check", "delete", "--diff", "--list"):
        if step == "delete":
            sorted(output.glob("*.cu"))[0].unlink()
        elif step == "write":
            assert main(["-o", str(output), "--no-verify", "-q"]) == 0
        else:
            expected = _run(output, modes[step]).exit_code
            assert main(["-o", str(output), "--no-verify", "-q", step]) == expected, step
    capsys.readouterr()


def _findings() -> Report:
    report = Report(files=1)
    report.add(Diagnostic(Location("a.cu", 3, 1), "unknown type name 'T'", fails=True, file="a.cu"))
    report.add(Diagnostic(Location("cutlass/half.h", 9, 2), "unused variable 'x'", fails=False, in_header=True))
    return report


def test_a_verification_error_renders_its_findings_when_printed(capsys: pytest.CaptureFixture[str]) -> None:
    findings = _findings()
    error = VerificationError("verification failed: 1 error(s)", findings, hint="flashast: hint: add --resource-dir")
    assert error.findings is findings
    assert error.report == f"{findings.text(header_warnings=False)}\nflashast: hint: add --resource-dir"
    assert "cutlass/half.h:9:2: warning: unused variable 'x'" not in error.report
    assert "cutlass/half.h:9:2: warning: unused variable 'x'" in error.detailed
    assert report_error(error, header_warnings=True) == 3
    err = capsys.readouterr().err
    assert err == f"{error.detailed}\nflashast: error: verification failed: 1 error(s)\n"


def test_a_verification_error_made_from_texts_still_works() -> None:
    error = VerificationError("failed", "counted", "listed")
    assert (error.report, error.detailed, error.text(header_warnings=True)) == ("counted", "listed", "listed")
    assert VerificationError("failed", "only").detailed == "only"


def test_a_failed_verification_carries_the_report_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "out"
    with pytest.raises(VerificationError) as raised:
        run(registry_with(SAME_INSTANTIATION_TWICE), Options(output=output, preset="faults"))
    findings = raised.value.findings
    assert isinstance(findings, Report) and findings.failed
    assert raised.value.report == findings.text(header_warnings=False)
    assert not output.exists()
