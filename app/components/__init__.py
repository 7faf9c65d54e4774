"""Custom Streamlit components the studio ships with (each built once; no Node at run time)."""
