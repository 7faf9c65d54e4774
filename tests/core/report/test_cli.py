"""`studio report RUN_ID [-o FILE] [--samples N] [--json]` on a run trained for real."""

from __future__ import annotations

import json

import pytest

from core.cli.main import main


@pytest.fixture
def in_table_home(table_run, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(table_run.home))
    monkeypatch.setenv("STUDIO_DATABASE_URL", f"sqlite:///{table_run.home / 'studio.db'}")
    return table_run


def test_writes_one_file_and_says_where(in_table_home, tmp_path, capsys):
    out = tmp_path / "shared" / "report.html"
    run_id = str(in_table_home.run_id)
    assert main(["report", run_id, "-o", str(out), "--samples", "2", "--json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["path"] == str(out) and document["bytes"] == out.stat().st_size
    assert document["run_id"] == in_table_home.run_id
    page = out.read_text(encoding="utf-8")
    assert f"Run {run_id}: what the tiny-mlp trained on" in page
    assert "report run" in captured.err  # the progress line goes to stderr
    assert not list(out.parent.glob(".*partial"))  # written whole, nothing left behind


def test_an_unknown_run_is_one_line_and_exit_1(in_table_home, tmp_path, capsys):
    assert main(["report", "999", "-o", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err.startswith("error: run 999 does not exist")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("option", [["--samples", "51"], ["--threads", "-1"]])
def test_out_of_range_options_are_usage_errors(option):
    with pytest.raises(SystemExit) as exit_:
        main(["report", "1", *option])
    assert exit_.value.code == 2
