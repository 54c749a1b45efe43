"""The text flow: requests checked when made, outputs refused before sampling, each text marked while sampled and
stamped through the Stamper (signed sidecar binding the scheme and key id, ledger), streaming one text."""

from __future__ import annotations

import json

import c2pa
import pytest
import torch

from synthguard.errors import Hint, InputError
from synthguard.generate.text import TextReport, TextRequest, generate_texts, read_prompts
from synthguard.models.text import load_text_model
from synthguard.provenance.identity import IdentityStore
from synthguard.provenance.ledger import Ledger
from synthguard.stamp import Stamper


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def sidecar_assertions(path):
    with open(f"{path}.c2pa", "rb") as store, c2pa.Reader("application/c2pa", store) as reader:
        data = json.loads(reader.json())
    return {a["label"]: a["data"] for a in data["manifests"][data["active_manifest"]]["assertions"]}


def test_generate_texts_from_a_home_marks_signs_and_records_each(home, tmp_path):
    request = TextRequest(output=tmp_path / "texts", prompts=("ROMEO:", "JULIET:"), n=2, max_new_tokens=30, seed=1,
                          batch_size=2)
    done = []
    report = generate_texts(request, home, progress=done.append)
    assert isinstance(report, TextReport) and report.model == "builtin" and sum(done) == 4
    assert [o.file.name for o in report.outputs] == [f"text-{i:04d}.txt" for i in range(4)]
    secret = IdentityStore(home).load().text_watermark_secret()
    from synthguard.watermark.text import make_watermarker
    wm = make_watermarker("synthid", secret)
    tm = load_text_model(None, device="cpu")
    first = report.outputs[0]
    assert first.watermark == wm.settings() and first.sidecar.is_file() and first.new_tokens > 20
    assert wm.detect(first.file.read_text(), tm.tokenizer).detected
    assertions = sidecar_assertions(first.file)
    binding = assertions["c2pa.soft-binding"]
    assert binding["alg"] == wm.algorithm_id
    model = assertions["io.synthguard.model"]
    assert model["name"] == "builtin" and model["seed"] == 1 and model["parameters"]["watermark"] == wm.settings()
    with Ledger(home.ledger_path) as ledger:
        assert ledger.count() == 4
        assert len(ledger.find_by_soft_binding(bytes.fromhex(wm.key_id))) == 4
    assert report.to_dict()["outputs"][0]["file"] == str(first.file)


def test_an_unmarked_run_is_signed_and_says_nothing_about_a_watermark(home, tmp_path):
    report = generate_texts(TextRequest(output=tmp_path / "one.txt", prompts=("KING:",), max_new_tokens=12,
                                        watermark=False), home)
    [output] = report.outputs
    assert output.watermark is None and output.warning is None
    assert "c2pa.soft-binding" not in sidecar_assertions(output.file)


def test_short_marked_texts_carry_a_warning(home, tmp_path):
    [output] = generate_texts(TextRequest(output=tmp_path / "s.txt", prompts=("ROMEO:",), max_new_tokens=10),
                              home).outputs
    assert output.warning.startswith("only ") and "too short" in output.warning


def test_a_given_stamper_marks_with_its_own_text_watermarker(home, identity, tmp_path):
    with Stamper.from_home(home, identity=identity, image_watermark=False, text_watermark="kgw") as stamper:
        report = generate_texts(TextRequest(output=tmp_path / "k.txt", prompts=("ROMEO:",), max_new_tokens=30,
                                            scheme="kgw"), stamper)
        assert report.outputs[0].watermark["algorithm"] == stamper.text_watermarker.algorithm_id
        for request in (TextRequest(output=tmp_path / "x.txt"), TextRequest(output=tmp_path / "y.txt",
                                                                               watermark=False)):
            with pytest.raises(InputError, match="stamper"):
                generate_texts(request, stamper)
    assert not (tmp_path / "x.txt").exists()


def test_outputs_are_refused_before_the_model_loads(home, tmp_path):
    target = tmp_path / "exists.txt"
    target.write_text("keep me")
    with pytest.raises(InputError, match="already exists") as exc:
        generate_texts(TextRequest(output=target, model=str(tmp_path / "no-such-model")), home)
    assert exc.value.hint is Hint.OVERWRITE and target.read_text() == "keep me"
    with pytest.raises(InputError, match="names one file, but 2 texts"):
        generate_texts(TextRequest(output=tmp_path / "one.txt", n=2), home)
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("")
    with pytest.raises(InputError, match="is a file; several texts go into a folder"):
        generate_texts(TextRequest(output=not_a_folder, n=2), home)
    assert not IdentityStore(home).exists()


def test_streaming_hands_over_the_text_as_it_is_sampled(home, tmp_path):
    pieces = []
    report = generate_texts(TextRequest(output=tmp_path / "s.txt", prompts=("ROMEO:",), max_new_tokens=20), home,
                            stream=lambda text, end: pieces.append((text, end)))
    streamed = "".join(text for text, _ in pieces)
    assert pieces[-1][1] and streamed.startswith("ROMEO:")
    assert report.outputs[0].file.read_text().strip() in streamed
    with pytest.raises(InputError, match="one text"):
        generate_texts(TextRequest(output=tmp_path / "two", n=2), home, stream=lambda text, end: None)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"prompts": ()}, "prompts"),
    ({"prompts": (1,)}, "prompts"),
    ({"n": 0}, "n must be"),
    ({"batch_size": 0}, "batch_size"),
    ({"seed": -1}, "seed"),
    ({"threads": 0}, "threads"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"temperature": 0}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"scheme": "other"}, "unknown text watermark scheme"),
])
def test_text_requests_are_checked_when_made(tmp_path, kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        TextRequest(output=tmp_path / "t.txt", **kwargs)


def test_a_request_takes_one_prompt_or_many_and_counts_its_texts(tmp_path):
    assert TextRequest(output=tmp_path, prompts="ROMEO:").prompts == ("ROMEO:",)
    assert TextRequest(output=str(tmp_path), prompts=["a", "b"], n=3).count == 6
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ROMEO:\n\n  JULIET:  \n")
    assert read_prompts(prompts) == ("ROMEO:", "JULIET:")
    (tmp_path / "blank.txt").write_text("\n \n")
    for path, fragment in ((tmp_path / "blank.txt", "no prompt"), (tmp_path / "missing.txt", "no such file")):
        with pytest.raises(InputError, match=fragment):
            read_prompts(path)


def test_more_tokens_than_the_model_holds_are_refused_before_an_identity_is_made(home, tmp_path):
    from helpers.tiny_models import tiny_text_model

    tiny_text_model(tmp_path / "tiny-lm")  # a context of 256 tokens
    request = TextRequest(output=tmp_path / "o.txt", model=str(tmp_path / "tiny-lm"), prompts=("ROMEO:",),
                          max_new_tokens=300)
    with pytest.raises(InputError, match=r"context holds 256 tokens.*max_new_tokens 300"):
        generate_texts(request, home)
    assert not IdentityStore(home).exists() and not (tmp_path / "o.txt").exists()
