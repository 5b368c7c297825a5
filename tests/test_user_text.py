"""Nothing a user typed or uploaded is rendered as HTML or live Markdown (links, images, directives, formatting).

The app is driven with AppTest: an upload whose *name* is hostile (an iframe tag, a Markdown link or image, a
blank line that would end a code span) must appear only inside a code span of an element that allows no HTML.
"""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from ui.common import literal

TIMEOUT = 180
HOSTILE_NAMES = [
    "<iframe src=x>.jpg",
    "<img src=x onerror=alert(1)>.png",
    "[click](javascript:alert(1)).png",
    "![t](http://example.invalid/t.png).png",
    ":red[big] :material/warning: $x^2$ *b* `code`.png",
    "two\n\nparagraphs <b>x</b>.png",
]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def markdown_like(at: AppTest) -> list:
    """Every element whose body Streamlit renders as Markdown."""
    return [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success, *at.title, *at.header,
            *at.subheader]


def assert_only_as_literal(at: AppTest, text: str) -> None:
    shown = literal(text)
    found = False
    for element in markdown_like(at):
        assert not getattr(element.proto, "allow_html", False) or text not in element.value, element.value
        body = element.value.replace(shown, "")
        assert "<iframe" not in body and "<img" not in body and "javascript:" not in body, element.value
        found = found or shown in element.value
    assert found, f"{text!r} is not shown at all"


@pytest.mark.parametrize("strange", ["a`b", "``x``", "line\nbreak", "\x1b[31mred", "x" * 500])
def test_literal_is_one_code_span_whatever_the_text(strange):
    out = literal(strange)
    fence = re.match("`+", out).group(0)
    assert out.endswith(" " + fence) and fence not in out[len(fence):-len(fence)]
    assert "\n" not in out and "\x1b" not in out and len(out) < 140


def test_hostile_upload_names_produce_no_live_element(tiny_model):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.session_state["methods"] = ["grad_cam"]
    at.run()
    for name in HOSTILE_NAMES:
        at.file_uploader(key="upload").set_value((name, png(), "image/png")).run()
        assert not at.exception and not at.error, name
        assert_only_as_literal(at, "upload: " + name.replace("\n", " "))
    for page in ("ui/page_trust.py", "ui/page_axioms.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        assert_only_as_literal(at, "upload: " + HOSTILE_NAMES[-1].replace("\n", " "))


def test_methods_filter_is_shown_as_typed_not_as_markdown():
    at = AppTest.from_file(str(ROOT / "ui" / "page_methods.py"), default_timeout=TIMEOUT).run()
    query = "[x](javascript:alert(1)) <iframe>"
    at.text_input(key="methods_filter").input(query).run()
    assert not at.exception
    assert_only_as_literal(at, query.lower())


def test_no_source_file_renders_html():
    for path in [ROOT / "app.py", *(ROOT / "ui").glob("*.py")]:
        assert "unsafe_allow_html" not in path.read_text(), path
        # The one st.html call draws presentation mode's fixed style sheet, a constant of ui/layout.py.
        calls = re.findall(r"st\.html\((.*?)\)", path.read_text())
        assert calls == (["_STYLE"] if path.name == "layout.py" else []), (path, calls)
