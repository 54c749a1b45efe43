"""``synthguard bench``: benchmarks that print figures beside peers."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.augment import bench_augment
from synthguard.cli.bench_audio import bench_audio_watermark
from synthguard.cli.bench_load import bench_image_memory, bench_ledger, bench_resolver, bench_text_memory
from synthguard.cli.context import Env, pass_env
from synthguard.cli.render import print_json
from synthguard.errors import InputError


@click.group()
def bench() -> None:
    """Benchmarks that print figures, side by side with peers.

    \b
    Example:
      synthguard bench sign --repeat 30
    """


@bench.command("sign")
@click.option("--repeat", default=30, show_default=True, type=click.IntRange(3, 10_000),
              help="Timed runs per file and method.")
@options.json_output()
def bench_sign(repeat: int, as_json: bool) -> None:
    """Median sign+write time per file: SynthGuard vs raw c2pa-python, same files, same run.

    \b
    Example:
      synthguard bench sign --repeat 50 --json
    """
    from synthguard.bench.sign_bench import run_sign_benchmark  # noqa: PLC0415

    rows = run_sign_benchmark(repeat=repeat)
    if as_json:
        print_json(rows)
        return
    click.echo(f"{'file':<22} {'bytes':>8} {'raw c2pa':>9} {'sign FILE':>10} {'ratio':>6} {'own render':>11} "
               f"{'ratio':>6} {'(decode)':>9}   [median ms]")
    for r in rows:
        click.echo(f"{r['file']:<22} {r['bytes']:>8} {r['raw_ms']:>9.2f} {r['synthguard_ms']:>10.2f} "
                   f"{r['ratio']:>6.2f} {r['own_render_ms']:>11.2f} {r['own_render_ratio']:>6.2f} "
                   f"{r['validate_decode_ms']:>9.2f}")
    click.echo("sign FILE: `synthguard sign` of an external file (fully decoded and pixel-hashed, beside signing); "
               "own render: a file SynthGuard wrote from known pixels (generate path); (decode): the full decode "
               "alone.")


@bench.command("detector")
@click.option("-n", "n", default=100, show_default=True, type=click.IntRange(5),
              help="Test images per generator family and per real domain (photos, digits).")
@options.detector("A detector folder from `synthguard train detector` (default: the built-in one).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Measure detection and false-positive rates at this P(synthetic) instead of the calibrated "
                   "threshold (e.g. a policy's classifier_threshold).")
@options.threads(default=1)
@options.json_output()
def bench_detector(n, detector_path, threshold, threads, as_json) -> None:
    """AUC, detection rate at the threshold, FPR on real images and time per image of the synthetic-image
    detector, per generator family, clean and after JPEG 75 / resize 0.5, on held-out test data.

    \b
    Examples:
      synthguard bench detector
      synthguard bench detector -n 200 --json > detector.json
      synthguard bench detector --threshold 0.5   # the rates under policies/newsroom-strict.yaml
    """
    from synthguard.bench.detector_bench import run  # noqa: PLC0415

    result = run(n, detector_path, threads, log=lambda line: click.echo(line, err=True), threshold=threshold)
    if as_json:
        print_json(result)
    else:
        click.echo(result["table"])


@bench.command("text-watermark")
@click.option("--model", default="builtin", show_default=True,
              help="Generating and scoring model: 'builtin', folder, .gguf file (e.g. SmolLM2) or hub id.")
@click.option("--prompts", "n_prompts", default=50, show_default=True, type=click.IntRange(1),
              help="Prompts (the built-in news prompts, repeated as needed).")
@click.option("--max-new-tokens", default=300, show_default=True, type=click.IntRange(50, 4096))
@click.option("--human", "human_sources", multiple=True,
              help="Human text for the false-positive rates: stdlib-docstrings, python-help and/or text files "
                   "(repeatable; default: stdlib-docstrings).")
@click.option("--human-windows", default=1000, show_default=True, type=click.IntRange(30))
@click.option("--scheme", "schemes", multiple=True, type=click.Choice(["synthid", "kgw"]),
              help="Schemes to measure (repeatable; default both).")
@click.option("--kgw-delta", default=2.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--synthid-depth", default=30, show_default=True, type=click.IntRange(1, 64))
@click.option("--synthid-ngram", "synthid_ngrams", multiple=True, type=click.IntRange(2, 8),
              help="SynthID n-gram length (repeatable: one scheme each; default 4, the generator's default).")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--batch-size", default=50, show_default=True, type=click.IntRange(1))
@click.option("--key-seed", default=0, show_default=True, type=click.IntRange(0),
              help="Seed of the measurement key (not anyone's identity).")
@click.option("--attack-model", help="Model whose proposals replace words in the substitution attacks (default: the "
                                     "generating model).")
@click.option("--null-keys", default=5, show_default=True, type=click.IntRange(0),
              help="Also measure the false-positive rate on human text for this many other keys.")
@options.threads()
@options.json_output()
def bench_text_watermark(model, n_prompts, max_new_tokens, human_sources, human_windows, schemes, kgw_delta,
                         synthid_depth, synthid_ngrams, top_p, batch_size, key_seed, attack_model, null_keys, threads,
                         as_json) -> None:
    """TPR of the text watermarks at p <= 1e-2 / 1e-3 for 50-300 tokens, empirical FPR on human text at the same
    thresholds, after attacks (word deletion, model or word-list substitution, insertion into human text), and
    the perplexity and speed cost, in one run on one model.

    \b
    Examples:
      synthguard bench text-watermark --prompts 10 --max-new-tokens 100 --human-windows 100   # built-in, quick
      synthguard bench text-watermark --model ./SmolLM2-135M-Instruct.Q4_1.gguf \\
          --human stdlib-docstrings --human ~/.synthguard/datasets/tinyshakespeare.txt
    """
    import torch  # noqa: PLC0415

    from synthguard.bench import text_watermark_bench as tb  # noqa: PLC0415
    from synthguard.models.text import load_text_model  # noqa: PLC0415
    from synthguard.watermark.text import DEFAULT_SYNTHID_NGRAM, KGWText, SynthIDText, derive_key  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    tm = load_text_model(model, device="auto")
    secret = f"synthguard bench key {key_seed}".encode()
    chosen = schemes or ("synthid", "kgw")
    wms = {}
    synthid_ngrams = synthid_ngrams or (DEFAULT_SYNTHID_NGRAM,)
    if "synthid" in chosen:
        for n in synthid_ngrams:
            name = "synthid" if n == synthid_ngrams[0] else f"synthid-{n}gram"
            wms[name] = SynthIDText(derive_key(secret, "synthid"), depth=synthid_depth, ngram_len=n)
    if "kgw" in chosen:
        wms["kgw"] = KGWText(derive_key(secret, "kgw"), delta=kgw_delta)
    prompts = (tb.default_prompts() * (n_prompts // 50 + 1))[:n_prompts]

    def other_key(scheme: str, k: int) -> bytes:
        return derive_key(f"synthguard bench null key {k}".encode(), scheme)

    makers = {"synthid": lambda k: SynthIDText(other_key("synthid", k), depth=synthid_depth,
                                               ngram_len=synthid_ngrams[0]),
              "kgw": lambda k: KGWText(other_key("kgw", k), delta=kgw_delta)}
    result = tb.run(tm, wms, prompts=prompts, human_source=list(human_sources) or ["stdlib-docstrings"],
                    max_new_tokens=max_new_tokens, batch_size=batch_size, top_p=top_p, human_windows=human_windows,
                    null_keys=makers, n_null_keys=null_keys,
                    attack_model=load_text_model(attack_model, device="auto") if attack_model else None,
                    progress=lambda msg: click.echo(f"[bench] {msg}", err=True))
    if as_json:
        print_json(result)
    else:
        click.echo(tb.render(result))


@bench.command("provenance")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@options.policy()
@click.option("--trust", "trust_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Also trust the root certificate(s) in this PEM file (repeatable).")
@options.json_output()
@pass_env
def bench_provenance(env: Env, paths, policy_path, trust_files, as_json) -> None:
    """A table over C2PA files: what c2pa says, SynthGuard's provenance state, the label and why.

    \b
    Examples:
      synthguard bench provenance tests/fixtures/c2pa tests/fixtures/c2pa/cawg
      synthguard bench provenance inbox/ --policy policies/newsroom-default.yaml --json
    """
    from synthguard.bench.provenance_bench import render, run  # noqa: PLC0415
    from synthguard.detect.context import InspectionContext  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415

    with InspectionContext.build(env.home, policy=load_policy(policy_path), trust=trust_files,
                                 classifier=False) as context:
        result = run(paths, context)
    if as_json:
        print_json(result)
    else:
        click.echo(render(result))


@bench.command("verify")
@click.option("-n", "n", default=1000, show_default=True, type=click.IntRange(1), help="Images in the folder.")
@click.option("--workers", "worker_list", default="1,2", show_default=True,
              help="Comma-separated worker counts (with ray: actor pool sizes).")
@click.option("--engine", "engine_list", default="local", show_default=True,
              help="Comma-separated engines to compare: local, ray (the ray extra).")
@click.option("--address", help="The Ray cluster for --engine ray (default: a local instance started for the run).")
@options.policy("Policy YAML (default: the built-in default: watermark and classifier on).")
@options.json_output()
@pass_env
def bench_verify(env: Env, n, worker_list, engine_list, address, policy_path, as_json) -> None:
    """Throughput of `synthguard verify` on a folder of N 512 px images (written to a temp folder), with each
    engine and worker count side by side, peak memory per worker or actor, and whether the JSONL is identical
    across all runs. Ray's start-up is timed apart: its runs give files/s without and with it.

    \b
    Examples:
      synthguard bench verify
      synthguard bench verify -n 200 --workers 1,2,4 --json
      synthguard bench verify -n 200 --workers 1,2 --engine local,ray
    """
    from synthguard.bench.verify_bench import ENGINES, run  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415

    try:
        workers = [int(w) for w in worker_list.split(",") if w.strip()]
    except ValueError:
        raise InputError(f"--workers must be comma-separated integers, not {worker_list!r}") from None
    if not workers or min(workers) < 1:
        raise InputError("--workers needs at least one count >= 1")
    engines = tuple(dict.fromkeys(e.strip() for e in engine_list.split(",") if e.strip()))
    if not engines or any(e not in ENGINES for e in engines):
        raise click.UsageError(f"--engine: comma-separated names from {', '.join(ENGINES)}, not {engine_list!r}")
    if address is not None and "ray" not in engines:
        raise click.UsageError("--address needs --engine ray")
    result = run(n, workers, load_policy(policy_path), env.home.root, log=lambda line: click.echo(line, err=True),
                 engines=engines, address=address)
    if as_json:
        print_json(result)
        return
    for r in result["runs"]:
        if r["engine"] == "local":
            click.echo(f"{r['workers']} worker(s): {r['files_per_second']:.1f} files/s ({r['seconds']:.1f} s for "
                       f"{n} files), peak RSS main {r['peak_rss_mb_main']:.0f} MB, workers "
                       f"{r['peak_rss_mb_workers']:.0f} MB, {r['errors']} error(s)")
        else:
            click.echo(f"ray, {r['workers']} actor(s) on {r['accelerator'].upper()}: {r['files_per_second']:.1f} "
                       f"files/s ({r['seconds']:.1f} s for {n} files; {r['files_per_second_with_start']:.1f} files/s "
                       f"with the start-up), peak memory per actor "
                       f"{', '.join(f'{mb} MB' for mb in r['peak_mb_per_actor'])}, {r['errors']} error(s)")
    if "ray" in result:
        cluster = result["ray"]["cluster"]
        click.echo(f"Ray start-up: {result['ray']['start_seconds']:.1f} s, not per-file cost ({cluster['nodes']} "
                   f"node(s), {cluster['cpus']:g} CPU(s), {cluster['gpus']:g} GPU(s))")
    if "identical_jsonl_across_workers" in result:
        click.echo(f"identical JSONL across worker counts: {result['identical_jsonl_across_workers']}")
    if len(engines) > 1:
        click.echo(f"identical JSONL across all runs: {result['identical_jsonl_across_runs']}")


@bench.command("watermark")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Add the images in this folder to the default photo set.")
@click.option("--no-default-photos", is_flag=True, help="Use only --images (no scikit-image/scikit-learn set).")
@click.option("--size", default=512, show_default=True, type=click.IntRange(128, 8192),
              help="Side of the square each image is cropped and resized to.")
@click.option("--peers/--no-peers", default=True, show_default=True,
              help="Run invisible-watermark's dwtDctSvd and rivaGan beside SynthGuard's (when installed).")
@click.option("--peer-images", default=6, show_default=True, type=click.IntRange(0),
              help="Images for the peers (rivaGan takes seconds per decode on a CPU); 0 = all.")
@click.option("--attacks", "attack_names", help="Comma-separated attack names (default: the whole suite).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random payloads.")
@click.option("--screen-compare", is_flag=True,
              help="Instead: SynthGuard's detector with and without its fast rejection screen, per attack.")
@options.json_output()
def bench_watermark(images_dir, no_default_photos, size, peers, peer_images, attack_names, seed, screen_compare,
                    as_json) -> None:
    """Robustness, quality, speed and false positives of the image watermark, beside peer watermarks.

    Runs every attack (JPEG 90/75/50, WebP 80, resize, rescale, crops, blur, brightness, contrast, rotation,
    noise, chains) on marked and on unmarked images; one thread (cv2) for comparable timings.

    \b
    Examples:
      synthguard bench watermark
      synthguard bench watermark --images ~/photos --no-peers --json > wm.json
      synthguard bench watermark --attacks jpeg50,crop80 --size 1024
      synthguard bench watermark --screen-compare --attacks none,crop80,rotate2
    """
    import cv2  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.bench.watermark_bench import PEERS_INSTALL, default_photos, folder_photos, iter_methods, run_method  # noqa: PLC0415
    from synthguard.watermark.image.attacks import ATTACKS  # noqa: PLC0415

    cv2.setNumThreads(1)
    attacks = {"none": lambda im: im, **ATTACKS}
    if attack_names:
        unknown = [a for a in attack_names.split(",") if a not in attacks]
        if unknown:
            raise InputError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(attacks)}")
        attacks = {a: attacks[a] for a in attack_names.split(",")}
    if no_default_photos and not images_dir:
        raise InputError("--no-default-photos needs --images DIR")
    photos = ([] if no_default_photos else default_photos(size)) + (folder_photos(images_dir, size)
                                                                    if images_dir else [])
    if screen_compare:
        from synthguard.bench.watermark_bench import run_screen_comparison, screen_table  # noqa: PLC0415
        from synthguard.watermark import default_image_watermarker  # noqa: PLC0415

        with tqdm(total=len(photos) * len(attacks), desc="screen", unit="test", file=sys.stderr, disable=None) as bar:
            result = run_screen_comparison(default_image_watermarker(), photos, attacks, seed=seed, tick=bar.update)
        if as_json:
            print_json({"size": size, "screen": result})
        else:
            click.echo("\n".join(screen_table(result)))
        return
    methods = list(iter_methods(peers))
    if peers and len(methods) == 1:
        click.echo(f"note: peer watermarks not installed; to compare, run: {PEERS_INSTALL}", err=True)
    reports = []
    for method in methods:
        subset = photos if method.name.startswith("synthguard") or not peer_images else photos[:peer_images]
        with tqdm(total=len(subset) * len(attacks), desc=method.name, unit="test", file=sys.stderr,
                  disable=None) as bar:
            reports.append(run_method(method, subset, attacks, seed=seed, tick=bar.update).summary())
    if as_json:
        print_json({"size": size, "reports": reports})
        return
    _print_watermark_table(reports, list(attacks))


def _pct(value) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def _print_watermark_table(reports: list[dict], attacks: list[str]) -> None:
    names = [r["method"] for r in reports]
    click.echo("exact payload recovery / mean bit accuracy / false positives on unmarked images, per attack")
    click.echo(f"{'attack':<26}" + "".join(f" | {n[:30]:<30}" for n in names))
    for attack in attacks:
        cells = []
        for r in reports:
            a = r["attacks"][attack]
            cells.append(f" | {_pct(a['exact'])} {_pct(a['bit_accuracy'])} {a['false_positives']:>3d} FP      ")
        tag = " *" if reports[0]["attacks"][attack]["report_only"] else ""
        click.echo(f"{attack + tag:<26}" + "".join(c[:33] for c in cells))
    click.echo("(* outside the acceptance bar, reported for completeness)")
    for r in reports:
        click.echo(f"{r['method']}: {r['payload_bits']} bits, {r['images']} images, PSNR {r['psnr_mean']:.2f} dB "
                   f"(min {r['psnr_min']:.2f}), SSIM {r['ssim_mean']:.4f}, embed {r['embed_ms_per_mp']:.0f} ms/MP, "
                   f"decode {r['decode_ms_per_mp']:.0f} ms/MP, false positives {r['false_positives_total']}/"
                   f"{r['unmarked_tests']}")


@bench.command("sd-marks")
@click.option("--photos", "photos_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of real photos to use instead of the scikit-image/scikit-learn set.")
@options.json_output()
def bench_sd_marks(photos_dir, as_json) -> None:
    """Detection rate and false positives of the Stable Diffusion XL / 1.x / 2.x invisible marks reader.

    Marks 20 photos with invisible-watermark's own encoder the way each generator calls it, saved as PNG and JPEG
    85 (and, for completeness, JPEG 85 4:4:4, 50 % resize, 90 degree rotation); reads 200+ unmarked photos, crops
    and variants with every reading; times a 1024x1024 and a 4000x3000 image.

    \b
    Examples:
      synthguard bench sd-marks
      synthguard bench sd-marks --photos ~/photos --json > sd-marks.json
    """
    from synthguard.bench.sd_marks_bench import render, run  # noqa: PLC0415

    result = run(photos_dir)
    if as_json:
        print_json(result)
    else:
        click.echo(render(result))


for _command in (bench_text_memory, bench_image_memory, bench_ledger, bench_resolver):
    bench.add_command(_command)
bench.add_command(bench_augment)
bench.add_command(bench_audio_watermark)
