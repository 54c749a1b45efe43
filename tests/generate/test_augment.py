"""The augment flow over a tiny class-conditional model made on the spot: an ImageFolder dataset, every file
stamped, a card whose counts and label agreement are what the files show, refusals at the boundary, a failed run
leaving nothing behind."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.core.media import decode_image
from synthguard.errors import InputError
from synthguard.generate import augment as augment_module
from synthguard.generate.augment import AugmentRequest, augment_dataset
from synthguard.models.gan import DCGANGenerator
from synthguard.models.vae import ConvVAE
from synthguard.provenance.ledger import Ledger


@pytest.fixture
def tiny_gan(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny-cgan"
    DCGANGenerator(latent_dim=8, width=8, num_classes=3).save_pretrained(path)
    return path


def request(out, model, **kw):
    return AugmentRequest(output_dir=out, model=str(model), size=128, threads=1, workers=1,
                          **{"per_class": 2, **kw})


def test_writes_an_imagefolder_every_file_stamped_with_a_card(home, tmp_path, tiny_gan):
    out = tmp_path / "ds"
    report = augment_dataset(request(out, tiny_gan, seed=10), home)

    # Layout: one folder per class, named by the label; class K image i has seed 10 + K * 2 + i.
    assert sorted(p.name for p in out.iterdir()) == ["0", "1", "2", "README.md", "dataset.json"]
    for k in range(3):
        assert sorted(p.name for p in (out / str(k)).iterdir()) == [
            f"tiny-cgan-l{k}-{10 + 2 * k + i:06d}.png" for i in range(2)]
    assert report.images == 6 and [c.label for c in report.classes] == [0, 1, 2]

    # Every file stamped: in the ledger, and one read back as watermarked, signed AI with its seed and label.
    with Ledger(home.ledger_path) as ledger:
        assert ledger.count() == 6
    path = out / "2" / "tiny-cgan-l2-000015.png"
    detected = json.loads(CliRunner().invoke(main, ["detect", str(path), "--json"]).stdout)
    assert detected["watermark"]["detected"] and detected["provenance"]["state"] == "trusted"
    model = detected["provenance"]["model"]
    assert model["seed"] == 15 and model["parameters"]["label"] == 2

    # The label agreement is what the shipped classifier (as eval names it) reads in the files.
    from synthguard.training.evaluation import builtin_feature_extractor, to_mnist_input
    extractor = builtin_feature_extractor(num_threads=1)
    assert report.classifier == extractor.name
    for summary in report.classes:
        images = [decode_image(out / f, keep_rgb=True).rgb for f in summary.files]
        _, probs = extractor(to_mnist_input(images))
        assert summary.label_agreement == pytest.approx(float((probs.argmax(1) == summary.label).mean()))
    overall = np.mean([s.label_agreement for s in report.classes])
    assert report.label_agreement == pytest.approx(overall)

    # The card and dataset.json say the same, with no local path.
    card = (out / "README.md").read_text()
    assert f"label agreement: {report.label_agreement:.2f}" in card
    assert "images: 6 (2 per class, classes 0-2), PNG, 128x128 px, grey" in card
    assert report.config_hash in card and "synthguard verify" in card and str(tmp_path) not in card
    for summary in report.classes:
        row = f"| {summary.label} | `{summary.label}/` | 2 | {summary.seeds.start}-{summary.seeds.stop - 1} | "
        assert row + f"{summary.label_agreement:.2f} | " in card
        assert sum(summary.predicted.values()) == 2
        assert summary.predicted.get(summary.label, 0) == round(2 * summary.label_agreement)
    facts = json.loads((out / "dataset.json").read_text())
    assert str(tmp_path) not in json.dumps(facts)
    assert [c["count"] for c in facts["classes"]] == [2, 2, 2] and facts["model"]["num_classes"] == 3
    assert facts["label_agreement"] == report.label_agreement and facts["classifier"] == extractor.name
    assert facts["model"]["config_hash"] == report.config_hash and not facts["model"]["builtin"]
    assert "not known" in facts["licence"]  # a given model: its data's licence is not claimed


def test_refuses_a_non_empty_folder_and_replaces_an_earlier_dataset_when_asked(home, tmp_path, tiny_gan):
    out = tmp_path / "ds"
    augment_dataset(request(out, tiny_gan, per_class=2, classes=(0, 1)), home)
    with pytest.raises(InputError, match="not empty") as refused:
        augment_dataset(request(out, tiny_gan, per_class=1, classes=(0, 1)), home)
    assert refused.value.hint is not None
    (out / "1" / "mine.txt").write_text("not from augment")
    report = augment_dataset(request(out, tiny_gan, per_class=1, classes=(0, 1), overwrite=True), home)
    # The earlier dataset's second image per class is gone; the foreign file is kept, uncounted and reported.
    assert sorted(p.name for p in (out / "0").iterdir()) == ["tiny-cgan-l0-000000.png"]
    assert sorted(p.name for p in (out / "1").iterdir()) == ["mine.txt", "tiny-cgan-l1-000001.png"]
    assert report.images == 2 and len(report.warnings) == 1 and "1 file not written" in report.warnings[0]
    assert "warning:" in (out / "README.md").read_text()


def test_the_vae_backend_and_a_class_subset(home, tmp_path):
    torch.manual_seed(0)
    ConvVAE(latent_dim=4, width=4, num_classes=4).save_pretrained(tmp_path / "cvae")
    report = augment_dataset(request(tmp_path / "ds", tmp_path / "cvae", backend="vae", per_class=1,
                                     classes=(3, 1), fmt="webp"), home)
    assert [c.label for c in report.classes] == [1, 3]  # sorted
    assert [c.files for c in report.classes] == [("1/cvae-l1-000001.webp",), ("3/cvae-l3-000003.webp",)]
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["1", "3", "README.md", "dataset.json"]


@pytest.mark.parametrize("bad, message", [
    ({"per_class": 0}, "per_class"), ({"classes": ()}, "non-empty"), ({"classes": (1, 1)}, "twice"),
    ({"classes": (-1,)}, "a class"), ({"classes": "012"}, "sequence"), ({"size": 64}, "size"),
    ({"backend": "diffusion"}, "class-conditional"), ({"fmt": "gif"}, "unknown format"),
])
def test_bad_requests_are_refused_when_made(tmp_path, bad, message):
    with pytest.raises(InputError, match=message):
        AugmentRequest(output_dir=tmp_path / "x", **{"per_class": 2, **bad})


def test_classes_out_of_range_and_unconditional_models_are_refused_before_writing(home, tmp_path, tiny_gan):
    with pytest.raises(InputError, match=r"class 5 out of range: .* knows classes 0-2"):
        augment_dataset(request(tmp_path / "ds", tiny_gan, classes=(0, 5)), home)
    DCGANGenerator(latent_dim=8, width=8).save_pretrained(tmp_path / "plain")
    with pytest.raises(InputError, match="unconditional"):
        augment_dataset(request(tmp_path / "ds", tmp_path / "plain"), home)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        augment_dataset(request(tmp_path / "file", tiny_gan), home)
    assert not (tmp_path / "ds").exists()


def test_a_failed_run_removes_what_it_wrote(home, tmp_path, tiny_gan, monkeypatch):
    real = augment_module.generate_images
    calls = []

    def fail_on_the_second_class(image_request, stamper, **kw):
        calls.append(image_request.label)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(image_request, stamper, **kw)

    monkeypatch.setattr(augment_module, "generate_images", fail_on_the_second_class)
    with pytest.raises(KeyboardInterrupt):
        augment_dataset(request(tmp_path / "ds", tiny_gan), home)
    assert calls == [0, 1] and not (tmp_path / "ds").exists()
