"""Training the sentence VAE: the KL schedule, the sentence split, the loss terms, a few steps lowering the loss,
the saved folder with its record, and refused settings."""

from __future__ import annotations

import json
import math

import pytest
import torch

from synthguard.errors import InputError
from synthguard.models.text_vae import TextVAE, load_text_vae
from synthguard.training.text_vae import (
    KLSchedule,
    TextVAETrainConfig,
    builtin_tokenizer,
    elbo_terms,
    heldout_figures,
    kl_weight,
    pad_batch,
    split_sentences,
    train_text_vae,
    training_loss,
)

TINY = {"embed_dim": 16, "encoder_hidden": 16, "decoder_hidden": 24, "latent_dim": 4}
LINES = ["To be, or not to be, that is the question:", "Now is the winter of our discontent",
         "A horse! a horse! my kingdom for a horse!", "All the world's a stage,", "O Romeo, Romeo! wherefore art thou",
         "Friends, Romans, countrymen, lend me your ears;", "The quality of mercy is not strain'd,", "Hi", "",
         "Is this a dagger which I see before me,"]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(LINES * 4))
    return path


def test_kl_weight_schedules():
    assert kl_weight(0, "logistic", 100) == pytest.approx(1 / (1 + math.exp(5)))
    assert kl_weight(50, KLSchedule.LOGISTIC, 100) == pytest.approx(0.5)
    assert kl_weight(100, "logistic", 100) == kl_weight(5000, "logistic", 100) == 1.0
    values = [kl_weight(s, "logistic", 100) for s in range(0, 101, 10)]
    assert values == sorted(values) and values[0] < 0.01
    assert kl_weight(25, "linear", 100) == 0.25
    assert kl_weight(0, "none", 100) == kl_weight(0, "linear", 0) == 1.0
    with pytest.raises(InputError, match="KL schedule"):
        kl_weight(0, "cosine", 100)


def test_split_keeps_lines_in_the_token_range_and_holds_out_the_last_ones():
    tok = builtin_tokenizer()
    data = split_sentences("\n".join(LINES), tok, min_tokens=4, max_tokens=30, holdout=0.2)
    assert "Hi" not in data.heldout_text and data.lines == 9
    # 8 lines in range: int(8 * 0.2) = 1 held out, the last.
    assert data.heldout_text == ("Is this a dagger which I see before me,",)
    assert len(data.train) == 7 and all(4 <= len(s) <= 30 for s in data.train + data.heldout)
    with pytest.raises(InputError, match="at least 3"):
        split_sentences("Hi\nHo", tok, min_tokens=4, max_tokens=30, holdout=0.1)


def test_elbo_terms_and_free_bits():
    torch.manual_seed(0)
    model = TextVAE(**TINY)
    ids, lengths = pad_batch([[5, 6, 7], [8, 9]], 0)
    with torch.no_grad():
        terms = elbo_terms(model, ids, lengths, generator=torch.Generator().manual_seed(0))
    assert terms.nll.shape == terms.kl.shape == (2,) and terms.tokens.tolist() == [4, 3]
    assert (terms.nll > 0).all() and (terms.kl >= 0).all() and terms.kl_per_dim.shape == (4,)
    assert float(training_loss(terms, 0.0, 0.0)) == pytest.approx(float(terms.nll.mean()))
    # Free bits: every dimension counts as at least that much KL.
    assert float(training_loss(terms, 1.0, 100.0)) >= float(terms.nll.mean()) + 4 * 100.0 - 1e-3


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = TextVAE(**TINY)
    tok = builtin_tokenizer()
    ids, lengths = pad_batch([tok(line)["input_ids"] for line in LINES[:4]], 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = training_loss(elbo_terms(model, ids, lengths, generator=torch.Generator().manual_seed(0)), 0.5, 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_train_writes_the_model_and_its_record(corpus, tmp_path):
    out = tmp_path / "model"
    config = TextVAETrainConfig(steps=6, batch_size=4, kl_warmup=4, log_every=3, free_bits=0.1)
    seen = []
    record = train_text_vae(corpus, out, config, device=torch.device("cpu"), model_config=TINY,
                            command="test", progress=lambda step, last: seen.append(step))
    assert seen == list(range(1, 7))
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors",
                                                     "training.json"]
    saved = json.loads((out / "training.json").read_text())
    assert saved["command"] == "test" and saved["config"]["kl_schedule"] == "logistic"
    assert [h["step"] for h in saved["history"]] == [3, 6] and saved["history"][0]["beta"] < 1
    assert saved["data"]["heldout_sentences"] >= 1 and len(saved["data"]["sha256"]) == 64
    held = record["heldout"]
    assert held["kl_per_sentence"] > 0 and 0 <= held["active_units"] <= 4
    assert held["perplexity_bound_per_token"] == pytest.approx(
        math.exp(-held["elbo_per_sentence"] * held["sentences"] / held["tokens"]))
    vae = load_text_vae(out)
    assert vae.version == "1" and vae.model.config.max_tokens == config.max_tokens + 2
    # The same seed gives the same model.
    again = train_text_vae(corpus, tmp_path / "again", config, device=torch.device("cpu"), model_config=TINY)
    assert again["heldout"] == held
    assert heldout_figures(vae.model, [[5, 6, 7]])["sentences"] == 1


def test_refused_settings_and_outputs(corpus, tmp_path):
    with pytest.raises(InputError, match="no architecture setting 'vocab_size'"):
        train_text_vae(corpus, tmp_path / "a", TextVAETrainConfig(steps=1), device=torch.device("cpu"),
                       model_config={"vocab_size": 10})
    with pytest.raises(InputError, match="word_dropout"):
        TextVAETrainConfig(word_dropout=1.0)
    with pytest.raises(InputError, match="min_tokens"):
        TextVAETrainConfig(min_tokens=10, max_tokens=5)
    with pytest.raises(InputError, match="KL schedule"):
        TextVAETrainConfig(kl_schedule="sometimes")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        train_text_vae(corpus, tmp_path / "full", TextVAETrainConfig(steps=1), device=torch.device("cpu"))
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(InputError, match="not UTF-8"):
        train_text_vae(binary, tmp_path / "b", TextVAETrainConfig(steps=1), device=torch.device("cpu"))
