"""``synthguard detect``: inspect files and print one verdict each."""

from __future__ import annotations

import os
from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env
from synthguard.cli.render import human_report, per_file, write_report
from synthguard.errors import InputError


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@options.json_output("One JSON object per input, one per line.")
@options.policy("Policy YAML (default: policies/default.yaml rules: trust your own identity and added anchors).")
@options.verification(text_model_help="Texts: the model that generated them (its tokenizer re-reads the text for "
                                      "the watermark test): 'builtin', a model folder, a .gguf file or a hub id.")
@click.option("--no-watermark", is_flag=True, help="Skip the watermark test (images, audio).")
@click.option("--no-classifier", is_flag=True, help="Skip the synthetic-image classifier (images).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML report: verdicts, reasons, classifier heatmap and forensic pictures "
                   "(audio: waveform and spectrogram).")
@click.option("--threads", type=click.IntRange(1), default=lambda: min(4, os.cpu_count() or 1),
              show_default="min(4, CPU count)", help="torch CPU threads for the classifier and text models.")
@click.option("--text-scorer", help="Texts: also compute the machine-text score (Fast-DetectGPT criterion) under "
                                    "this model ('builtin', folder, .gguf or hub id); calibrated on human text.")
@pass_env
def detect(env: Env, files: tuple[Path, ...], as_json: bool, policy_path, trust_paths, no_ledger: bool, resolvers,
           no_watermark: bool, no_classifier: bool, detector_path: Path | None, report_path: Path | None,
           threads: int, text_model: str, text_scorer: str | None) -> None:
    """Verify FILES: C2PA provenance (embedded, sidecar, or recovered from the ledger), watermark, the
    synthetic-image classifier, and one verdict with its confidence and reasons.

    Audio (WAV, FLAC, MP3, Ogg Opus/Vorbis, M4A; decoded within duration, rate and channel budgets): the manifest
    (embedded, or a .c2pa sidecar for Ogg), SynthGuard's audio watermark (a stripped or re-encoded copy's manifest
    is found in the ledger through its payload), and the format, codec, rate, channels and duration; the image
    classifier and forensics do not apply.

    Texts: the .c2pa sidecar, this identity's text watermarks (SynthID-Text and KGW, whole text and windows, so a
    marked passage inside a longer document is found and located), and with --text-scorer the machine-text score.

    Verdicts: ai-generated (a trusted manifest or this identity's text watermark says so), ai-declared (something
    says AI, nothing authenticates it: an unsigned watermark, unsigned metadata), likely-synthetic (classifier only),
    tampered (changed after signing), authentic-capture (a trusted capture source), edited, unknown. Missing
    provenance alone is never evidence of fakery. Exit status is 0 when every file was inspected, 2 when any file
    could not be read (it is reported as an error and the others are still inspected).

    \b
    Examples:
      synthguard detect out.jpg
      synthguard detect interview.mp3 voice.wav --json       # audio: the JSON has an "audio" block
      synthguard detect story.txt                            # sidecar + text watermark (built-in model)
      synthguard detect news.txt --text-model ./SmolLM2.gguf --text-scorer ./SmolLM2.gguf
      synthguard detect *.png --json > results.jsonl
      synthguard detect wire-photo.jpg --trust agency-root.pem
      synthguard detect suspect.png --report suspect.html
      synthguard detect reposted.jpg --resolver https://ledger.example-provider.com   # stripped copies
    """
    from synthguard.core.fileio import check_output_path  # noqa: PLC0415
    from synthguard.detect import InspectionContext, inspect_file  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415

    done, errors = [], []
    with InspectionContext.build(env.home, policy=load_policy(policy_path), trust=trust_paths, ledger=not no_ledger,
                                 watermark=not no_watermark, classifier=not no_classifier, detector=detector_path,
                                 text_model=text_model, text_scorer=text_scorer, threads=threads,
                                 resolvers=resolvers) as context:
        if report_path is not None:
            check_output_path(report_path, inputs=files, overwrite=True)

        def work(path: Path):
            try:
                inspection = inspect_file(path, context, keep_pixels=report_path is not None)
            except InputError as exc:
                errors.append((str(path), str(exc)))
                raise
            if report_path is not None:
                done.append(inspection)
            return inspection

        per_file(files, as_json, work, lambda path, inspection: inspection.to_dict(),
                 lambda path, inspection: human_report(inspection),
                 finish=lambda: write_report(report_path, done, errors, as_json))
