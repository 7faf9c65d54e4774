"""Where the studio's UI files are, in a checkout and in an installed studio alike.

In the repository, `pages/` and `.streamlit/config.toml` sit at the top level (the layout is
fixed). A wheel cannot carry files from outside its packages, so pyproject.toml maps those two
folders into this package as `app/studio_pages/` and `app/streamlit_config/`; an installed studio
finds them there, a checkout (plain or editable) next to `app/`. Nothing here imports Streamlit:
`studio ui` reads these paths too.
"""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).resolve().parent
ENTRYPOINT = APP / "main.py"


def _installed_or_checkout(installed: Path, checkout: Path) -> Path:
    return installed if installed.exists() else checkout


PAGES = _installed_or_checkout(APP / "studio_pages", APP.parent / "pages")
STREAMLIT_CONFIG = _installed_or_checkout(
    APP / "streamlit_config" / "config.toml", APP.parent / ".streamlit" / "config.toml"
)
