"""``multipart/related`` bodies (RFC 2387) as DICOMweb uses them (PS3.18 8.6.1).

Pure functions on bytes: :func:`multipart_encode` builds a body from parts and
:func:`multipart_decode` splits one. Nothing here imports Django.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MultipartError",
    "accepted_part_types",
    "Part",
    "media_type_params",
    "multipart_decode",
    "multipart_chunks",
    "multipart_encode",
    "multipart_type",
    "new_boundary",
]


class MultipartError(ValueError):
    """The body or its Content-Type is not a usable multipart/related message."""


@dataclass(frozen=True)
class Part:
    """One body part: its headers (names lower-cased) and its bytes."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def media_type_params(header: str) -> tuple[str, dict[str, str]]:
    """``'multipart/related; type="application/dicom"; boundary=x'`` ->
    (``'multipart/related'``, ``{'type': 'application/dicom', 'boundary': 'x'}``).
    Parameter names are lower-cased; quotes around values are removed."""
    pieces = _split_params(header)
    media_type = pieces[0].strip().lower() if pieces else ""
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, sep, value = piece.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params[name.strip().lower()] = value
    return media_type, params


def _split_params(header: str) -> list[str]:
    """Split on ``;`` outside double quotes."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    out.append("".join(current))
    return [p for p in (s.strip() for s in out) if p]


def multipart_encode(
    bodies: Iterable[bytes], *, part_type: str, boundary: str | None = None
) -> tuple[bytes, str]:
    """A multipart/related body with each of ``bodies`` as a part of ``part_type``.

    Returns (body, Content-Type header value for the whole message). The boundary is
    random (a part that contains it by chance is practically impossible: 32 hex
    digits), or ``boundary`` when given.
    """
    boundary = boundary or f"onfh-{secrets.token_hex(16)}"
    delimiter = f"--{boundary}".encode()
    header = f"Content-Type: {part_type}\r\n\r\n".encode()
    chunks: list[bytes] = []
    for body in bodies:
        chunks += [delimiter, b"\r\n", header, body, b"\r\n"]
    chunks += [delimiter, b"--\r\n"]
    kind = part_type.split(";")[0].strip()
    return b"".join(chunks), f'multipart/related; type="{kind}"; boundary={boundary}'


def multipart_decode(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/related ``body`` whose Content-Type header is
    ``content_type`` (it must carry the ``boundary`` parameter). Raises
    :class:`MultipartError` when the type or the framing is wrong."""
    media_type, params = media_type_params(content_type)
    if not media_type.startswith("multipart/"):
        raise MultipartError(f"expected a multipart/related body, got {media_type or 'none'}")
    boundary = params.get("boundary", "")
    if not boundary:
        raise MultipartError("the Content-Type has no boundary parameter")
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start < 0:
        raise MultipartError("the body has no part delimiter")
    parts: list[Part] = []
    position = start + len(delimiter)
    while True:
        if body[position : position + 2] == b"--":
            return parts  # the close delimiter
        # Skip transport padding and the CRLF after the delimiter.
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise MultipartError("a delimiter is not followed by CRLF")
        headers_end = body.find(b"\r\n\r\n", line_end)
        if headers_end < 0 and body[line_end + 2 : line_end + 4] == b"\r\n":
            headers_end = line_end
        if headers_end < 0:
            raise MultipartError("a part has no end of headers")
        headers = _parse_headers(body[line_end + 2 : headers_end])
        content_start = headers_end + 4
        next_delimiter = body.find(b"\r\n" + delimiter, content_start)
        if next_delimiter < 0:
            raise MultipartError("the body ends without a close delimiter")
        parts.append(Part(body=body[content_start:next_delimiter], headers=headers))
        position = next_delimiter + 2 + len(delimiter)


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in block.split(b"\r\n"):
        line = raw.decode("latin-1")
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def accepted_part_types(accept: str) -> Sequence[tuple[str, dict[str, str]]]:
    """Each media range of an Accept header with its parameters, in order."""
    out: list[tuple[str, dict[str, str]]] = []
    depth = 0
    current: list[str] = []
    for char in accept:
        if char == '"':
            depth ^= 1
        if char == "," and not depth:
            out.append(media_type_params("".join(current)))
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        out.append(media_type_params("".join(current)))
    return out


def multipart_chunks(bodies: Iterable[bytes], *, part_type: str, boundary: str) -> Iterator[bytes]:
    """The same message as :func:`multipart_encode`, part by part, so a server can send
    a study without holding it in memory (Content-Type from :func:`multipart_type`)."""
    delimiter = f"--{boundary}\r\n".encode()
    header = f"Content-Type: {part_type}\r\n\r\n".encode()
    for body in bodies:
        yield delimiter + header
        yield body
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def multipart_type(part_type: str, boundary: str) -> str:
    kind = part_type.split(";")[0].strip()
    return f'multipart/related; type="{kind}"; boundary={boundary}'


def new_boundary() -> str:
    return f"onfh-{secrets.token_hex(16)}"
