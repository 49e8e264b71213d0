"""RFC 6238 TOTP written out in the test (not the portal's library), as an authenticator
app computes it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time


def totp_code(secret_base32: str, *, at: float | None = None, step: int = 30) -> str:
    key = base64.b32decode(secret_base32 + "=" * (-len(secret_base32) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"
