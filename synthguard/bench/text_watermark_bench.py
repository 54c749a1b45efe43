"""``synthguard bench text-watermark``: detection power, calibration, robustness, quality cost and speed of the
text watermarks, measured in one run on one model.

For each scheme: the same prompts are continued unmarked and marked (same seeds, same sampler); the marked texts are
cut to 50 / 100 / 200 / 300 tokens, decoded, re-tokenised and tested; human text windows of the same lengths give the
empirical false-positive rate at the same p-value thresholds. Attacks run on the 200-token texts. The quality cost is
the scoring model's perplexity on marked vs unmarked continuations, and, without the sampling noise of comparing two
sets of samples, the exact expected rise in NLL per marked token (``ExpectedCostMeter``; the meter runs in every
arm, unmarked included, so it weighs on every arm's tokens/s alike).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthguard.generate.sampling import ExpectedCostMeter, generate_text
from synthguard.models.text import TextModel, continuation_nll
from synthguard.watermark.text import TextWatermarker, detect_windows
from synthguard.watermark.text.attacks import (
    delete_words,
    insert_into,
    lm_proposer,
    substitute_words,
    word_list_proposer,
    words_changed,
)
from synthguard.watermark.text.human import load_corpus

PROMPTS_FILE = Path(__file__).parent / "data" / "news_prompts.txt"
LENGTHS = (50, 100, 200, 300)
THRESHOLDS = (1e-2, 1e-3)


def default_prompts() -> list[str]:
    return [line.strip() for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class GenerationRun:
    samples: list
    seconds: float
    tokens: int
    cost: list = field(default_factory=list)  # (sum of the expected NLL rise in nats, tokens) per sample

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def timed_generation(tm: TextModel, prompts: list[str], wm: TextWatermarker | None, *, max_new_tokens: int, seed: int,
                     batch_size: int, top_p: float, temperature: float) -> GenerationRun:
    meter = ExpectedCostMeter()
    start = time.perf_counter()
    samples = generate_text(tm, prompts, max_new_tokens=max_new_tokens, seed=seed, watermarker=wm,
                            batch_size=batch_size, top_p=top_p, temperature=temperature, cost_meter=meter)
    seconds = time.perf_counter() - start
    return GenerationRun(samples, seconds, sum(s.new_tokens for s in samples), meter.samples)


def sample_nll(tm: TextModel, samples) -> list[tuple[float, int]]:
    """(sum of token NLLs, tokens) of each sample's continuation given its prompt."""
    return continuation_nll(tm, [(tm.encode(s.prompt), s.token_ids) for s in samples])


def perplexity_of(nll: list[tuple[float, int]]) -> float:
    return float(np.exp(sum(a for a, _ in nll) / max(1, sum(n for _, n in nll))))


