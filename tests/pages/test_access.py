"""A studio bound beyond localhost opens only for the token `studio ui` printed."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app import state
from tests.pages.conftest import ENTRYPOINT

TOKEN = "tok-3f9a-example-secret"


def opened(query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60)
    if query_params:
        at.query_params.update(query_params)
    return at.run()


def shows_the_studio(at: AppTest) -> bool:
    return any(b.key and b.key.startswith("palette.") for b in at.sidebar.button)


@pytest.fixture
def shared(monkeypatch):
    monkeypatch.setenv("STUDIO_ACCESS_TOKEN", TOKEN)


def test_on_localhost_nothing_is_asked(monkeypatch):
    monkeypatch.delenv("STUDIO_ACCESS_TOKEN", raising=False)
    at = opened()
    assert not at.exception and shows_the_studio(at)
    assert state.ACCESS_TOKEN_INPUT not in [t.key for t in at.text_input]


def test_without_the_token_only_a_login_shows(shared):
    at = opened()
    assert not at.exception and not shows_the_studio(at)
    assert at.text_input(key=state.ACCESS_TOKEN_INPUT).label == "Access token"
    at = opened({"token": "wrong"})
    assert not shows_the_studio(at) and "not the one this studio printed" in at.error[0].value


def test_the_link_with_the_token_lets_the_session_in_and_leaves_the_address_bar(shared):
    at = opened({"token": TOKEN})
    assert not at.exception and shows_the_studio(at)
    assert "token" not in at.query_params
    at.run()  # later reruns of the same session stay in
    assert shows_the_studio(at)


def test_typing_the_token_lets_the_session_in(shared):
    at = opened()
    at.text_input(key=state.ACCESS_TOKEN_INPUT).input(TOKEN)
    at.button[0].click().run()
    assert not at.exception and shows_the_studio(at)
