"""The text flow: requests checked when made, outputs refused before sampling, each text marked while sampled and
stamped through the Stamper (signed sidecar binding the scheme and key id, ledger), streaming one text."""

from __future__ import annotations

import hashlib
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


def test_a_prompt_that_fills_the_context_is_refused_before_an_identity_is_made(home, tmp_path):
    from helpers.tiny_models import tiny_text_model

    tiny_text_model(tmp_path / "tiny-lm")  # a context of 256 tokens
    request = TextRequest(output=tmp_path / "o.txt", model=str(tmp_path / "tiny-lm"), prompts=("ROMEO: " * 300,),
                          max_new_tokens=5)
    with pytest.raises(InputError, match=r"context holds 256 tokens.*shorten the prompt"):
        generate_texts(request, home)
    assert not IdentityStore(home).exists() and not (tmp_path / "o.txt").exists()


# --- chat templates -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chat_model_folder(tmp_path_factory):
    from helpers.tiny_chat import tiny_chat_model

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("chat-lm")
    tiny_chat_model(folder)
    return folder


def force_in_sampler(monkeypatch, force, calls=None):
    """Add ``force(input_ids, scores)`` after the sampler of the first ``calls`` batches sampled (None: all)."""
    from synthguard.generate import sampling

    real, made = sampling.build_sampler, []

    def build(**kwargs):
        made.append(1)
        return real(**kwargs) + ([force] if calls is None or len(made) <= calls else [])

    monkeypatch.setattr(sampling, "build_sampler", build)


def test_a_chat_model_answers_through_its_template_by_default_and_the_answer_alone_is_detected(
        home, tmp_path, chat_model_folder, monkeypatch):
    from helpers.tiny_chat import CHAT_TEMPLATE

    from synthguard.watermark.text import make_watermarker

    rendered = []
    from synthguard.generate import sampling

    real = sampling.generate_text
    monkeypatch.setattr("synthguard.generate.text.generate_text",
                        lambda tm, prompts, **kw: rendered.extend(prompts) or real(tm, prompts, **kw))
    pieces = []
    report = generate_texts(TextRequest(output=tmp_path / "a.txt", model=str(chat_model_folder),
                                        prompts=("ROMEO:",), max_new_tokens=60, top_p=0.95), home,
                            stream=lambda text, end: pieces.append(text))
    assert report.chat and report.to_dict()["chat"] is True
    assert "".join(pieces) == report.outputs[0].file.read_text()  # the answer streamed, not the template
    assert rendered == ["<|im_start|>system\nYou are a tiny test assistant.<|im_end|>\n<|im_start|>user\nROMEO:"
                        "<|im_end|>\n<|im_start|>assistant\n"]
    [output] = report.outputs
    answer = output.file.read_text()
    assert "<|im_start|>" not in answer and "tiny test assistant" not in answer and output.new_tokens == 60
    params = sidecar_assertions(output.file)["io.synthguard.model"]["parameters"]
    assert params["chat_template_sha256"] == hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()
    assert "system_sha256" not in params and params["prompt_sha256"] == hashlib.sha256(b"ROMEO:").hexdigest()
    # Detection reads the answer alone under the generating model's tokenizer: no template token in front.
    wm = make_watermarker("synthid", IdentityStore(home).load().text_watermark_secret())
    tm = load_text_model(str(chat_model_folder), device="cpu")
    result = wm.detect(answer, tm.tokenizer)
    assert result.detected and result.tokens_scored > 45, result


def test_a_system_message_replaces_the_default_and_is_recorded_as_a_hash(home, tmp_path, chat_model_folder,
                                                                         monkeypatch):
    rendered = []
    from synthguard.generate import sampling

    real = sampling.generate_text
    monkeypatch.setattr("synthguard.generate.text.generate_text",
                        lambda tm, prompts, **kw: rendered.extend(prompts) or real(tm, prompts, **kw))
    report = generate_texts(TextRequest(output=tmp_path / "s.txt", model=str(chat_model_folder), prompts=("Hi",),
                                        system="Be brief.", max_new_tokens=5), home)
    assert rendered[0].startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi")
    params = sidecar_assertions(report.outputs[0].file)["io.synthguard.model"]["parameters"]
    assert params["system_sha256"] == hashlib.sha256(b"Be brief.").hexdigest()


def test_a_chat_answer_ends_at_the_end_of_turn_token(home, tmp_path, chat_model_folder, monkeypatch):
    tm = load_text_model(str(chat_model_folder), device="cpu")
    end_of_turn = tm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    start = len(tm.encode(tm.render_chat("ROMEO:")))

    def end_turn_at_fourth(input_ids, scores):
        if input_ids.shape[1] - start == 3:
            scores = torch.full_like(scores, -torch.inf)
            scores[:, end_of_turn] = 0.0
        return scores

    force_in_sampler(monkeypatch, end_turn_at_fourth)
    [chat] = generate_texts(TextRequest(output=tmp_path / "c.txt", model=str(chat_model_folder),
                                        prompts=("ROMEO:",), max_new_tokens=30), home).outputs
    # The same tokens sampled with chat off: the end of turn is no end of text there.
    [plain] = generate_texts(TextRequest(output=tmp_path / "p.txt", model=str(chat_model_folder),
                                         prompts=(tm.render_chat("ROMEO:"),), max_new_tokens=30, chat=False),
                             home).outputs
    assert chat.new_tokens == 3 and plain.new_tokens == 30
    assert plain.file.read_text().startswith(chat.file.read_text())


