"""Keys: derived from the identity's secret, one per scheme, named publicly by a key id that reveals no key."""

from __future__ import annotations

import pytest

from synthguard.errors import InputError
from synthguard.provenance.identity import IdentityStore
from synthguard.watermark.text import make_watermarker
from synthguard.watermark.text.keys import derive_key, key_id
from synthguard.watermark.text.synthid import SynthIDText


def test_keys_come_from_the_identity(home):
    a = IdentityStore(home).init("A", "Org")
    secret = a.text_watermark_secret()
    assert secret == IdentityStore(home).load().text_watermark_secret()
    wm = make_watermarker("synthid", secret)
    assert wm.key_id == key_id(derive_key(secret, "synthid")) and len(wm.key_id) == 16
    assert wm.keys != SynthIDText(derive_key(b"other" * 8, "synthid")).keys
    assert "key" not in " ".join(map(str, wm.settings().values())).lower() or "key_id" in wm.settings()
    with pytest.raises(InputError):
        make_watermarker("nope", secret)
