"""The strength / quality / robustness trade-off of the text watermarks, one run, one model, shared unmarked baseline.

    python benchmarks/text_watermark_tradeoff.py --model PATH.gguf [--prompts 30] [--max-new-tokens 200]

For each setting: the exact expected perplexity cost per marked token (with its 95% interval), the perplexity change
of the marked against the unmarked generations (same prompts, seeds and sampler; noisy with few prompts), TPR at
p <= 1e-3 with 50 tokens, TPR after replacing 30% of the words (model proposals, word list) at 200 tokens, speed
ratio.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from synthguard.bench import text_watermark_bench as tb
from synthguard.models.text import load_text_model
from synthguard.watermark.text import KGWText, SynthIDText, derive_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--prompts", type=int, default=30)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tm = load_text_model(args.model, device="auto")
    secret = b"synthguard trade-off key"
    settings = {
        "synthid depth 10, 4-gram": SynthIDText(derive_key(secret, "s10"), depth=10, ngram_len=4),
        "synthid depth 20, 4-gram": SynthIDText(derive_key(secret, "s20"), depth=20, ngram_len=4),
        "synthid depth 30, 4-gram (default)": SynthIDText(derive_key(secret, "s30"), depth=30, ngram_len=4),
        "synthid depth 30, 3-gram": SynthIDText(derive_key(secret, "s30n3"), depth=30, ngram_len=3),
        "synthid depth 30, 2-gram": SynthIDText(derive_key(secret, "s30n2"), depth=30, ngram_len=2),
        "kgw delta 1": KGWText(derive_key(secret, "k1"), delta=1.0),
        "kgw delta 2 (default)": KGWText(derive_key(secret, "k2"), delta=2.0),
        "kgw delta 3": KGWText(derive_key(secret, "k3"), delta=3.0),
    }
    prompts = (tb.default_prompts() * (args.prompts // 50 + 1))[:args.prompts]
    result = tb.run(tm, settings, prompts=prompts, human_source=["stdlib-docstrings"],
                    max_new_tokens=args.max_new_tokens, batch_size=len(prompts), top_p=args.top_p, human_windows=300,
                    progress=lambda msg: print(f"[tradeoff] {msg}", file=sys.stderr, flush=True))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=1)
    print(f"model {result['model']}: {len(prompts)} prompts x {args.max_new_tokens} tokens, top-p {args.top_p}; "
          f"unmarked perplexity {result['unmarked']['perplexity']:.2f}, {result['unmarked']['tokens_per_second']:.1f} "
          "tokens/s")
    print("| setting | exact expected perplexity cost (95% CI) | perplexity change of the samples | "
          "TPR p<=1e-3, 50 tokens | TPR p<=1e-3, 30% words replaced (model), 200 tokens "
          "| TPR p<=1e-3, 30% words replaced (word list), 200 tokens | speed vs unmarked |")
    print("|---|---|---|---|---|---|---|")
    for name, e in result["schemes"].items():
        fifty = e["detection"]["50"]["tpr"]["0.001"]
        lm30 = e["attacks_200"]["substitute-lm30%"]["tpr"]["0.001"]
        words30 = e["attacks_200"]["substitute-words30%"]["tpr"]["0.001"]
        x = e["expected_cost"]
        lo, hi = x["perplexity_increase_95ci"]
        print(f"| {name} | {100 * x['perplexity_increase']:+.2f}% ({100 * lo:+.2f}% to {100 * hi:+.2f}%) | "
              f"{100 * e['perplexity_increase']:+.1f}% | {tb._f(fifty, 3)} | {tb._f(lm30, 3)} | "
              f"{tb._f(words30, 3)} | {e['speed_ratio']:.2f}x |")


if __name__ == "__main__":
    main()
