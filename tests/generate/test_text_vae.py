"""The text-VAE flow: requests checked when made, prior samples marked while sampled, interpolations decoded
greedily from the ends' posterior means (unmarked by construction, and signed saying so), each text stamped through
the Stamper (signed sidecar, model assertion, ledger), and the watermark in the sampling loop."""

from __future__ import annotations

import json

import c2pa
import pytest
import torch

from synthguard.core.torch_utils import config_hash
from synthguard.errors import InputError
from synthguard.generate.text import TextReport
from synthguard.generate.text_vae import (
    UNMARKED_GREEDY,
    Decoding,
    TextVAERequest,
    encode_sentence,
    generate_text_vae,
    interpolation_path,
    sample_ids,
)
from synthguard.models.text_vae import TextVAE, load_text_vae
from synthguard.provenance.identity import IdentityStore
from synthguard.provenance.ledger import Ledger
from synthguard.stamp import Stamper
from synthguard.watermark.text import make_watermarker

TINY = {"embed_dim": 16, "encoder_hidden": 16, "decoder_hidden": 24, "latent_dim": 4, "max_tokens": 12}
A, B = "To be, or not to be, that is the question:", "Now is the winter of our discontent"


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "tiny-text-vae"
    TextVAE(**TINY).save_pretrained(folder)
    return folder


def assertions(path):
    with open(f"{path}.c2pa", "rb") as store, c2pa.Reader("application/c2pa", store) as reader:
        data = json.loads(reader.json())
    return {a["label"]: a["data"] for a in data["manifests"][data["active_manifest"]]["assertions"]}


def test_requests_are_checked_when_made(tmp_path):
    out = tmp_path / "o"
    assert TextVAERequest(output=out).decoding is Decoding.SAMPLE
    assert TextVAERequest(output=out, interpolate=(A, B)).decoding is Decoding.GREEDY
    assert TextVAERequest(output=out, interpolate=(A, B), steps=5).count == 5
    for bad, match in (({"n": 0}, "n must"), ({"seed": -1}, "seed"), ({"interpolate": (A,)}, "two sentences"),
                       ({"interpolate": (A, "  ")}, "sentence B is empty"), ({"interpolate": (A, B), "steps": 1},
                                                                             "at least 2 steps"),
                       ({"decoding": "beam"}, "unknown decoding"), ({"temperature": 0}, "temperature"),
                       ({"scheme": "nope"}, "scheme"), ({"max_tokens": 0}, "max_tokens"),
                       ({"interpolate": (A, "x" * 5000)}, "over 4096 characters")):
        with pytest.raises(InputError, match=match):
            TextVAERequest(output=out, **bad)


def test_prior_samples_are_marked_signed_and_recorded(home, tiny, tmp_path):
    done = []
    report = generate_text_vae(TextVAERequest(output=tmp_path / "s", n=3, model=str(tiny), seed=7), home,
                               progress=done.append)
    assert isinstance(report, TextReport) and report.model == "tiny-text-vae" and sum(done) == 3
    wm = make_watermarker("synthid", IdentityStore(home).load().text_watermark_secret())
    vae = load_text_vae(tiny)
    for i, o in enumerate(report.outputs):
        assert o.file.name == f"text-{i:04d}.txt" and o.sidecar.is_file() and o.watermark == wm.settings()
        assert o.seed == 7 + i and 1 <= o.new_tokens <= 12
        assert o.warning.startswith(f"only {o.new_tokens} tokens")
        found = assertions(o.file)
        assert found["c2pa.soft-binding"]["alg"] == wm.algorithm_id
        model = found["io.synthguard.model"]
        assert model["name"] == "tiny-text-vae" and model["seed"] == 7 + i
        assert model["config_hash"] == config_hash(vae.model.config)
        params = model["parameters"]
        assert params["decoding"] == "sample" and params["z_seed"] == 7 + i and params["watermark"] == wm.settings()
        assert str(tmp_path) not in json.dumps(model)
    with Ledger(home.ledger_path) as ledger:
        assert len(ledger.find_by_soft_binding(bytes.fromhex(wm.key_id))) == 3
    # The same seed makes the same texts.
    again = generate_text_vae(TextVAERequest(output=tmp_path / "t", n=3, model=str(tiny), seed=7), home)
    assert [o.file.read_text() for o in again.outputs] == [o.file.read_text() for o in report.outputs]


