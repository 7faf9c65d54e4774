"""The login a studio bound beyond localhost asks for: the access token `studio ui` printed.

`studio ui --host 0.0.0.0` (any address but loopback) starts Streamlit with STUDIO_ACCESS_TOKEN
set; every page then stays closed until the person opens the link with `?token=…` once or types
the token, after which their session is let in and the token leaves the address bar. On
localhost no token is set and nothing is asked.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from app import state

ACCESS_TOKEN_ENV = "STUDIO_ACCESS_TOKEN"


def token_matches(given: object, expected: str) -> bool:
    """Constant-time comparison, so timing does not leak how much of a guess was right."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def require_access() -> None:
    """Stop the script with a login form unless this session may see the studio."""
    expected = os.environ.get(ACCESS_TOKEN_ENV)
    if not expected or st.session_state.get(state.ACCESS_GRANTED):
        return
    given = st.query_params.get(state.TOKEN_PARAM)
    if given is not None:
        del st.query_params[state.TOKEN_PARAM]  # the token does not stay in the address bar
    if not token_matches(given, expected):
        st.title("Model Studio")
        st.write(
            "This studio is shared on the network, so it asks for the access token that "
            "`studio ui` printed when it started."
        )
        with st.form(state.ACCESS_FORM):
            typed = st.text_input("Access token", type="password", key=state.ACCESS_TOKEN_INPUT)
            submitted = st.form_submit_button("Open the studio")
        if not (submitted and token_matches(typed, expected)):
            if submitted or given is not None:
                st.error("That token is not the one this studio printed; check and try again.")
            st.stop()
    st.session_state[state.ACCESS_GRANTED] = True
