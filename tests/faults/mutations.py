"""Seeded, deterministic mutations of real source files for the fault tests (pure functions)."""
from __future__ import annotations

import hashlib
import random

TRUNCATE_AT = (0.5, 0.9, 0.999)
FLIPS = 3


def seed_of(*parts) -> int:
    """A stable seed from the case's name (``hash()`` changes between processes)."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def truncate(data: bytes, fraction: float) -> bytes:
    return data[:max(1, int(len(data) * fraction))]


def flip_bytes(data: bytes, seed: int, count: int = FLIPS, *, head: int | None = None) -> bytes:
    """Invert ``count`` bytes at seeded offsets (within the first ``head`` bytes if given)."""
    rng = random.Random(seed)
    out = bytearray(data)
    limit = min(len(out), head or len(out))
    for _ in range(count):
        at = rng.randrange(limit)
        out[at] ^= 0xFF
    return bytes(out)


def line_endings(data: bytes, style: str, seed: int = 0) -> bytes:
    """``crlf``: every line ends CRLF; ``cr``: every line ends CR; ``mixed``: LF, CRLF and CR
    chosen per line by a seeded draw."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if style == "crlf":
        return b"\r\n".join(lines)
    if style == "cr":
        return b"\r".join(lines)
    rng = random.Random(seed)
    ends = [rng.choice((b"\n", b"\r\n", b"\r")) for _ in lines[:-1]]
    return b"".join(line + end for line, end in zip(lines[:-1], ends, strict=True)) + lines[-1]


def latin1_line(data: bytes, seed: int) -> bytes:
    """Put one Latin-1 byte (``é`` as 0xE9, invalid UTF-8) into one seeded data line."""
    lines = data.split(b"\n")
    rng = random.Random(seed)
    at = rng.randrange(min(len(lines) - 1, 3), max(len(lines) - 1, 4)) if len(lines) > 4 else 0
    line = lines[at]
    cut = rng.randrange(len(line) + 1)
    lines[at] = line[:cut] + b"\xe9" + line[cut:]
    return b"\n".join(lines)


def reencode(data: bytes, encoding: str) -> bytes:
    """The whole file re-encoded (UTF-16 writes a byte-order mark)."""
    return data.decode("utf-8", "replace").encode(encoding)
