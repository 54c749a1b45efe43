"""The sentence VAE through the CLI: generate (prior samples marked, interpolations greedy and unmarked, both signed
and detected as AI-generated), train and eval on a tiny corpus, and bad usage answered with exit 2, no traceback."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.models.text_vae import TextVAE

TINY = {"embed_dim": 16, "encoder_hidden": 16, "decoder_hidden": 24, "latent_dim": 4, "max_tokens": 12}
LINES = ["To be, or not to be, that is the question:", "Now is the winter of our discontent",
         "A horse! a horse! my kingdom for a horse!", "All the world's a stage,", "O Romeo, Romeo! wherefore art thou",
         "Friends, Romans, countrymen, lend me your ears;", "The quality of mercy is not strain'd,",
         "Is this a dagger which I see before me,"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def tiny(tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "tiny-text-vae"
    TextVAE(**TINY).save_pretrained(folder)
    return folder


def detect_json(path):
    result = run("detect", "--json", "--threads", "1", path)
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_prior_samples_and_an_interpolation_are_signed_and_detected(tiny, tmp_path):
    result = run("generate", "--backend", "text-vae", "--model", tiny, "-n", "2", "--seed", "3", "--threads", "1",
                 "-o", tmp_path / "s", "--json")
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.output.splitlines()[-1])["outputs"]
    assert [o["seed"] for o in outputs] == [3, 4] and all(o["watermark"] for o in outputs)
    [data] = detect_json(outputs[0]["file"])
    assert data["verdict"]["label"] == "ai-generated"
    assert data["provenance"]["state"] == "trusted" and data["provenance"]["source"] == "sidecar"
    assert data["provenance"]["model"]["name"] == "tiny-text-vae"

    result = run("generate", "--backend", "text-vae", "--model", tiny, "--interpolate", "To be, or not to be",
                 "A horse! a horse!", "--steps", "3", "--threads", "1", "-o", tmp_path / "i")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "i").iterdir()) == [
        "text-0000.txt", "text-0000.txt.c2pa", "text-0001.txt", "text-0001.txt.c2pa", "text-0002.txt",
        "text-0002.txt.c2pa"]
    assert "text-0000.txt: " in result.output and "unmarked by construction" in result.output
    [data] = detect_json(tmp_path / "i" / "text-0001.txt")
    assert data["verdict"]["label"] == "ai-generated" and data["provenance"]["state"] == "trusted"


@pytest.mark.parametrize("args, message", [
    (["--prompt", "ROMEO:"], "--prompt applies to --backend text only"),
    (["-n", "2", "--interpolate", "a b", "c d"], "give one of them"),
    (["--engine", "ray"], "--engine ray"),
    (["--model", "missing-folder"], "no such text VAE folder"),
    (["--interpolate", "", "x"], "sentence A is empty"),
])
def test_bad_usage_exits_2_without_a_traceback(tmp_path, args, message):
    result = run("generate", "--backend", "text-vae", *args, "-o", tmp_path / "x")
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_decoding_applies_to_text_vae_only(tmp_path):
    result = run("generate", "--backend", "gan", "--decoding", "greedy", "-o", tmp_path / "x")
    assert result.exit_code == 2 and "--decoding applies to --backend text-vae only" in result.output


def test_train_and_eval_on_a_tiny_corpus(tmp_path):
    corpus = tmp_path / "lines.txt"
    corpus.write_text("\n".join(LINES * 5))
    out = tmp_path / "model"
    result = run("train", "text-vae", "--data", corpus, "--steps", "4", "--batch-size", "4", "--latent-dim", "4",
                 "--hidden", "24", "--kl-warmup", "2", "--threads", "1", "--device", "cpu", "-o", out)
    assert result.exit_code == 0, result.output
    assert "active units" in result.output and (out / "training.json").is_file()
    record = json.loads((out / "training.json").read_text())
    assert record["command"].startswith("synthguard train text-vae --data lines.txt --steps 4")
    result = run("train", "text-vae", "--data", corpus, "--steps", "1", "-o", out)
    assert result.exit_code == 2 and "not empty" in result.output

    result = run("eval", "text-vae", "--model", out, "--data", corpus, "--pairs", "2", "--steps", "3",
                 "--iw-samples", "2", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "model" and data["data_matches_training"] is True
    assert data["heldout"]["sentences"] == 2 and data["importance_weighted"]["samples"] == 2
    interp = data["interpolation"]
    assert interp["pairs"] == 2 and 0 <= interp["intermediate_well_formed"] <= 1
    assert len(interp["examples"][0]) == 3
    # The importance-weighted bound is no looser than the ELBO's (up to sampling noise on two sentences).
    assert data["importance_weighted"]["nll_per_sentence"] <= -data["heldout"]["elbo_per_sentence"] + 1.0
    result = run("eval", "text-vae", "--model", out, "--data", tmp_path / "nope.txt")
    assert result.exit_code == 2 and "Traceback" not in result.output
