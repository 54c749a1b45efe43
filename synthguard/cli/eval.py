"""``synthguard eval``: generator metrics (FID, KID, IS, precision/recall) and text watermark evaluation."""

from __future__ import annotations

from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.render import print_json


@click.group(name="eval")
def eval_group() -> None:
    """Evaluate generative models (FID, KID, Inception Score, precision/recall).

    \b
    Example:
      synthguard eval images --real mnist --fake out/
    """


@eval_group.command("images")
@click.option("--real", default="mnist", show_default=True,
              help="'mnist' (held-out test split) or a folder of real images.")
@click.option("--fake", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of generated images.")
@click.option("--limit", default=2000, show_default=True, type=click.IntRange(2), help="Images per set at most.")
@options.threads()
@options.json_output()
def eval_images(real, fake, limit, threads, as_json) -> None:
    """Score generated images against real ones with the shipped MNIST feature extractor.

    The extractor is named in the output: scores compare only between runs with the same one.

    \b
    Examples:
      synthguard eval images --real mnist --fake out/
      synthguard eval images --real ./real-digits --fake ./fake-digits --json
    """
    import dataclasses  # noqa: PLC0415

    from synthguard.training.data import load_images  # noqa: PLC0415
    from synthguard.training.evaluation import (  # noqa: PLC0415
        builtin_feature_extractor,  # noqa: PLC0415
        score_images,  # noqa: PLC0415
    )

    reference = load_images(real, split="test", limit=limit)
    generated = load_images(fake, limit=limit)
    scores = score_images(generated, reference, builtin_feature_extractor(num_threads=threads))
    if as_json:
        print_json(dataclasses.asdict(scores))
        return
    click.echo(f"feature extractor: {scores.feature_extractor}  ({scores.n_generated} generated vs "
               f"{scores.n_reference} reference images)")
    click.echo(f"FID {scores.fid:.2f}   KID {scores.kid:.3f} ± {scores.kid_std:.3f}   IS {scores.inception_score:.2f} "
               f"± {scores.inception_score_std:.2f}   precision {scores.precision:.3f}   recall {scores.recall:.3f}")


@eval_group.command("text")
@click.option("--model", default="builtin", show_default=True,
              help="The model to evaluate (and to generate with): 'builtin', folder, .gguf file or hub id.")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path),
              help="UTF-8 text to measure perplexity on (default: the Python standard library's docstrings).")
@click.option("--windows", default=100, show_default=True, type=click.IntRange(1), help="Text windows to score.")
@click.option("--window-words", default=150, show_default=True, type=click.IntRange(5))
@click.option("--watermark-cost", is_flag=True,
              help="Also generate unmarked and marked continuations (both schemes, same seeds), compare their "
                   "perplexity under the model, and report the exact expected perplexity cost per marked token.")
@click.option("--prompts", "n_prompts", default=20, show_default=True, type=click.IntRange(1),
              help="--watermark-cost: prompts (the built-in news prompts, repeated as needed).")
@click.option("--max-new-tokens", default=100, show_default=True, type=click.IntRange(1, 4096))
@click.option("--top-p", default=0.95, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--keys", "n_keys", default=1, show_default=True, type=click.IntRange(1, 100),
              help="--watermark-cost: measurement keys per scheme. A scheme that is distortion-free in expectation "
                   "over keys can still cost (or gain) a little for one key; with 2 or more, the spread over keys "
                   "and a 95%% interval of the mean are reported.")
@click.option("--scheme", "schemes", multiple=True, type=click.Choice(["synthid", "kgw"]),
              help="--watermark-cost: schemes to measure (repeatable; default both).")
