"""Keys of the text watermarks: one key per scheme from the identity's secret, its public name, the keyed
pseudo-random int64 streams the schemes draw their parameters from, and transformers' SynthID token hash.

Keys come from the user's SynthGuard identity (``Identity.text_watermark_secret``), never from a library default.
"""

from __future__ import annotations

import hashlib
import hmac

import torch

# The multiplier of transformers' SynthID linear congruential hash (int64, wrapping).
LCG_MULTIPLIER = 6364136223846793005


def derive_key(secret: bytes, scheme: str) -> bytes:
    """32 key bytes for one scheme from the identity's secret (HMAC-SHA256, domain separated)."""
    return hmac.new(secret, b"synthguard text watermark/" + scheme.encode(), hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A public name for a key (16 hex digits): safe to print, log and put in a manifest."""
    return hashlib.sha256(b"synthguard key id/" + key).hexdigest()[:16]


def int64s(key: bytes, label: str, n: int) -> list[int]:
    """``n`` non-negative int64 values keyed by ``key`` and named by ``label`` (HMAC-SHA256 in counter mode, four
    values per block, the sign bit cleared)."""
    out = []
    counter = 0
    while len(out) < n:
        block = hmac.new(key, f"{label}/{counter}".encode(), hashlib.sha256).digest()
        for i in range(0, 32, 8):
            out.append(int.from_bytes(block[i:i + 8], "big", signed=True) & 0x7FFF_FFFF_FFFF_FFFF)
        counter += 1
    return out[:n]


def accumulate_hash(current: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """transformers' SynthID hash: an int64 linear congruential step per element of ``data``'s last axis
    (wrapping arithmetic), folded into ``current`` (broadcast against ``data.shape[:-1]``)."""
    for i in range(data.shape[-1]):
        current = (current + data[..., i]) * LCG_MULTIPLIER + 1
    return current
