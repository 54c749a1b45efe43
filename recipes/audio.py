"""The run that made the shipped audio model (``synthguard/models/weights/audio/``): the chorale transformer of
``synthguard.models.audio`` trained on music21's Bach chorales, saved with ``save_pretrained`` and its
``training.json`` record (which holds the evaluation: validation perplexity beside unigram / bigram baselines, and
music statistics of sampled pieces beside the validation pieces).

    python recipes/audio.py [--out FOLDER]

The same run from the CLI: ``synthguard train audio --steps 700 --batch-size 8 --threads 2 -o FOLDER``. The shipped
run used two torch threads on a shared two-core CPU; the architecture is ``training.audio.AUDIO_ARCHITECTURE``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synthguard.training.audio import AudioTrainConfig
from synthguard.training.runs import train_and_save_audio

# ------------------------------------------------------------------------------------------ the shipped run's config
OUT = Path(__file__).resolve().parents[1] / "synthguard" / "models" / "weights" / "audio"
THREADS = 2
CONFIG = AudioTrainConfig(steps=700, batch_size=8, lr=2e-3, warmup=50, seed=0, eval_samples=16, eval_bars=8)  # defaults
COMMAND = "synthguard train audio --steps 700 --batch-size 8 --threads 2 --seed 0 --eval-samples 16"
# ---------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result = train_and_save_audio(args.out, config=CONFIG, device="cpu", num_threads=THREADS, overwrite=True,
                                  command=COMMAND, log=print)
    evaluation = result.evaluation
    print(f"saved to {args.out}: {evaluation['parameters']:,} parameters, {result.seconds:.0f} s; validation "
          f"perplexity {evaluation['validation_perplexity']} vs {evaluation['baseline_perplexity']}")


if __name__ == "__main__":
    main()
