"""docs/guide.md (and the other pages of docs/) as HTML, served by the portal at /guide/.

The portal has no Markdown library; the guide uses a small part of Markdown, which this
renders: ATX headings (with GitHub's anchor ids, so that ``/guide/#for-a-clinician``
works here as on GitHub), paragraphs, ``-`` and ``1.`` lists (with indented continuation
lines), pipe tables, block quotes, fenced code, and inline code, links, images, ``**bold**``
and ``*italic*``. Everything else is text, escaped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^(\s*)([-*]|\d+\.)\s+(.*)$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_CODE = re.compile(r"`([^`]+)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_SAFE_URL = re.compile(r"^(https?://|/|#|[\w./-]+(#[\w-]*)?$)")


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    plain = re.sub(r"<[^>]+>", "", text).strip().lower()
    plain = re.sub(r"[^\w\- ]", "", plain)
    return plain.replace(" ", "-")


def _url(url: str) -> str:
    return url if _SAFE_URL.match(url) else "#"


def inline(text: str) -> str:
    """One line of Markdown text as HTML (escaped first)."""
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(f"<code>{html.escape(match.group(1), quote=False)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = _CODE.sub(keep_code, text)
    out = html.escape(out, quote=False)
    out = _IMAGE.sub(
        lambda m: (
            f'<img src="{html.escape(_url(m.group(2)))}" alt="{html.escape(m.group(1))}" '
            'loading="lazy">'
        ),
        out,
    )
    out = _LINK.sub(lambda m: f'<a href="{html.escape(_url(m.group(2)))}">{m.group(1)}</a>', out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _ITALIC.sub(r"<em>\1</em>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


@dataclass
class Rendered:
    html: str
    anchors: list[str] = field(default_factory=list)
    title: str = ""


def _table(rows: list[str]) -> str:
    def cells(row: str) -> list[str]:
        return [c.strip() for c in row.strip().strip("|").split("|")]

    head, body = cells(rows[0]), [cells(r) for r in rows[2:]]
    out = ["<table><thead><tr>"]
    out += [f"<th>{inline(c)}</th>" for c in head]
    out.append("</tr></thead><tbody>")
    for row in body:
        out.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _list(lines: list[str]) -> str:
    """Items of one list level; deeper-indented items become a nested list."""
    ordered = bool(re.match(r"^\s*\d+\.", lines[0]))
    base = len(lines[0]) - len(lines[0].lstrip())
    items: list[list[str]] = []
    for line in lines:
        match = _LIST_ITEM.match(line)
        if match and len(match.group(1)) == base:
            items.append([match.group(3)])
        else:
            items[-1].append(line)
    tag = "ol" if ordered else "ul"
    out = [f"<{tag}>"]
    for item in items:
        text, nested = [item[0]], []
        for line in item[1:]:
            if nested or (_LIST_ITEM.match(line) and len(line) - len(line.lstrip()) > base):
                nested.append(line)
            else:
                text.append(line.strip())
        out.append(f"<li>{inline(' '.join(text))}{_list(nested) if nested else ''}</li>")
    out.append(f"</{tag}>")
    return "".join(out)


def render_markdown(text: str) -> Rendered:
    lines = text.splitlines()
    out: list[str] = []
    anchors: list[str] = []
    title = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("```"):
            end = i + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            code = "\n".join(lines[i + 1 : end])
            out.append(f"<pre><code>{html.escape(code, quote=False)}</code></pre>")
            i = end + 1
            continue
        heading = _HEADING.match(line)
        if heading:
            level, content = len(heading.group(1)), inline(heading.group(2))
            anchor = slug(content)
            base, n = anchor, 1
            while anchor in anchors:
                anchor, n = f"{base}-{n}", n + 1
            anchors.append(anchor)
            title = title or re.sub(r"<[^>]+>", "", content)
            out.append(f'<h{level} id="{anchor}">{content}</h{level}>')
            i += 1
            continue
        if line.startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            end = i + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            out.append(_table(lines[i:end]))
            i = end
            continue
        if line.startswith(">"):
            end = i
            while end < len(lines) and lines[end].startswith(">"):
                end += 1
            quoted = " ".join(l_.lstrip(">").strip() for l_ in lines[i:end])
            out.append(f"<blockquote><p>{inline(quoted)}</p></blockquote>")
            i = end
            continue
        if _LIST_ITEM.match(line) and not line.startswith(" "):
            end = i + 1
            while (
                end < len(lines)
                and lines[end].strip()
                and (lines[end].startswith((" ", "\t")) or _LIST_ITEM.match(lines[end]))
            ):
                end += 1
            out.append(_list(lines[i:end]))
            i = end
            continue
        end = i + 1
        while (
            end < len(lines)
            and lines[end].strip()
            and not (
                _HEADING.match(lines[end])
                or lines[end].startswith(("```", "|", ">"))
                or _LIST_ITEM.match(lines[end])
            )
        ):
            end += 1
        out.append(f"<p>{inline(' '.join(x.strip() for x in lines[i:end]))}</p>")
        i = end
    return Rendered(html="\n".join(out), anchors=anchors, title=title)
