"""Property: `studio check` and `studio code` on hostile spec files and option values exit 0,
1 with one `error:` line, or 2 with argparse's usage; never a traceback, never "unexpected"."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cli.main import main
from tests.fuzz.strategies import NASTY_TEXT, json_values, specs, texts

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTION_VALUES = st.sampled_from(
    ["1,8,8", "4", "0", "-1", "12345678901234567890", "1e3", "3,x", "", " ", "9" * 30, "nan"]
) | st.text(max_size=8)


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as stop:  # argparse: usage errors
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def assert_clean(code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err
    assert code in (0, 1, 2), code
    if code == 1:
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "unexpected" not in err, err  # the catch-all is for bugs: the fuzz finds none
    if code == 2:
        assert "usage: studio" in err


def spec_file(folder: Path, document) -> Path:
    path = folder / "spec.json"
    text = document if isinstance(document, str) else json.dumps(document, allow_nan=True)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


@FUZZ
@given(
    command=st.sampled_from(["check", "code"]),
    document=specs() | json_values | st.sampled_from(["", "{", "[" * 3000, "\x00"]),
    json_flag=st.booleans(),
)
def test_check_and_code_on_hostile_files(command, document, json_flag):
    with tempfile.TemporaryDirectory() as folder:
        path = spec_file(Path(folder), document)
        args = [command, str(path)] + (["--json"] if json_flag and command == "check" else [])
        code, out, err = run_cli(args)
        assert_clean(code, out, err)
        if command == "code" and code == 0:
            compile(out, "<exported>", "exec")


@FUZZ
@given(
    command=st.sampled_from(["check", "code"]),
    options=st.lists(
        st.tuples(
            st.sampled_from(["--input-shape", "--num-classes", "--vocab-size", "--dataset"]),
            OPTION_VALUES | st.sampled_from(NASTY_TEXT) | texts,
        ),
        max_size=3,
    ),
)
def test_option_values_never_crash(command, options):
    spec = {"name": "opts", "layers": [{"type": "Flatten"}, {"type": "Linear"}]}
    with tempfile.TemporaryDirectory() as folder:
        path = spec_file(Path(folder), spec)
        args = [command, str(path)] + [part for pair in options for part in pair]
        assert_clean(*run_cli(args))
