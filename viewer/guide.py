"""docs/guide.md (and the other pages of docs/) as HTML, served by the portal at /guide/.

CommonMark with pipe tables, by markdown-it-py; raw HTML in the Markdown is escaped, not
passed through, and link targets are checked by markdown-it's own validator (no
``javascript:``). Headings get GitHub's anchor ids (mdit-py-plugins' anchors), so that
``/guide/#for-a-clinician`` works here as on GitHub, and the ``?`` overlays
(viewer/page_help.py) can be checked against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    plain = re.sub(r"<[^>]+>", "", text).strip().lower()
    plain = re.sub(r"[^\w\- ]", "", plain)
    return plain.replace(" ", "-")


@dataclass
class Rendered:
    html: str
    anchors: list[str] = field(default_factory=list)
    title: str = ""


@cache
def _parser() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": False})
        .enable("table")
        .use(anchors_plugin, min_level=1, max_level=6, slug_func=slug)
    )


def render_markdown(text: str) -> Rendered:
    parser = _parser()
    tokens = parser.parse(text)
    anchors: list[str] = []
    title = ""
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            anchors.append(str(token.attrs.get("id", "")))
            if not title and index + 1 < len(tokens):
                title = tokens[index + 1].content.replace("`", "")
    return Rendered(
        html=parser.renderer.render(tokens, parser.options, {}), anchors=anchors, title=title
    )
