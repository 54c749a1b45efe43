"""The 48-bit SynthGuard watermark payload, shared by every medium: a 3-bit layout version, 1 AI bit and a 44-bit
random asset key (the key a ledger looks the manifest up by; the AI bit marks the content itself where no ledger is
reachable). The payload is not keyed to a signer: anyone can read it, and anyone with SynthGuard can write it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from synthguard.errors import InputError, WatermarkError

PAYLOAD_LAYOUT_VERSION = 1
PAYLOAD_BITS = 48
_KEY_BITS = 44


@dataclass(frozen=True)
class Payload:
    version: int
    ai_generated: bool
    key: int

    def to_bytes(self) -> bytes:
        value = (self.version << 45) | (int(self.ai_generated) << 44) | self.key
        return value.to_bytes(PAYLOAD_BITS // 8, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Payload:
        if len(data) != PAYLOAD_BITS // 8:
            raise InputError(f"a payload is {PAYLOAD_BITS // 8} bytes, got {len(data)}")
        value = int.from_bytes(data, "big")
        return cls(value >> 45, bool((value >> 44) & 1), value & ((1 << _KEY_BITS) - 1))

    @classmethod
    def new(cls, ai_generated: bool, taken: Callable[[bytes], bool] | None = None) -> Payload:
        """A fresh payload; ``taken(payload_bytes)`` says whether a key is already in use (a ledger lookup)."""
        for _ in range(100):
            payload = cls(PAYLOAD_LAYOUT_VERSION, ai_generated, secrets.randbits(_KEY_BITS))
            if taken is None or not taken(payload.to_bytes()):
                return payload
        raise WatermarkError("could not draw an unused watermark payload (ledger full of collisions?)")


def declared_ai(payload: bytes) -> bool | None:
    """What a decoded payload's AI bit says, or None when it was written in a layout this version does not know (the
    bit may mean something else there)."""
    decoded = Payload.from_bytes(payload)
    return decoded.ai_generated if decoded.version == PAYLOAD_LAYOUT_VERSION else None
