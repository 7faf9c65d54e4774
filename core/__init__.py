"""Model Studio's engine: everything the studio does, headless (no Streamlit here)."""