def paired_ratio_interval(marked, plain, *, seed: int = 0, rounds: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of perplexity(marked) / perplexity(plain), resampling prompts (pairs: same prompt,
    same seed) jointly."""
    rng = np.random.default_rng(seed)
    m = np.asarray(marked, float)
    p = np.asarray(plain, float)
    idx = rng.integers(0, len(m), (rounds, len(m)))
    ratios = np.exp(_per_token(m, idx) - _per_token(p, idx))
    return float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))


def _per_token(pairs: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Per-token mean (sum of the first column over the second) of each bootstrap draw of rows ``idx``."""
    return pairs[idx, 0].sum(1) / np.maximum(pairs[idx, 1].sum(1), 1)


def expected_cost(cost: list[tuple[float, int]], *, seed: int = 0, rounds: int = 2000) -> dict:
    """The exact expected NLL rise per token (``ExpectedCostMeter``) as a perplexity ratio, with a 95% bootstrap
    interval over samples."""
    c = np.asarray(cost, float).reshape(-1, 2)
    if not len(c) or c[:, 1].sum() == 0:
        return {"nats_per_token": None, "perplexity_increase": None, "perplexity_increase_95ci": [None, None]}
    rng = np.random.default_rng(seed)
    means = _per_token(c, rng.integers(0, len(c), (rounds, len(c))))
    mean = c[:, 0].sum() / c[:, 1].sum()
    return {"nats_per_token": float(mean), "perplexity_increase": float(np.expm1(mean)),
            "perplexity_increase_95ci": [float(np.expm1(np.quantile(means, 0.025))),
                                         float(np.expm1(np.quantile(means, 0.975)))]}


def _rates(ps: list[float]) -> dict:
    arr = np.asarray(ps)
    return {f"{t:g}": float((arr <= t).mean()) if len(arr) else None for t in THRESHOLDS}


def detection_table(tm: TextModel, wm: TextWatermarker, samples, lengths=LENGTHS) -> dict:
    """TPR at each p-value threshold for the marked samples cut to each length (decoded and re-tokenised)."""
    out = {}
    for length in lengths:
        ps = []
        for s in samples:
            if s.new_tokens < length:
                continue
            text = tm.tokenizer.decode(s.token_ids[:length], skip_special_tokens=True)
            ps.append(wm.detect_ids(tm.encode(text)).p_value)
        out[str(length)] = {"n": len(ps), "tpr": _rates(ps)}
    return out


def null_table(tm: TextModel, wm: TextWatermarker, windows: list[list[int]], lengths=LENGTHS) -> dict:
    """Empirical false-positive rates on human token windows cut to each length."""
    out = {}
    for length in lengths:
        ps = [wm.detect_ids(w[:length]).p_value for w in windows if len(w) >= length]
        out[str(length)] = {"n": len(ps), "fpr": _rates(ps)}
    return out


def attack_table(tm: TextModel, wm: TextWatermarker, samples, attacks: dict[str, Callable[[str, int], str]],
                 length: int = 200) -> dict:
    out = {}
    for name, attack in attacks.items():
        ps, changed = [], []
        for i, s in enumerate(samples):
            if s.new_tokens < length:
                continue
            text = tm.tokenizer.decode(s.token_ids[:length], skip_special_tokens=True)
            attacked = attack(text, i)
            changed.append(words_changed(text, attacked))
            ps.append(wm.detect_ids(tm.encode(attacked)).p_value)
        out[name] = {"n": len(ps), "tpr": _rates(ps), "words_changed": float(np.mean(changed)) if changed else None}
    return out


def insertion_table(tm: TextModel, wm: TextWatermarker, samples, human: list[str], length: int = 200) -> dict:
    """A marked passage pasted between two human passages (about 4x its length in all): found by the windowed
    test, and whether the reported span overlaps the pasted one."""
    ps, located = [], []
    for i, s in enumerate(samples):
        if s.new_tokens < length:
            continue
        text = tm.tokenizer.decode(s.token_ids[:length], skip_special_tokens=True)
        before = " ".join(human[(2 * i) % len(human)].split()[:200])
        after = " ".join(human[(2 * i + 1) % len(human)].split()[:200])
        doc, (a, b) = insert_into(before, text, after)
        ids, offsets = tm.encode_with_offsets(doc)
        r = detect_windows(wm, ids, offsets)
        ps.append(r.p_value)
        located.append(bool(r.span and r.span[0] < b and r.span[1] > a))
    return {"n": len(ps), "tpr": _rates(ps), "span_overlaps": float(np.mean(located)) if located else None}


def null_by_key(tm: TextModel, make: Callable[[int], TextWatermarker], keys: int, calibration: list[list[int]],
                held_out: list[list[int]], length: int = 200) -> list[dict]:
    """Empirical FPR at each threshold for several keys: each key calibrated on one half of the human windows and
    measured on the other half."""
    out = []
    for k in range(keys):
        wm = make(k)
        if hasattr(wm, "bind_vocab"):
            wm.bind_vocab(tm.vocab_size)
        uncalibrated = [wm.detect_ids(w[:length]).p_value for w in held_out if len(w) >= length]
        cal = wm.calibrate([w for w in calibration if len(w) >= 50], corpus="calibration half")
        ps = [wm.detect_ids(w[:length]).p_value for w in held_out if len(w) >= length]
        zs = [wm.detect_ids(w[:length]).z for w in held_out if len(w) >= length]
        out.append({"key": k, "key_id": wm.key_id, "n": len(ps), "null_rate": wm.null_rate,
                    "measured_rate": cal.rate, "mean_z": float(np.mean(zs)), "fpr": _rates(ps),
                    "fpr_uncalibrated": _rates(uncalibrated)})
    return out


def run(tm: TextModel, schemes: dict[str, TextWatermarker], *, prompts: list[str], human_source: list[str],
        max_new_tokens: int = 300, seed: int = 0, batch_size: int = 50, top_p: float = 1.0,
        temperature: float = 1.0, human_windows: int = 1000, attack_model: TextModel | None = None,
        null_keys: dict[str, Callable[[int], TextWatermarker]] | None = None, n_null_keys: int = 0,
        progress: Callable[[str], None] = lambda msg: None) -> dict:
    """The whole benchmark; ``human_source`` names human text sources ("stdlib-docstrings" or files).

    The human windows (of 160 words, all sources pooled and shuffled) are split: every third one calibrates each
    key's null rate, the others (up to ``human_windows``) measure the false-positive rates, so no window is used for
    both. Generation is interleaved batch by batch (unmarked, then each scheme, same seeds), so machine load affects
    every setting's tokens/s alike."""
    human_texts: list[str] = []
    for source in human_source:
        human_texts += load_corpus(source, words=160, seed=seed)
    # Every third window calibrates, the others (a seeded sample of up to ``human_windows``) measure.
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(human_texts))
    human_texts = [human_texts[i] for i in order]
    all_windows = [tm.encode(t)[:max(LENGTHS)] for t in human_texts]
    calibration_windows = all_windows[0::3]
    windows = [w for i, w in enumerate(all_windows) if i % 3][:human_windows]
    human_texts = [t for i, t in enumerate(human_texts) if i % 3][:human_windows]
    vocabulary = sorted({w.strip(".,;:!?\"'()").lower() for t in human_texts for w in t.split()} - {""})
    proposer = lm_proposer(attack_model or tm)
    attacks = {
        "delete10%": lambda t, i: delete_words(t, 0.10, i),
        "delete20%": lambda t, i: delete_words(t, 0.20, i),
        "substitute-lm10%": lambda t, i: substitute_words(t, 0.10, i, proposer),
        "substitute-lm20%": lambda t, i: substitute_words(t, 0.20, i, proposer),
        "substitute-lm30%": lambda t, i: substitute_words(t, 0.30, i, proposer),
        "substitute-words30%": lambda t, i: substitute_words(t, 0.30, i, word_list_proposer(vocabulary, i)),
    }
    configs: dict[str, TextWatermarker | None] = {"unmarked": None, **schemes}
    runs = {name: GenerationRun([], 0.0, 0) for name in configs}
    for b, start in enumerate(range(0, len(prompts), batch_size)):
        for name, wm in configs.items():
            progress(f"generation: batch {b + 1}, {name}")
            part = timed_generation(tm, prompts[start:start + batch_size], wm, max_new_tokens=max_new_tokens,
                                    seed=seed + b, batch_size=batch_size, top_p=top_p, temperature=temperature)
            run_ = runs[name]
            run_.samples += part.samples
            run_.seconds += part.seconds
            run_.tokens += part.tokens
            run_.cost += part.cost
    plain = runs["unmarked"]
    plain_nll = sample_nll(tm, plain.samples)
    ppl_plain = perplexity_of(plain_nll)
    result = {"model": tm.name, "prompts": len(prompts), "max_new_tokens": max_new_tokens, "top_p": top_p,
              "temperature": temperature, "batch_size": batch_size, "human_windows": len(windows),
              "calibration_windows": len(calibration_windows),
              "human_sources": list(map(str, human_source)),
              "unmarked": {"tokens_per_second": plain.tokens_per_second, "perplexity": ppl_plain,
                           # 0 up to rounding: the meter's own check
                           "expected_cost_nats_per_token": expected_cost(plain.cost)["nats_per_token"]},
              "schemes": {}}
    for name, wm in schemes.items():
        progress(f"{name}: calibration")
        if hasattr(wm, "bind_vocab"):
            wm.bind_vocab(tm.vocab_size)
        calibration = wm.calibrate([w for w in calibration_windows if len(w) >= 50],
                                   corpus="+".join(map(str, human_source)) + " (calibration half)")
        run_ = runs[name]
        nll = sample_nll(tm, run_.samples)
        ppl = perplexity_of(nll)
        low, high = paired_ratio_interval(nll, plain_nll, seed=seed)
        progress(f"{name}: detection")
        entry = {
            "settings": wm.settings(),
            "calibration": {"rate": calibration.rate, "stderr": calibration.stderr, "null_rate": wm.null_rate},
            "tokens_per_second": run_.tokens_per_second,
            "speed_ratio": run_.tokens_per_second / plain.tokens_per_second,
            "perplexity": ppl,
            "perplexity_increase": ppl / ppl_plain - 1,
            "perplexity_increase_95ci": [low - 1, high - 1],
            "expected_cost": expected_cost(run_.cost, seed=seed),
            "detection": detection_table(tm, wm, run_.samples),
            "unmarked_generations": detection_table(tm, wm, plain.samples, lengths=(200,)),
            "human": null_table(tm, wm, windows),
        }
        progress(f"{name}: attacks")
        entry["attacks_200"] = attack_table(tm, wm, run_.samples, attacks)
        entry["inserted_200"] = insertion_table(tm, wm, run_.samples, human_texts)
        if null_keys and name in null_keys and n_null_keys:
            progress(f"{name}: null rates for {n_null_keys} keys")
            entry["null_by_key_200"] = null_by_key(tm, null_keys[name], n_null_keys, calibration_windows, windows)
        result["schemes"][name] = entry
    return result


