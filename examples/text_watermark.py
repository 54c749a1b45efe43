"""Library use: watermark text while generating it, then find the mark from the text alone, also inside a longer
human document.

    python examples/text_watermark.py ["PROMPT"]

Uses the built-in Shakespeare model and the SynthGuard identity in SYNTHGUARD_HOME (created if missing). For a real
model, give `load_text_model` a folder, a .gguf file or a hub id.
"""

from __future__ import annotations

import sys

import torch

from synthguard.core.home import Home
from synthguard.generate.sampling import generate_text
from synthguard.models.text import load_text_model
from synthguard.provenance.identity import IdentityStore
from synthguard.watermark.text import detect_windows, make_watermarker


def main(prompt: str) -> None:
    torch.set_num_threads(1)
    tm = load_text_model()  # the built-in model
    identity, _ = IdentityStore(Home.from_env()).ensure()
    wm = make_watermarker("synthid", identity.text_watermark_secret())
    sample = generate_text(tm, [prompt], max_new_tokens=80, top_p=0.95, seed=0, watermarker=wm)[0]
    print(prompt + sample.text)
    result = wm.detect(sample.text, tm.tokenizer)
    print(f"\nwhole text: detected={result.detected} z={result.z:.1f} p={result.p_value:.1e} "
          f"({result.tokens_scored} tokens scored, key {result.key_id})")

    human = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
             "want of a wife. ") * 6
    document = human + "\n" + sample.text + "\n" + human
    ids, offsets = tm.encode_with_offsets(document)
    found = detect_windows(wm, ids, offsets)
    start, end = found.span if found.span else (0, 0)
    print(f"inside a human document: detected={found.detected} p={found.p_value:.1e}, characters {start}-{end} "
          f"(the passage is at {len(human) + 1}-{len(human) + 1 + len(sample.text)})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ROMEO:")
