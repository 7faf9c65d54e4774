"""The Streamlit studio: entrypoint, session state, shared widgets and pure figure builders."""
