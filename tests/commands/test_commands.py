"""The gradtrace command's dispatcher and its small subcommands, in process (the end-to-end runs
of each are in tests/test_wheel.py and tests/test_cli.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gradtrace
from gradtrace.commands import COMMANDS, main
from gradtrace.commands.train import prepare_overrides
from gradtrace.errors import ConfigError
from gradtrace.sweeps.result import FAILED, read_result


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)
    assert set(COMMANDS) == {"train", "summarize", "resume", "rerun-failed"}


def test_no_command_prints_the_usage_and_exits_2(capsys: pytest.CaptureFixture[str]):
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: gradtrace COMMAND")


def test_an_unknown_command_is_one_line_naming_the_commands(capsys: pytest.CaptureFixture[str]):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert err == ("gradtrace: unknown command 'trian'; the commands are train, summarize, "
                   "resume, rerun-failed (gradtrace --help)\n")


def test_version(capsys: pytest.CaptureFixture[str]):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"gradtrace {gradtrace.__version__}\n"


def test_summarize_and_rerun_failed_refuse_a_folder_without_jobs(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]):
    assert main(["summarize", str(tmp_path)]) == 2
    assert main(["rerun-failed", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count(f"error: {tmp_path} holds no sweep jobs") == 2


def test_resume_refuses_a_folder_that_is_not_a_run(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]):
    assert main(["resume", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path} is not a run folder (no "
                                       f".hydra/overrides.yaml)\n")


@pytest.mark.parametrize("text,message", [
    ("- [unclosed\n", r"cannot be read as YAML"),
    ("optim.lr: 0.1\n", r"must be a YAML list of overrides such as - optim\.lr=0\.1, got dict"),
])
def test_resume_with_a_damaged_overrides_file_is_one_line_and_exit_2(
        text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(text)
    assert main(["resume", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and re.search(message, error)


def test_a_result_json_of_wrong_types_is_a_damaged_job_not_a_traceback(tmp_path: Path):
    (tmp_path / "result.json").write_text('{"status": "completed", "final_loss": "abc"}')
    result = read_result(tmp_path)
    assert result.status == FAILED and "final_loss holds 'abc'" in result.error


def test_overrides_hydra_would_answer_with_a_traceback_are_one_line():
    with pytest.raises(ConfigError, match=r"^trainer=null: the config group trainer takes the name "
                                          r"of one of its options, e\.g\. trainer=default .*~trainer"):
        prepare_overrides(["trainer=null"])
    with pytest.raises(ConfigError, match=r"^trainer=1: the config group trainer takes"):
        prepare_overrides(["trainer=1"])
    with pytest.raises(ConfigError, match=r"^the override key a{20}\.\.\. is 50000 characters long"):
        prepare_overrides(["+" + "a" * 50000 + "=1"])


def test_a_value_outside_ascii_is_quoted_for_hydra():
    assert prepare_overrides(["-m", "hydra.run.dir=/tmp/x/rün名", "optim.lr=0.1,0.2"]) == \
        ["-m", "hydra.run.dir='/tmp/x/rün名'", "optim.lr=0.1,0.2"]
    assert prepare_overrides(["--config-dir", "conf", "+note=naïve,plan"]) == \
        ["--config-dir", "conf", "+note=naïve,plan"]  # grammar in it: left to Hydra's message
