"""The ``?`` overlay of each page: its keyboard shortcuts and the guide section it belongs
to (docs/guide.md, served at /guide/). One entry per page, looked up by the URL's
namespace and name; ``tests/viewer_tests/test_help_overlay.py`` opens the overlay on
every page and follows the link, and ``tests/viewer_tests/test_guide_page.py`` holds each
anchor to a heading of the guide.

The study viewer's own keys come from ``viewer/frontend/src/keyboard.ts`` (its page
fills the table); its entry here lists none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

Shortcut = tuple[str, str]

HELP_KEYS: tuple[Shortcut, ...] = (
    ("?", "Open or close this help"),
    ("Esc", "Close this help"),
)
TAB_KEYS: tuple[Shortcut, ...] = (
    ("Tab / Shift+Tab", "Next / previous link, field or button"),
    ("Enter", "Follow the focused link, press the focused button"),
)


@dataclass(frozen=True)
class PageHelp:
    title: str
    section: str  # the guide section's heading
    anchor: str  # its id on /guide/ (GitHub's anchor of the heading)
    shortcuts: tuple[Shortcut, ...] = TAB_KEYS


WORKLIST = PageHelp(
    "Worklist",
    "The worklist",
    "the-worklist",
    (
        ("Tab", "Move through the filters, the column headings and the studies"),
        ("Enter", "Open the focused study"),
        ("Enter / Space", "On a column heading: sort by it (again: the other way)"),
        ("Double click", "Open a study"),
    ),
)
UPLOAD = PageHelp(
    "Upload",
    "Upload",
    "upload",
    (
        ("Enter / Space", "On the drop zone: choose files"),
        ("Tab", "Next field or button"),
    ),
)
STUDY = PageHelp("Study viewer", "Read the viewer", "read-the-viewer", ())
SIGN_IN = PageHelp(
    "Sign in",
    "Signing in",
    "signing-in",
    (("Tab", "Next field"), ("Enter", "Sign in")),
)
ACCOUNT = PageHelp("Your account", "Your account", "your-account")
TEACHING = PageHelp("Teaching", "Teaching", "teaching")
TEACHER = PageHelp("Class results", "For a teacher", "for-a-teacher")
# The case and attempt pages run the study viewer (teaching.ts fills their table).
STUDENT = PageHelp("Teaching case", "For a student", "for-a-student", ())
CONSULTS = PageHelp("Second opinions", "Ask a second opinion", "ask-a-second-opinion")
EXPLANATIONS = PageHelp("Patient page", "Make a patient page", "make-a-patient-page")
ADMIN = PageHelp("Site administration", "For a site administrator", "for-a-site-administrator")
SIGN_IN_SETTINGS = PageHelp(
    "Sign-in settings", "For a site administrator", "for-a-site-administrator"
)
GUIDE = PageHelp("The guide", "Guide: the first hour", "guide-the-first-hour")

PAGES: dict[str, PageHelp] = {
    "viewer:worklist": WORKLIST,
    "viewer:upload": UPLOAD,
    "viewer:study": STUDY,
    "viewer:tokens": ACCOUNT,
    "viewer:login": SIGN_IN,
    "viewer:guide": GUIDE,
    "viewer:guide-doc": GUIDE,
    "accounts:second-factor": SIGN_IN,
    "accounts:two-factor": ACCOUNT,
    "accounts:sign-in-settings": SIGN_IN_SETTINGS,
    "accounts:site-sign-in": SIGN_IN_SETTINGS,
    "teaching:collections": TEACHING,
    "teaching:collection": TEACHING,
    "teaching:results": TEACHER,
    "teaching:case": STUDENT,
    "teaching:attempt": STUDENT,
    "consults:list": CONSULTS,
    "consults:new": CONSULTS,
    "consults:detail": CONSULTS,
    "consults:answer": CONSULTS,
    "explanations:study": EXPLANATIONS,
}


def help_for(view_name: str) -> PageHelp:
    """The page's help; every Django admin page shares one; others get the guide's start."""
    if view_name in PAGES:
        return PAGES[view_name]
    if view_name.startswith("admin:"):
        return ADMIN
    return GUIDE


def page_help(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``page_help`` and ``page_help_url`` for the base templates."""
    match = getattr(request, "resolver_match", None)
    topic = help_for(match.view_name if match else "")
    return {
        "page_help": topic,
        # the study viewer fills its own table (keyboard.ts), ? and Esc included
        "page_help_keys": topic.shortcuts + HELP_KEYS if topic.shortcuts else (),
        "page_help_url": f"{reverse('viewer:guide')}#{topic.anchor}",
    }
