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
@click.option("--resamples", default=200, show_default=True, type=click.IntRange(0),
              help="Bootstrap resamples for the 95% confidence intervals (0: none).")
@click.option("--fid-infinity", is_flag=True,
              help="Also extrapolate FID to infinitely many images (Chong & Forsyth 2020; needs 512 images per "
                   "set, noisy below 2000).")
@options.threads()
@options.json_output()
def eval_images(real, fake, limit, resamples, fid_infinity, threads, as_json) -> None:
    """Score generated images against real ones with the shipped MNIST feature extractor.

    The extractor is named in the output: scores compare only between runs with the same one. Every score has a
    95% confidence interval. FID grows as the sample shrinks: compare FIDs only at equal sample sizes; below a
    sample size at which FID means little a warning goes to stderr (and into the JSON's "warnings").

    \b
    Examples:
      synthguard eval images --real mnist --fake out/
      synthguard eval images --real ./real-digits --fake ./fake-digits --json
      synthguard eval images --real mnist --fake out/ --resamples 1000 --fid-infinity
    """
    from synthguard.training.runs import evaluate_images  # noqa: PLC0415 (keep `--help` free of torch)

    scores = evaluate_images(real, fake, limit=limit, num_threads=threads, resamples=resamples,
                             fid_infinity=fid_infinity)
    for warning in scores.warnings:
        click.echo(f"warning: {warning.message}", err=True)
    if as_json:
        print_json(scores.to_dict())
        return
    for line in scores.describe():
        click.echo(line)


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
                   "and a 95% interval of the mean are reported.")
@click.option("--scheme", "schemes", multiple=True, type=click.Choice(["synthid", "kgw"]),
              help="--watermark-cost: schemes to measure (repeatable; default both).")
@options.threads()
@options.json_output()
def eval_text(model, data, windows, window_words, watermark_cost, n_prompts, max_new_tokens, top_p, n_keys, schemes,
              threads, as_json) -> None:
    """Perplexity of a causal LM on text, and with --watermark-cost the watermarks' perplexity cost.

    \b
    Examples:
      synthguard eval text --data ~/.synthguard/datasets/tinyshakespeare.txt
      synthguard eval text --model ./SmolLM2-135M-Instruct.Q4_1.gguf --watermark-cost --max-new-tokens 200
      synthguard eval text --model ./SmolLM2-135M-Instruct.Q4_1.gguf --watermark-cost --scheme synthid --keys 8
    """
    import torch  # noqa: PLC0415

    from synthguard.bench.text_eval import evaluate_text  # noqa: PLC0415
    from synthguard.models.text import load_text_model  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    tm = load_text_model(model, device="cpu")
    result = evaluate_text(tm, data=data, windows=windows, window_words=window_words, watermark_cost=watermark_cost,
                           n_prompts=n_prompts, max_new_tokens=max_new_tokens, top_p=top_p, n_keys=n_keys,
                           schemes=schemes or ("synthid", "kgw"))
    if as_json:
        print_json(result)
        return
    click.echo(f"{tm.name}: perplexity {result['perplexity']:.2f} on {result['tokens']} tokens ({result['windows']} "
               f"windows of {result['data']})")
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


# --- text-vae (the sentence VAE) ---
@eval_group.command("text-vae")
@click.option("--model", default="builtin", show_default=True, help="'builtin' or a text VAE folder.")
@click.option("--data", default="tinyshakespeare", show_default=True,
              help="The corpus the model was trained on ('tinyshakespeare': the dataset cache, or a UTF-8 file); its "
                   "held-out lines are evaluated.")
@click.option("--pairs", default=50, show_default=True, type=click.IntRange(1), help="Interpolation paths.")
@click.option("--steps", default=8, show_default=True, type=click.IntRange(3, 100), help="Points per path.")
@click.option("--iw-samples", default=16, show_default=True, type=click.IntRange(1, 1000),
              help="Posterior samples per sentence of the importance-weighted bound.")
@click.option("--limit", type=click.IntRange(2), help="At most N held-out sentences.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@options.threads()
@options.json_output()
def eval_text_vae(model, data, pairs, steps, iw_samples, limit, seed, threads, as_json) -> None:
    """Reconstruction, KL, perplexity bounds and active units of a sentence VAE on held-out lines, and the
    smoothness of its interpolations (share of well-formed intermediate sentences per the built-in LM).

    \b
    Examples:
      synthguard eval text-vae
      synthguard eval text-vae --model my-text-vae/ --pairs 100 --json
    """
    import torch  # noqa: PLC0415

    from synthguard.bench.text_vae_eval import evaluate_text_vae  # noqa: PLC0415
    from synthguard.models.text import load_text_model  # noqa: PLC0415
    from synthguard.models.text_vae import load_text_vae  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    result = evaluate_text_vae(load_text_vae(model), load_text_model(None, device="cpu"), data=data, pairs=pairs,
                               steps=steps, iw_samples=iw_samples, seed=seed, limit=limit)
    if as_json:
        print_json(result.to_dict())
        return
    for line in result.describe():
        click.echo(line)
    for path in result.examples[:1]:
        click.echo("  an interpolation: " + " | ".join(path))
