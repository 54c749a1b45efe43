"""The generate flow for text: sample with the watermark in the loop, write each text atomically with a signed
``.c2pa`` sidecar (trainedAlgorithmicMedia, the model assertion, the watermark scheme and key id as soft binding),
and record it in the ledger."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from synthguard.core.fileio import check_output_path
from synthguard.errors import InputError
from synthguard.models.text import TextModel, generate_text
from synthguard.provenance.manifest import ManifestSpec, ModelInfo, SoftBinding
from synthguard.provenance.signing import SigningSession, sidecar_path

# Fewer new tokens than this rarely carry a detectable watermark; such outputs are written with a warning.
SHORT_TEXT_TOKENS = 25


@dataclass
class TextOutput:
    file: str
    sidecar: str | None
    prompt_sha256: str
    new_tokens: int
    watermark: dict | None
    asset_id: str
    warning: str | None = None


@dataclass
class TextReport:
    model: str
    version: str
    device: str
    outputs: list[TextOutput]
    seconds: float
    tokens_per_second: float

    def to_dict(self) -> dict:
        return {**asdict(self), "outputs": [asdict(o) for o in self.outputs]}


def output_paths(output: Path, count: int) -> list[Path]:
    """One ``.txt``/``.md`` file for one text; otherwise a folder of ``text-0000.txt``..."""
    if output.suffix.lower() in (".txt", ".md"):
        if count != 1:
            raise InputError(f"-o {output} names one file, but {count} texts will be made: give a folder")
        return [output]
    return [output / f"text-{i:04d}.txt" for i in range(count)]


def generate_and_stamp_text(tm: TextModel, prompts: Sequence[str], output: Path, session: SigningSession,
                            watermarker, *, max_new_tokens: int, temperature: float, top_p: float, top_k: int,
                            seed: int, batch_size: int, overwrite: bool = False,
                            progress: Callable[[int], None] | None = None, streamer=None) -> TextReport:
    paths = output_paths(output, len(prompts))
    if output.exists() and not output.is_dir() and paths[0] != output:
        raise InputError(f"-o {output} is a file; several texts go into a folder")
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path in paths:  # refuse before spending minutes on generation
        check_output_path(path, overwrite=overwrite)
        check_output_path(sidecar_path(path), overwrite=overwrite)
    start = time.perf_counter()
    samples = generate_text(tm, prompts, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                            top_k=top_k, seed=seed, watermarker=watermarker, batch_size=batch_size,
                            progress=progress, streamer=streamer)
    seconds = time.perf_counter() - start
    binding = None
    if watermarker is not None:
        binding = SoftBinding(watermarker.algorithm_id, bytes.fromhex(watermarker.key_id))
    outputs = []
    for i, (sample, path) in enumerate(zip(samples, paths, strict=True)):
        if not sample.text.strip():
            raise InputError(f"the model ended prompt {i} without any text (seed {seed}); try another seed or prompt")
        params = {"prompt_sha256": hashlib.sha256(sample.prompt.encode()).hexdigest(), "prompt_index": i,
                  "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k,
                  "batch_size": batch_size, "new_tokens": sample.new_tokens}
        if watermarker is not None:
            params["watermark"] = watermarker.settings()
        spec = ManifestSpec(title=path.name, model=ModelInfo(tm.name, tm.version, None, seed, params),
                            soft_binding=binding)
        with tempfile.TemporaryDirectory(prefix=".synthguard-", dir=path.parent) as tmp:
            src = Path(tmp) / ("text" + path.suffix)
            src.write_text(sample.text, encoding="utf-8")
            signed = session.sign_file(src, path, spec, overwrite=overwrite)
        warning = None
        if watermarker is not None and sample.new_tokens < SHORT_TEXT_TOKENS:
            warning = (f"only {sample.new_tokens} tokens: too short for the watermark to be detected reliably; the "
                       "signed sidecar still declares it AI-generated")
        outputs.append(TextOutput(str(path), str(signed.sidecar) if signed.sidecar else None, params["prompt_sha256"],
                                  sample.new_tokens, watermarker.settings() if watermarker else None,
                                  signed.asset_id, warning))
    tokens = sum(s.new_tokens for s in samples)
    return TextReport(tm.name, tm.version, str(tm.device), outputs, seconds, tokens / max(seconds, 1e-9))
