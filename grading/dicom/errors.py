"""Errors raised by the DICOM layer."""

from __future__ import annotations

_MAX_REASON_CHARS = 300


def _one_line(text: str, *, limit: int = _MAX_REASON_CHARS) -> str:
    """Collapse ``text`` to one line of at most ``limit`` characters."""
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[: limit - 3].rstrip() + "..."
    return line


class DicomReadError(Exception):
    """A file that could not be read as a greyscale MR image.

    ``str(error)`` is always one line, ``"<name>: <reason>"``, where ``name``
    is the file's path (or the name the caller gave) and ``reason`` says
    why, e.g. ``"scan.dcm: not an MR image (Modality 'CT')"``.
    """

    def __init__(self, name: str, reason: str) -> None:
        self.name = _one_line(name, limit=1000) or "<unnamed>"
        self.reason = _one_line(reason) or "unreadable"
        super().__init__(f"{self.name}: {self.reason}")

    def __reduce__(self) -> tuple[type[DicomReadError], tuple[str, str]]:
        # Keep the two-argument constructor working across pickling (Celery, multiprocessing).
        return (type(self), (self.name, self.reason))
