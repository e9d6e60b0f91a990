import pytest

from ephyra.cli.main import main


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["forklift", "start", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "130  interrupted" in out and "3    another run holds the lock" in out
    assert "--credentials SOURCE" in out


def test_bad_workload_option_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["forklift", "plan", "--from", "a", "--to", "b", "--workload-opt", "novalue"])
    assert code == 2
    assert "--workload-opt wants KEY=VALUE" in capsys.readouterr().err


def test_same_cloud_twice_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forklift", "plan", "--from", "a", "--to", "a"]) == 2
    assert "name the same cloud" in capsys.readouterr().err


def test_status_without_runs(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--journal", f"sqlite:///{tmp_path}/j.db", "forklift", "status"]) == 2
    assert "no forklift run" in capsys.readouterr().err
