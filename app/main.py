"""The studio's entrypoint: a picture frame around the pages (`streamlit run app/main.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `app` and `core` import from a plain checkout too
    sys.path.insert(0, str(REPO))
PAGES = REPO / "pages"

# (file, title, icon); pages that another issue has not written yet are simply left out
PAGE_FILES = (
    ("build.py", "Build", ":material/construction:"),
    ("data.py", "Data", ":material/dataset:"),
    ("train.py", "Train", ":material/play_circle:"),
    ("runs.py", "Runs", ":material/monitoring:"),
    ("explain.py", "Explain", ":material/lightbulb:"),
    ("deploy.py", "Deploy", ":material/rocket_launch:"),
)

st.set_page_config(page_title="Model Studio", page_icon="🧠", layout="wide")
pages = [
    st.Page(PAGES / file, title=title, icon=icon, default=file == "build.py")
    for file, title, icon in PAGE_FILES
    if (PAGES / file).is_file()
]
st.navigation(pages, position="top").run()
