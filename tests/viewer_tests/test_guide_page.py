"""The guide served by the portal (/guide/, viewer/guide.py) and the ? overlay's links
(viewer/page_help.py): every page's help points at a heading that exists in
docs/guide.md, every picture the guide shows exists, and the Markdown renders as HTML
(escaped, with GitHub's anchors). No browser: Django's test client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from viewer.guide import render_markdown, slug
from viewer.page_help import ADMIN, GUIDE, PAGES, help_for

ROOT = Path(__file__).resolve().parents[2]
GUIDE_MD = ROOT / "docs" / "guide.md"


def test_markdown_subset_renders_as_escaped_html() -> None:
    page = render_markdown(
        "# Guide: the first hour\n\n"
        "Text with `code <b>`, **bold**, *italic* and a [link](operations.md#x).\n"
        "<script>alert(1)</script>\n\n"
        "## For a clinician (`demo`)\n\n"
        "- one\n  continued\n- two\n  - nested\n\n"
        "| a | b |\n|---|---|\n| 1 | `2` |\n\n"
        "![Worklist](screenshots/guide/w.png)\n\n"
        "[bad](javascript:alert(1))\n"
    )
    assert page.title == "Guide: the first hour"
    assert page.anchors == ["guide-the-first-hour", "for-a-clinician-demo"]
    assert '<h2 id="for-a-clinician-demo">For a clinician (<code>demo</code>)</h2>' in page.html
    assert "<code>code &lt;b&gt;</code>" in page.html
    assert "<strong>bold</strong>" in page.html and "<em>italic</em>" in page.html
    assert '<a href="operations.md#x">link</a>' in page.html
    assert "<script>" not in page.html and "&lt;script&gt;" in page.html
    assert "<li>one\ncontinued</li>" in page.html
    assert "<ul>\n<li>nested</li>\n</ul>" in page.html
    assert "<td><code>2</code></td>" in page.html
    assert '<img src="screenshots/guide/w.png" alt="Worklist"' in page.html
    assert 'href="javascript' not in page.html and "[bad](javascript:" in page.html
    assert slug("For a site administrator") == "for-a-site-administrator"


@pytest.mark.django_db
def test_guide_is_served_to_everyone_with_every_help_anchor() -> None:
    answer = Client().get("/guide/")
    assert answer.status_code == 200
    body = answer.content.decode()
    ids = set(re.findall(r'\sid="([^"]+)"', body))
    for view_name, topic in {**PAGES, "admin:index": ADMIN, "": GUIDE}.items():
        assert help_for(view_name).anchor in ids, (view_name, topic.anchor)
    # The page's own ? overlay: the guide's start.
    assert 'id="help-overlay"' in body and 'aria-labelledby="help-title"' in body
    assert Client().get("/guide/operations.md").status_code == 200
    for missing in ("/guide/nope.md", "/guide/../README.md", "/guide/Guide.md"):
        assert Client().get(missing).status_code == 404, missing


@pytest.mark.django_db
def test_every_picture_of_the_guide_exists_and_is_served() -> None:
    text = GUIDE_MD.read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert pictures
    client = Client()
    for picture in pictures:
        assert (GUIDE_MD.parent / picture).is_file(), picture
        answer = client.get(f"/guide/{picture}")
        assert answer.status_code == 200 and answer["Content-Type"] == "image/png", picture
    for outside in ("/guide/../static/img/favicon.svg", "/guide/screenshots/../../README.png"):
        assert client.get(outside).status_code == 404, outside


def test_readme_links_the_guide() -> None:
    assert "(docs/guide.md)" in (ROOT / "README.md").read_text()