def _f(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(result: dict) -> str:
    lines = [f"model {result['model']}: {result['prompts']} prompts, up to {result['max_new_tokens']} new tokens, "
             f"top-p {result['top_p']}, temperature {result['temperature']}; {result['human_windows']} human windows "
             f"({', '.join(result['human_sources'])}; {result['calibration_windows']} more calibrate the keys)",
             f"unmarked: {result['unmarked']['tokens_per_second']:.1f} tokens/s, perplexity "
             f"{result['unmarked']['perplexity']:.2f}"]
    for name, e in result["schemes"].items():
        lines.append("")
        lines.append(f"## {name} {e['settings']}")
        lo, hi = e["perplexity_increase_95ci"]
        lines.append(f"speed {e['tokens_per_second']:.1f} tokens/s ({e['speed_ratio']:.2f}x unmarked); perplexity "
                     f"{e['perplexity']:.2f} ({100 * e['perplexity_increase']:+.1f}%, 95% CI {100 * lo:+.1f}% to "
                     f"{100 * hi:+.1f}%); null rate "
                     f"{e['calibration']['null_rate']:.4f} (measured {e['calibration']['rate']:.4f} +- "
                     f"{e['calibration']['stderr']:.4f})")
        x = e.get("expected_cost") or {}
        if x.get("perplexity_increase") is not None:
            xl, xh = x["perplexity_increase_95ci"]
            lines.append(f"exact expected perplexity cost per marked token: {100 * x['perplexity_increase']:+.2f}% "
                         f"(95% CI {100 * xl:+.2f}% to {100 * xh:+.2f}%, {x['nats_per_token']:+.5f} nats/token)")
        lines.append("| tokens | TPR p<=1e-2 | TPR p<=1e-3 | human FPR p<=1e-2 | human FPR p<=1e-3 "
                     "| n marked / human |")
        lines.append("|---|---|---|---|---|---|")
        for length, d in e["detection"].items():
            h = e["human"].get(length, {"fpr": {"0.01": None, "0.001": None}, "n": 0})
            lines.append(f"| {length} | {_f(d['tpr']['0.01'])} | {_f(d['tpr']['0.001'])} | {_f(h['fpr']['0.01'])} "
                         f"| {_f(h['fpr']['0.001'])} | {d['n']} / {h['n']} |")
        lines.append("| attack (200 tokens) | words changed | TPR p<=1e-2 | TPR p<=1e-3 | n |")
        lines.append("|---|---|---|---|---|")
        for attack, d in e["attacks_200"].items():
            lines.append(f"| {attack} | {_f(d.get('words_changed'), 3)} | {_f(d['tpr']['0.01'], 3)} | "
                         f"{_f(d['tpr']['0.001'], 3)} | {d['n']} |")
        ins = e["inserted_200"]
        lines.append(f"| inserted into human text (windowed) | - | {_f(ins['tpr']['0.01'], 3)} | "
                     f"{_f(ins['tpr']['0.001'], 3)} | {ins['n']} (span found {_f(ins['span_overlaps'], 2)}) |")
        if e.get("null_by_key_200"):
            lines.append("| key (200-token human windows) | n | null rate | mean z | FPR p<=1e-2 | FPR p<=1e-3 | "
                         "uncalibrated FPR p<=1e-2 | uncalibrated FPR p<=1e-3 |")
            lines.append("|---|---|---|---|---|---|---|---|")
            for k in e["null_by_key_200"]:
                lines.append(f"| {k['key_id']} | {k['n']} | {k['null_rate']:.4f} | {k['mean_z']:+.3f} | "
                             f"{_f(k['fpr']['0.01'])} | {_f(k['fpr']['0.001'])} | "
                             f"{_f(k['fpr_uncalibrated']['0.01'])} | {_f(k['fpr_uncalibrated']['0.001'])} |")
        u = e["unmarked_generations"]["200"]
        lines.append(f"unmarked generations flagged at 200 tokens: p<=1e-2 {_f(u['tpr']['0.01'], 3)}, "
                     f"p<=1e-3 {_f(u['tpr']['0.001'], 3)} (n {u['n']})")
    return "\n".join(lines)
