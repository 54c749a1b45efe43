"""KGW: the green lists detection reads are transformers' own."""

from __future__ import annotations

import numpy as np
import torch

from synthguard.watermark.text.keys import derive_key
from synthguard.watermark.text.kgw import KGWText


def test_kgw_green_lists_are_transformers_own(tm):
    wm = KGWText(derive_key(b"k" * 32, "kgw"))
    wm.bind_vocab(tm.vocab_size)
    proc = wm.processor(tm.vocab_size)
    for prev in (0, 7, 123):
        green = set(proc._get_greenlist_ids(torch.tensor([5, prev])).tolist())
        ours = np.unpackbits(wm._green(prev, tm.vocab_size))[:tm.vocab_size]
        assert set(np.flatnonzero(ours).tolist()) == green
        hits = wm.hits([prev, 3, prev, 4]).hits  # positions (prev, 3), (3, prev), (prev, 4), all distinct
        assert hits[0] == (3 in green) and hits[2] == (4 in green)
