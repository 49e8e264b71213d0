"""`{% viewer_entry "src/study.ts" %}`: the script and style tags of a Vite entry point.

Vite writes hashed file names into ``static/viewer/.vite/manifest.json`` (built by
``npm ci && npm run build`` in ``viewer/frontend``); this tag reads it so templates
never name a hash.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from django import template
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

MANIFEST = "viewer/.vite/manifest.json"


class ViewerBundleMissing(RuntimeError):
    pass


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def manifest() -> dict[str, Any]:
    path = finders.find(MANIFEST)
    if not path:
        raise ViewerBundleMissing(
            "The viewer bundle is not built: run `npm ci && npm run build` in viewer/frontend."
        )
    path = str(path)
    return _load(path, Path(path).stat().st_mtime)


def _imports(m: dict[str, Any], key: str, seen: set[str]) -> list[str]:
    out: list[str] = []
    for dep in m.get(key, {}).get("imports", []):
        if dep in seen:
            continue
        seen.add(dep)
        out.append(dep)
        out.extend(_imports(m, dep, seen))
    return out


@register.simple_tag
def viewer_entry(entry: str) -> SafeString:
    try:
        m = manifest()
    except ViewerBundleMissing as exc:
        return format_html('<div class="bundle-missing" role="alert">{}</div>', str(exc))
    chunk = m.get(entry)
    if chunk is None:
        return format_html(
            '<div class="bundle-missing" role="alert">No bundle for {}.</div>', entry
        )
    deps = _imports(m, entry, {entry})
    css: list[str] = list(chunk.get("css", []))
    for dep in deps:
        css.extend(m[dep].get("css", []))
    parts = [
        format_html_join(
            "", '<link rel="stylesheet" href="{}">', ((static(f"viewer/{c}"),) for c in css)
        ),
        format_html_join(
            "",
            '<link rel="modulepreload" href="{}">',
            ((static(f"viewer/{m[d]['file']}"),) for d in deps),
        ),
        format_html('<script type="module" src="{}"></script>', static(f"viewer/{chunk['file']}")),
    ]
    return mark_safe("".join(parts))  # noqa: S308 - every part was escaped by format_html