@options.threads()
@options.json_output()
def eval_text(model, data, windows, window_words, watermark_cost, n_prompts, max_new_tokens, top_p, n_keys, schemes,
              threads, as_json) -> None:
    """Perplexity of a causal LM on text, and with --watermark-cost the watermarks' perplexity cost.

    \b
    Examples:
      synthguard eval text --data ../shared/datasets/tinyshakespeare.txt
      synthguard eval text --model ./SmolLM2-135M-Instruct.Q4_1.gguf --watermark-cost --max-new-tokens 200
      synthguard eval text --model ./SmolLM2-135M-Instruct.Q4_1.gguf --watermark-cost --scheme synthid --keys 8
    """
    import torch  # noqa: PLC0415

    from synthguard.bench.text_watermark_bench import default_prompts  # noqa: PLC0415
    from synthguard.models.text import load_text_model, perplexity  # noqa: PLC0415
    from synthguard.watermark.text.human import load_corpus  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    tm = load_text_model(model, device="cpu")
    texts = load_corpus(data if data is not None else "stdlib-docstrings", words=window_words, limit=windows)
    ppl, tokens = perplexity(tm, [("", t) for t in texts])
    result = {"model": tm.name, "data": str(data or "stdlib-docstrings"), "windows": len(texts), "tokens": tokens,
              "perplexity": ppl}
    if watermark_cost:
        prompts = (default_prompts() * (n_prompts // 50 + 1))[:n_prompts]
        result["watermark_cost"] = _watermark_cost(tm, prompts, max_new_tokens=max_new_tokens, top_p=top_p,
                                                   n_keys=n_keys, schemes=schemes or ("synthid", "kgw"))
    if as_json:
        print_json(result)
        return
    click.echo(f"{tm.name}: perplexity {ppl:.2f} on {tokens} tokens ({len(texts)} windows of {result['data']})")
    if watermark_cost:
        c = result["watermark_cost"]
        click.echo(f"generations ({c['prompts']} prompts x {max_new_tokens} tokens, top-p {top_p}, {n_keys} key(s) "
                   f"per scheme), perplexity under {tm.name}: unmarked {c['unmarked']['perplexity']:.2f}"
                   + "".join(f"; {s} {c[s]['perplexity']:.2f} ({100 * c[s]['increase']:+.1f}%)"
                             for s in c["schemes"]))
        for s in c["schemes"]:
            x = c[s]["expected"]
            lo, hi = x["perplexity_increase_95ci"]
            click.echo(f"{s}: exact expected perplexity cost per marked token {100 * x['perplexity_increase']:+.2f}% "
                       f"(95% CI over samples {100 * lo:+.2f}% to {100 * hi:+.2f}%)")
            if "over_keys" in c[s]:
                k = c[s]["over_keys"]
                per_key = ", ".join(f"{100 * e['expected']['perplexity_increase']:+.2f}%" for e in c[s]["keys"])
                click.echo(f"  over {n_keys} keys: mean {100 * k['mean']:+.2f}% (95% CI {100 * k['95ci'][0]:+.2f}% "
                           f"to {100 * k['95ci'][1]:+.2f}%), per key {per_key}")


def _watermark_cost(tm, prompts: list[str], *, max_new_tokens: int, top_p: float, n_keys: int,
                    schemes: tuple[str, ...]) -> dict:
    """Unmarked and marked continuations of the same prompts with the same seeds, for each scheme and measurement
    key: the sampled perplexity under ``tm`` and the exact expected cost per marked token (``ExpectedCostMeter``)."""
    import numpy as np  # noqa: PLC0415

    from synthguard.bench.text_watermark_bench import expected_cost  # noqa: PLC0415
    from synthguard.models.text import ExpectedCostMeter, generate_text, perplexity  # noqa: PLC0415
    from synthguard.watermark.text.schemes import make_watermarker  # noqa: PLC0415

    def measure(wm) -> tuple[list, list]:
        meter = ExpectedCostMeter()
        samples = generate_text(tm, prompts, max_new_tokens=max_new_tokens, top_p=top_p, seed=0, watermarker=wm,
                                batch_size=min(len(prompts), 50), cost_meter=meter)
        return [(tm.encode(s.prompt), s.token_ids) for s in samples], meter.samples

    plain, _ = measure(None)
    plain_ppl, plain_tokens = perplexity(tm, plain)
    out: dict = {"prompts": len(prompts), "max_new_tokens": max_new_tokens, "top_p": top_p, "keys": n_keys,
                 "schemes": list(schemes), "unmarked": {"perplexity": plain_ppl, "tokens": plain_tokens}}
    for scheme in schemes:
        pairs, costs, per_key = [], [], []
        for k in range(n_keys):
            # Fixed measurement keys, not anyone's identity (key 0 is the one earlier releases used).
            secret = b"synthguard eval text watermark cost" + (f" {k}".encode() if k else b"")
            wm = make_watermarker(scheme, secret)
            marked, cost = measure(wm)
            pairs += marked
            costs += cost
            per_key.append({"key_id": wm.key_id, "expected": expected_cost(cost)})
        value, count = perplexity(tm, pairs)
        entry = {"perplexity": value, "tokens": count, "increase": value / plain_ppl - 1,
                 "expected": expected_cost(costs), "keys": per_key}
        if n_keys >= 2:
            rises = np.array([e["expected"]["perplexity_increase"] for e in per_key])
            se = rises.std(ddof=1) / np.sqrt(len(rises))
            entry["over_keys"] = {"mean": float(rises.mean()), "sd": float(rises.std(ddof=1)),
                                  "95ci": [float(rises.mean() - 1.96 * se), float(rises.mean() + 1.96 * se)]}
        out[scheme] = entry
    return out
