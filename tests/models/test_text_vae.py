"""The sentence VAE: shapes, teacher-forcing targets, greedy decoding, the save_pretrained folder and its loader's
errors, and the shipped built-in weights."""

from __future__ import annotations

import json

import pytest
import torch

from synthguard.core.torch_utils import config_hash
from synthguard.errors import InputError
from synthguard.models.text_vae import BUILTIN_TEXT_VAE_FOLDER, TextVAE, load_text_vae

TINY = {"embed_dim": 16, "encoder_hidden": 16, "decoder_hidden": 24, "latent_dim": 4, "max_tokens": 12}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def tiny_model(seed: int = 0) -> TextVAE:
    torch.manual_seed(seed)
    return TextVAE(**TINY).eval()


def test_shapes_of_encoder_and_decoder():
    model = tiny_model()
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    lengths = torch.tensor([4, 2])
    mu, logvar = model.encode(ids, lengths)
    assert mu.shape == logvar.shape == (2, 4)
    inputs, targets = model.teacher_inputs(ids, lengths)
    assert inputs.tolist() == [[0, 5, 6, 7, 8], [0, 9, 10, 0, 0]]
    assert targets.tolist() == [[5, 6, 7, 8, 0], [9, 10, 0, 0, 0]]
    logits, state = model.decode_logits(mu, inputs)
    assert logits.shape == (2, 5, 1024) and state.shape == (1, 2, 24)


def test_padding_does_not_change_a_sentences_posterior():
    model = tiny_model()
    alone, _ = model.encode(torch.tensor([[9, 10]]), torch.tensor([2]))
    padded, _ = model.encode(torch.tensor([[5, 6, 7, 8], [9, 10, 3, 3]]), torch.tensor([4, 2]))
    assert torch.allclose(alone[0], padded[1], atol=1e-6)


def test_decoder_depends_on_z():
    model = tiny_model()
    inputs = torch.tensor([[0, 5, 6]])
    a, _ = model.decode_logits(torch.zeros(1, 4), inputs)
    b, _ = model.decode_logits(torch.ones(1, 4), inputs)
    assert not torch.allclose(a, b)


def test_greedy_stops_at_the_limit_and_never_picks_a_banned_token():
    model = tiny_model()
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    free = model.greedy(z, max_tokens=5)
    assert all(len(row) <= 5 for row in free)
    banned = torch.tensor(sorted({t for row in free for t in row}))
    again = model.greedy(z, max_tokens=5, banned=banned)
    assert not {t for row in again for t in row} & set(banned.tolist())


def test_bad_config_values_are_refused():
    with pytest.raises(InputError, match="latent_dim"):
        TextVAE(latent_dim=0)
    with pytest.raises(InputError, match="eos_token_id"):
        TextVAE(vocab_size=10, eos_token_id=10)


def test_a_saved_folder_loads_under_its_name_with_the_builtin_tokenizer(tmp_path):
    model = tiny_model()
    folder = tmp_path / "my-text-vae"
    model.save_pretrained(folder)
    vae = load_text_vae(folder)
    assert vae.name == "my-text-vae" and vae.version == "unknown" and vae.training is None
    assert config_hash(vae.model.config) == config_hash(model.config)
    for a, b in zip(vae.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
    ids = vae.encode_text("To be, or not to be")
    assert ids and vae.decode_ids(ids) == "To be, or not to be"
    # Tokens that decode to control characters (line breaks included) are never written.
    banned = set(vae.banned_ids.tolist())
    assert vae.encode_text("\n")[0] in banned and not banned & set(ids)


def test_the_loader_refuses_what_is_not_a_text_vae(tmp_path):
    with pytest.raises(InputError, match="no such text VAE folder"):
        load_text_vae(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a text VAE folder"):
        load_text_vae(tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"_class_name": "ConvVAE"}))
    with pytest.raises(InputError, match="ConvVAE"):
        load_text_vae(other)
    broken = tmp_path / "broken"
    tiny_model().save_pretrained(broken)
    weights = broken / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InputError, match="cannot load the text VAE"):
        load_text_vae(broken)


def test_the_shipped_weights_load_and_their_record_shows_a_used_latent():
    files = {p.name: p.stat().st_size for p in BUILTIN_TEXT_VAE_FOLDER.iterdir()}
    assert set(files) == {"config.json", "diffusion_pytorch_model.safetensors", "training.json"}
    assert sum(files.values()) < 4 * 1024 * 1024
    vae = load_text_vae()
    assert vae.name == "builtin-text-vae" and vae.version == "1"
    record = vae.training
    assert record["command"].startswith("synthguard train text-vae --data tinyshakespeare")
    held = record["heldout"]
    # Not collapsed: the posterior carries information and several dimensions are in use.
    assert held["kl_per_sentence"] > 1.0 and held["active_units"] >= 4
    assert held["reconstruction_nll_per_token"] < 5.0
    assert vae.model.config.vocab_size == len(vae.tokenizer) == 1024
