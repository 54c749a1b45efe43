"""Statistical text watermarks keyed by the user's identity: SynthID-Text tournament sampling (``synthid``, the
default) and the Kirchenbauer et al. green list (``kgw``), both behind ``TextWatermarker``.

Modules: ``base`` (the interface and its results), ``keys`` (per-scheme keys and keyed streams), ``stats`` (exact
tails), ``synthid``, ``kgw``, ``windows`` (a marked passage inside a longer text), ``attacks`` (edits a text
meets) and ``human`` (human reference text for calibration).
"""

from __future__ import annotations

from synthguard.errors import InputError
from synthguard.watermark.text.base import DEFAULT_MAX_P_VALUE, KeyCalibration, TextWatermarker, TextWatermarkResult
from synthguard.watermark.text.keys import derive_key, key_id
from synthguard.watermark.text.kgw import KGWText
from synthguard.watermark.text.stats import binomial_sf, lattice_sf
from synthguard.watermark.text.synthid import DEFAULT_SYNTHID_NGRAM, SynthIDText
from synthguard.watermark.text.windows import WindowSearch, detect_windows

SCHEMES: dict[str, type[TextWatermarker]] = {"synthid": SynthIDText, "kgw": KGWText}


def make_watermarker(scheme: str, secret: bytes, **kwargs) -> TextWatermarker:
    """The named scheme ("synthid", the default, or "kgw") keyed from an identity secret."""
    try:
        cls = SCHEMES[scheme]
    except KeyError:
        raise InputError(f"unknown text watermark scheme {scheme!r}: choose from {sorted(SCHEMES)}") from None
    return cls(derive_key(secret, scheme), **kwargs)


__all__ = [
    "DEFAULT_MAX_P_VALUE",
    "DEFAULT_SYNTHID_NGRAM",
    "SCHEMES",
    "KGWText",
    "KeyCalibration",
    "SynthIDText",
    "TextWatermarkResult",
    "TextWatermarker",
    "WindowSearch",
    "binomial_sf",
    "derive_key",
    "detect_windows",
    "key_id",
    "lattice_sf",
    "make_watermarker",
]
