"""User strings reach the page as text: never a link, an image, HTML or a Streamlit directive."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from app import figures
from app.plain_text import html_escape, md_escape

PLANTED = "![x](http://127.0.0.1:1/x)"
INTERPRETED = {"link_open", "image", "html_inline", "html_block", "code_inline", "fence", "em_open"}


def tokens(markdown: str) -> list:
    """Every token (children included) CommonMark makes of `markdown`."""
    flat = []
    for token in MarkdownIt("commonmark").enable("table").enable("strikethrough").parse(markdown):
        flat.append(token)
        flat.extend(token.children or [])
    return flat


def rendered_text(markdown: str) -> str:
    return "".join(t.content for t in tokens(markdown) if t.type == "text")


def test_an_image_link_is_escaped_and_renders_as_its_own_text():
    escaped = md_escape(PLANTED)
    assert escaped == r"\!\[x\]\(http\:\/\/127\.0\.0\.1\:1\/x\)"
    assert not {t.type for t in tokens(escaped)} & INTERPRETED
    assert rendered_text(escaped) == PLANTED


def test_streamlit_directives_and_line_breaks_are_plain():
    assert md_escape(":red[alarm] :material/home: $x$") == (
        r"\:red\[alarm\] \:material\/home\: \$x\$"
    )
    assert md_escape("a\n\n    # b") == r"a      \# b"


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=("Cc", "Cs"), include_characters="\n"
        ),
        max_size=80,
    )
    | st.from_regex(
        r"(!?\[[a-z]*\]\((https?|javascript):[/a-z0-9.:]*\)|<(img|a|script)[^>]*>|`+|\*+|&[a-z]+;)+"
    )
)
def test_escaped_text_never_becomes_markup(text):
    escaped = md_escape(text)
    kinds = {t.type for t in tokens(escaped)}
    assert not kinds & INTERPRETED, (text, kinds)
    # what a person sees is what they typed (white space aside)
    shown = rendered_text(escaped)
    assert shown.split() == text.replace("\x00", "\ufffd").split()  # CommonMark: NUL -> U+FFFD


def test_plotly_labels_carry_no_html():
    assert html_escape('<img src="http://127.0.0.1:1/x">') == (
        "&lt;img src=&quot;http://127.0.0.1:1/x&quot;&gt;"
    )
    fig = figures.confusion_matrix_figure([[1, 0], [0, 1]], ["<b>a</b>", PLANTED])
    assert list(fig.data[0].x) == ["&lt;b&gt;a&lt;/b&gt;", PLANTED]


def notice_page() -> None:
    from app import state

    state.notify("notice", "error", "Upload refused: member ![x](http://127.0.0.1:1/x) is bad")
    state.show_notice("notice")


def test_a_notice_quoting_a_planted_name_reaches_the_page_escaped():
    app = AppTest.from_function(notice_page).run()
    assert not app.exception
    body = app.error[0].value
    assert r"\!\[x\]\(http\:\/\/127\.0\.0\.1\:1\/x\)" in body
    assert "](http" not in body
