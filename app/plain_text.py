"""User text shown as text, never interpreted.

Streamlit renders the strings given to st.markdown, st.caption, st.error, st.info, st.warning,
st.success, st.toast and widget labels as Markdown (with Streamlit's own directives such as
`:red[...]`, `:material/icon:` and `$math$`). A file name, label, column name, spec or run name,
or vocabulary word such as `![x](http://host/x)` would make the browser fetch that address.
Every user-supplied string goes through `md_escape` before it reaches one of those calls, and
through `html_escape` before a Plotly title, axis label or hover text (which take a few HTML
tags).
"""

from __future__ import annotations

import html
import string

# CommonMark lets a backslash escape any ASCII punctuation character, which then renders as
# itself: escaping all of them turns off links, images, emphasis, code, HTML, headings, lists,
# tables, autolinks (':' and '.' split a URL), entities ('&') and Streamlit's directives.
_ESCAPES = {ord(char): "\\" + char for char in string.punctuation}
_WHITE_SPACE = {ord(char): " " for char in "\r\n\t\v\f"}


def md_escape(text: object) -> str:
    """`text` (any value, as str()) escaped so that Markdown shows it literally, on one line.

    Line breaks and tabs become spaces and leading white space goes: a user string is an
    inline fragment of a sentence, and a new line or an indent would start a new block (an
    indented code block, a heading)."""
    return str(text).translate(_WHITE_SPACE).lstrip(" ").translate(_ESCAPES)


def html_escape(text: object) -> str:
    """`text` with &, <, > and quotes escaped, for Plotly text (titles, labels, hover)."""
    return html.escape(str(text), quote=True)