def test_an_interpolation_decodes_the_ends_posterior_means_greedily_and_unmarked(home, tiny, tmp_path):
    report = generate_text_vae(TextVAERequest(output=tmp_path / "i", interpolate=(A, B), steps=4, model=str(tiny)),
                               home)
    vae = load_text_vae(tiny)
    mu_a, mu_b = encode_sentence(vae, A), encode_sentence(vae, B)
    texts = [o.file.read_text() for o in report.outputs]
    assert len(texts) == 4
    assert texts[0] == vae.decode_ids(vae.model.greedy(mu_a, banned=vae.banned_ids)[0])
    assert texts[-1] == vae.decode_ids(vae.model.greedy(mu_b, banned=vae.banned_ids)[0])
    path = interpolation_path(mu_a, mu_b, 4)
    assert torch.allclose(path[0], mu_a[0]) and torch.allclose(path[-1], mu_b[0])
    for i, o in enumerate(report.outputs):
        assert o.watermark is None and o.warning is None
        found = assertions(o.file)
        assert "c2pa.soft-binding" not in found
        params = found["io.synthguard.model"]["parameters"]
        assert params["watermark"] == UNMARKED_GREEDY and params["step"] == i and params["position"] == i / 3
        assert A not in json.dumps(params) and len(params["endpoints_sha256"]) == 2


def test_the_watermark_is_applied_while_sampling(home, tiny):
    vae = load_text_vae(tiny)
    wm = make_watermarker("synthid", b"k" * 32)
    z = torch.zeros(1, 4)
    plain = [sample_ids(vae.model, z, generator=torch.Generator().manual_seed(s), max_tokens=12) for s in range(4)]
    marked = [sample_ids(vae.model, z, generator=torch.Generator().manual_seed(s), max_tokens=12, watermarker=wm)
              for s in range(4)]
    assert plain != marked
    # Until the watermark's context (3 tokens) is there, nothing changes: same seed, same first tokens.
    assert all(p[:3] == m[:3] for p, m in zip(plain, marked, strict=True) if len(p) >= 3 and len(m) >= 3)

    calls = []

    class Spy:
        def processor(self, vocab_size, device):
            def mark(input_ids, scores):
                calls.append((input_ids.shape, vocab_size))
                return scores
            return mark

    ids = sample_ids(vae.model, z, generator=torch.Generator().manual_seed(0), watermarker=Spy(), max_tokens=12)
    # One call per drawn token (the end token included), each seeing the sentence's tokens so far.
    assert [shape[1] for shape, _ in calls][:len(ids)] == list(range(len(ids))) and calls[0][1] == 1024


def test_a_given_stamper_must_match_the_decoding(home, identity, tiny, tmp_path):
    with Stamper.from_home(home, identity=identity, image_watermark=False, text_watermark="synthid") as stamper:
        with pytest.raises(InputError, match="unmarked"):
            generate_text_vae(TextVAERequest(output=tmp_path / "g", interpolate=(A, B), model=str(tiny)), stamper)
        report = generate_text_vae(TextVAERequest(output=tmp_path / "one.txt", model=str(tiny)), stamper)
        assert report.outputs[0].watermark["key_id"] == stamper.text_watermarker.key_id
    assert not (tmp_path / "g").exists()


def test_outputs_are_refused_before_the_model_loads(home, tiny, tmp_path):
    with pytest.raises(InputError, match="names one file"):
        generate_text_vae(TextVAERequest(output=tmp_path / "x.txt", n=2, model=str(tiny)), home)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "text-0000.txt").write_text("mine")
    with pytest.raises(InputError, match="exists"):
        generate_text_vae(TextVAERequest(output=taken, model=str(tiny)), home)
    assert (taken / "text-0000.txt").read_text() == "mine"
    with pytest.raises(InputError, match="no such text VAE folder"):
        generate_text_vae(TextVAERequest(output=tmp_path / "m", model=str(tmp_path / "missing")), home)