def test_more_tokens_than_the_model_holds_slide_and_the_manifest_names_the_folder_not_its_path(
        home, tmp_path, chat_model_folder, monkeypatch):
    def no_end(input_ids, scores):
        return scores.index_fill(1, torch.tensor([0]), -torch.inf)  # the end token (id 0) ruled out

    force_in_sampler(monkeypatch, no_end)
    report = generate_texts(TextRequest(output=tmp_path / "o.txt", model=str(chat_model_folder), chat=False,
                                        prompts=("ROMEO:",), max_new_tokens=300), home)  # a context of 256
    assert report.outputs[0].new_tokens == 300
    model = sidecar_assertions(report.outputs[0].file)["io.synthguard.model"]
    assert model["name"] == chat_model_folder.name and str(chat_model_folder) not in json.dumps(model)


def test_chat_is_off_for_a_model_without_a_template_and_asking_for_it_is_refused(home, tmp_path):
    report = generate_texts(TextRequest(output=tmp_path / "b.txt", prompts=("ROMEO:",), max_new_tokens=5), home)
    assert not report.chat
    assert "chat_template_sha256" not in sidecar_assertions(report.outputs[0].file)["io.synthguard.model"][
        "parameters"]
    for kwargs in ({"chat": True}, {"system": "Be brief."}):
        with pytest.raises(InputError, match="chat template"):
            generate_texts(TextRequest(output=tmp_path / "x.txt", max_new_tokens=5, **kwargs), home)
    assert not (tmp_path / "x.txt").exists()
    with pytest.raises(InputError, match="system message needs the chat template"):
        TextRequest(output=tmp_path / "x.txt", system="Be brief.", chat=False)
    with pytest.raises(InputError, match="chat must be"):
        TextRequest(output=tmp_path / "x.txt", chat="yes")


# --- empty samples ------------------------------------------------------------------------------------------------

def end_at_once_for(tm, prompt):
    """A processor that makes every row whose prompt starts like ``prompt`` draw the end token first."""
    first, pad, eos = tm.encode(prompt)[0], tm.tokenizer.pad_token_id, tm.tokenizer.eos_token_id

    def end(input_ids, scores):
        scores = scores.clone()
        for row, ids in enumerate(input_ids):
            text = ids[ids != pad]
            if len(text) and int(text[0]) == first:
                scores[row] = -torch.inf
                scores[row, eos] = 0.0
        return scores

    return end


def test_an_empty_sample_is_drawn_again_with_the_next_seed_and_the_others_are_kept(home, tmp_path, monkeypatch):
    tm = load_text_model(None, device="cpu")
    force_in_sampler(monkeypatch, end_at_once_for(tm, "KING:"), calls=1)  # the first pass only
    report = generate_texts(TextRequest(output=tmp_path / "t", prompts=("ROMEO:", "KING:", "JULIET:"),
                                        max_new_tokens=30, seed=4, batch_size=2), home)
    assert not report.failed and len(report.outputs) == 3
    romeo, king, juliet = report.outputs
    assert (romeo.seed, romeo.empty_seeds, juliet.seed) == (4, (), 5)
    # Two batches used seeds 4 and 5: the redraw takes seed 6.
    assert king.empty_seeds == (4,) and king.seed == 6 and king.new_tokens > 0
    params = sidecar_assertions(king.file)["io.synthguard.model"]["parameters"]
    assert params["sample_seed"] == 6 and params["empty_sample_seeds"] == "[4]"
    assert "empty_sample_seeds" not in sidecar_assertions(romeo.file)["io.synthguard.model"]["parameters"]


def test_a_prompt_that_stays_empty_is_reported_and_the_others_are_written(home, tmp_path, monkeypatch):
    tm = load_text_model(None, device="cpu")
    force_in_sampler(monkeypatch, end_at_once_for(tm, "KING:"))
    report = generate_texts(TextRequest(output=tmp_path / "t", prompts=("ROMEO:", "KING:"), max_new_tokens=20,
                                        seed=1), home)
    [written] = report.outputs
    [failure] = report.failed
    assert written.file.name == "text-0000.txt" and not (tmp_path / "t" / "text-0001.txt").exists()
    assert failure.prompt_index == 1 and failure.seeds == (1, 2, 3, 4)  # 1 + MAX_RESAMPLES seeds
    assert failure.prompt_sha256 == hashlib.sha256(b"KING:").hexdigest()
    assert "not written" in failure.describe()[0] and report.to_dict()["failed"][0]["seeds"] == [1, 2, 3, 4]
    with Ledger(home.ledger_path) as ledger:
        assert ledger.count() == 1
    with pytest.raises(InputError, match="ended text 0 at once with each of seeds 0, 1, 2, 3"):
        generate_texts(TextRequest(output=tmp_path / "k.txt", prompts=("KING:",), max_new_tokens=20), home)
    assert not (tmp_path / "k.txt").exists()
