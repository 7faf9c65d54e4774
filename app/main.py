"""The studio's entrypoint: a picture frame around the pages (`streamlit run app/main.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

CHECKOUT = Path(__file__).resolve().parents[1]
if str(CHECKOUT) not in sys.path:  # `app` and `core` import from a plain checkout too
    sys.path.insert(0, str(CHECKOUT))

from app.access import require_access  # noqa: E402 (needs the path above in a plain checkout)
from app.locations import PAGES  # noqa: E402

# (file, title, icon); a page joins this list the day its file exists (Deploy comes with export)
PAGE_FILES = (
    ("build.py", "Build", ":material/construction:"),
    ("data.py", "Data", ":material/dataset:"),
    ("train.py", "Train", ":material/play_circle:"),
    ("runs.py", "Runs", ":material/monitoring:"),
    ("explain.py", "Explain", ":material/lightbulb:"),
    ("sweep.py", "Sweep", ":material/tune:"),
    ("deploy.py", "Deploy", ":material/rocket_launch:"),
    ("compress.py", "Compress", ":material/compress:"),
)

st.set_page_config(page_title="Model Studio", page_icon="🧠", layout="wide")
require_access()  # a no-op on localhost; beyond it, the token `studio ui` printed
st.navigation(
    [
        st.Page(PAGES / file, title=title, icon=icon, default=file == "build.py")
        for file, title, icon in PAGE_FILES
    ],
    position="top",
).run()
