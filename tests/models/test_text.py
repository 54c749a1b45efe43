"""The text model: loading (built-in, folder, errors), scoring (perplexity) and training a tiny one that loads back.
Sampling from it is tested in tests/generate/test_sampling.py."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers.tiny_models import TEXT

from synthguard.errors import InputError
from synthguard.generate.sampling import generate_text
from synthguard.models.text import BUILTIN_TEXT_FOLDER, load_text_model, perplexity
from synthguard.training.text import TextTrainConfig, train_text_model


@pytest.fixture(scope="module")
def builtin():
    torch.set_num_threads(1)
    return load_text_model(None, device="cpu")


def test_builtin_model_ships_with_its_training_record(builtin):
    record = json.loads((BUILTIN_TEXT_FOLDER / "training.json").read_text())
    assert record["data"]["file"] == "tinyshakespeare.txt" and record["steps"] >= 1000
    assert record["heldout_perplexity_per_token"] < 60  # uniform over the vocabulary would be 1024
    assert builtin.name == "builtin" and builtin.source["training"]["steps"] == record["steps"]
    size = sum(p.stat().st_size for p in BUILTIN_TEXT_FOLDER.iterdir())
    assert size < 8_000_000


def test_perplexity_prefers_the_training_domain(builtin):
    shakespeare = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
                   "First Citizen:\nYou are all resolved rather to die than to famish?")
    code = "def f(x):\n    return {k: v for k, v in sorted(x.items())}  # 0x7f3a 1e-9 __init__"
    ppl_s, n = perplexity(builtin, [("", shakespeare)])
    ppl_c, _ = perplexity(builtin, [("", code)])
    assert n > 10 and math.isfinite(ppl_s) and ppl_s < ppl_c


def test_loading_errors_are_clear(tmp_path):
    with pytest.raises(InputError, match="no such model"):
        load_text_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no config.json"):
        load_text_model(str(tmp_path / "empty"))
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"\0" * 10)
    with pytest.raises(InputError):
        load_text_model(str(bad))
    fake_gguf = tmp_path / "model.gguf"
    fake_gguf.write_bytes(b"not a gguf file")
    with pytest.raises(InputError):
        load_text_model(str(fake_gguf))


def test_training_a_tiny_model_records_how(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT * 40)
    config = TextTrainConfig(vocab_size=280, steps=30, batch_size=4)
    architecture = {"n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 32}
    record = train_text_model(data, tmp_path / "lm", config, device=torch.device("cpu"), model_config=architecture,
                              command="test")
    assert record["model_config"] == architecture
    saved = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert {k: saved[k] for k in architecture} == architecture and "n_layer" not in record["config"]
    with pytest.raises(InputError, match="vocab_size"):
        train_text_model(data, tmp_path / "x", config, device=torch.device("cpu"), model_config={"vocab_size": 9})
    assert record["history"][0]["loss"] > record["final_loss"]
    assert (tmp_path / "lm" / "training.json").is_file()
    tm = load_text_model(str(tmp_path / "lm"), device="cpu")
    assert generate_text(tm, ["The river"], max_new_tokens=5, seed=0)[0].new_tokens > 0
    (tmp_path / "short.txt").write_text("too short")
    with pytest.raises(InputError, match="at least 10,000"):
        train_text_model(tmp_path / "short.txt", tmp_path / "x", config, device=torch.device("cpu"))
