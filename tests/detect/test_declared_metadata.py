"""Unsigned AI declarations in a file's metadata reach the verdict as ``ai-declared``, never ``ai-generated``."""

from __future__ import annotations

from PIL import Image, PngImagePlugin

from synthguard.desk.batch import VerifyLine
from synthguard.detect import InspectionContext, VerdictLabel, inspect_file
from synthguard.policy import load_policy

PARAMETERS = ("a lighthouse at dusk\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7, "
              "Seed: 1234, Size: 512x512, Model hash: 31e35c80fc, Model: sd_xl_base_1.0")


def test_generator_parameters_give_ai_declared_and_a_plain_copy_does_not(home, tmp_path, pixels):
    marked, plain = tmp_path / "webui.png", tmp_path / "plain.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", PARAMETERS)
    Image.fromarray(pixels).save(marked, pnginfo=info)
    Image.fromarray(pixels).save(plain)
    with InspectionContext.build(home, classifier=False) as context:
        declared = inspect_file(marked, context)
        clean = inspect_file(plain, context)
    assert declared.verdict.label is VerdictLabel.AI_DECLARED and declared.verdict.confidence is None
    assert any("Stable Diffusion web UI" in r and "proves nothing by itself" in r for r in declared.verdict.reasons)
    assert declared.to_dict()["metadata"]["declares_ai"] is True
    assert clean.verdict.label is VerdictLabel.UNKNOWN and clean.to_dict()["metadata"]["declares_ai"] is False
    # The batch line carries the same signal, and reads back.
    line = VerifyLine.of(declared, "0" * 64, load_policy(None))
    assert VerifyLine.from_dict(line.to_dict()) == line and line.metadata.declares_ai
