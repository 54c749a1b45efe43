"""The detector at inference: a calibration is applied in order, scoring takes any size and refuses bad input,
save and load round-trip, and the numpy runtime computes what the torch modules compute (its training is
tests/training/test_detector.py).

Tiny seeded models built from config (patch 32, widths (4, 8); global 16, widths (4, 8)); only the ``builtin`` tests
read the shipped weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthguard.core.samples import procedural_image
from synthguard.errors import InputError
from synthguard.models.detector import (
    Calibration,
    GlobalNet,
    PatchDetector,
    PatchNet,
    Runtime,
    builtin_detector,
    patch_grid,
    thumbnail,
)
from synthguard.models.detector_nets import GlobalDiscriminator, PatchDiscriminator, to_torch


def tiny_model(seed: int = 0) -> PatchDiscriminator:
    torch.manual_seed(seed)
    return PatchDiscriminator(patch_size=32, widths=(4, 8), max_grid=8)


def tiny_detector() -> PatchDetector:
    calibration = Calibration(weights=(0.5,), bias=0.1, threshold=0.6, target_fpr=0.01, measured_fpr=0.0,
                              n_real=100, n_fake=100)
    return PatchDetector(tiny_model(), calibration, name="tiny", num_threads=1)


def tiny_two_view_detector() -> PatchDetector:
    torch.manual_seed(1)
    calibration = Calibration(weights=(0.5, 2.0), bias=-0.3, threshold=0.6, target_fpr=0.01, measured_fpr=0.0,
                              n_real=100, n_fake=100)
    return PatchDetector(tiny_model(), calibration, global_model=GlobalDiscriminator(size=16, widths=(4, 8)),
                         name="tiny2", num_threads=1)


def test_calibration_refuses_nonpositive_weights_and_wrong_arity():
    with pytest.raises(InputError, match="weights"):
        Calibration(weights=(-1.0,), bias=0.0, threshold=0.5, target_fpr=0.01, measured_fpr=0.0, n_real=1,
                    n_fake=1)
    with pytest.raises(InputError, match="2 scores"):
        Calibration(weights=(1.0, 1.0), bias=0.0, threshold=0.5, target_fpr=0.01, measured_fpr=0.0, n_real=1,
                    n_fake=1).probability(np.zeros((4, 3)))
    with pytest.raises(InputError, match="view"):
        PatchDetector(tiny_model(), tiny_two_view_detector().calibration)


def test_two_view_score_and_heatmap():
    detector = tiny_two_view_detector()
    image = procedural_image(160, 96, seed=3)
    result = detector.score(image)
    assert result.global_logit is not None
    expected = 1 / (1 + np.exp(-(0.5 * result.logit + 2.0 * result.global_logit - 0.3)))
    assert result.probability == pytest.approx(expected)
    assert result.heatmap.shape == (3, 5)
    assert thumbnail(np.zeros((100, 300), np.uint8), 16).shape == (16, 16)


@pytest.mark.parametrize(
    ("shape", "grid"),
    [((128, 128), (4, 4)), ((512, 512, 3), (8, 8)), ((100, 300), (4, 8)), ((40, 33, 3), (2, 2))],
)
def test_score_any_size_grey_or_rgb(shape, grid):
    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    result = tiny_detector().score(image)
    assert result.heatmap.shape == grid == tuple(map(len, patch_grid(shape[0], shape[1], 32, 8)))
    assert result.patches == grid[0] * grid[1]
    assert 0 <= result.probability <= 1 and np.all((result.heatmap >= 0) & (result.heatmap <= 1))
    assert result.threshold == 0.6 and result.model == "tiny"
    assert result.probability == pytest.approx(1 / (1 + np.exp(-(result.logit * 0.5 + 0.1))))
    assert result.synthetic == (result.probability >= 0.6)


def test_image_smaller_than_a_patch_is_padded_to_one_patch():
    torch.manual_seed(0)
    detector = PatchDetector(PatchDiscriminator(patch_size=64, widths=(4, 8)), tiny_detector().calibration)
    assert detector.score(np.zeros((40, 50), np.uint8)).heatmap.shape == (1, 1)


def test_grey_and_rgb_of_the_same_grey_image_score_alike():
    grey = procedural_image(96, 96, seed=2)[..., 0]
    detector = tiny_detector()
    assert detector.score(grey).logit == pytest.approx(detector.score(np.dstack([grey] * 3)).logit, abs=1e-6)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64), np.float32), "uint8"),
        (np.zeros((64, 64), np.uint16), "uint8"),
        (np.zeros((31, 64), np.uint8), "at least 32"),
        (np.zeros((64, 64, 4), np.uint8), "shape"),
        ([[0] * 64] * 64, "numpy array"),
    ],
)
def test_score_refuses_bad_input(image, message):
    with pytest.raises(InputError, match=message):
        tiny_detector().score(image)


@pytest.mark.parametrize("make", [tiny_detector, tiny_two_view_detector])
def test_save_and_load_round_trip(tmp_path, make):
    detector = make()
    detector.save_pretrained(tmp_path)
    assert {"patch", "calibration.json"} <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "global").is_dir() == (detector.global_model is not None)
    loaded = PatchDetector.from_pretrained(tmp_path, name="tiny")
    image = procedural_image(80, 120, seed=4)
    assert loaded.score(image).probability == pytest.approx(detector.score(image).probability, abs=1e-6)
    assert loaded.calibration == detector.calibration


def test_load_refuses_missing_folder(tmp_path):
    with pytest.raises(InputError):
        PatchDetector.from_pretrained(tmp_path / "absent")


def test_builtin_detector_loads():
    detector = builtin_detector(num_threads=1)
    result = detector.score(procedural_image(128, 128, seed=0))
    assert result.heatmap.shape == (2, 2) and result.model == "synthguard/patch-detector"
    assert detector.global_model is not None and len(detector.calibration.weights) == 2
    assert detector.calibration.target_fpr == 0.01


@pytest.mark.slow
def test_builtin_flags_most_gan_samples_and_no_real_photo():
    """The shipped detector at its own threshold, on unseen seeds and the scikit-image photographs."""
    from synthguard.generate.backends import builtin_generator

    data = pytest.importorskip("skimage.data")
    detector = builtin_detector(num_threads=1)
    fakes = builtin_generator("gan", num_threads=1).generate(20, 4_000_000, device="cpu").images
    flagged = sum(detector.score(im).synthetic for im in fakes)
    assert flagged >= 10, flagged  # at least half: the card's GAN detection rate is well above it
    for name in ("astronaut", "coffee", "camera", "rocket", "chelsea", "moon", "page"):
        assert not detector.score(getattr(data, name)()).synthetic, name


@pytest.mark.slow
def test_bench_detector_runs_small(home):
    from click.testing import CliRunner

    from synthguard.cli import main

    pytest.importorskip("skimage.data")
    result = CliRunner().invoke(main, ["bench", "detector", "-n", "5", "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    families = {row["family"] for row in report["evaluation"]["families"]}
    assert families == {"gan", "vae", "vae_recon", "upsampled", "procedural", "ddpm"}
    assert "AUC left out" in report["table"] and report["evaluation"]["ms_per_512"] > 0
    # A lower threshold (as a policy may set) flags at least as much of everything; the AUCs do not move.
    low = json.loads(CliRunner().invoke(main, ["bench", "detector", "-n", "5", "--threshold", "0.01", "--json"]).stdout)
    assert low["calibration"]["threshold"] == 0.01
    assert low["calibrated_threshold"] == report["calibration"]["threshold"] == builtin_detector().calibration.threshold
    assert "--threshold" in low["table"]
    rows = {(r["family"], r["perturbation"]): r for r in report["evaluation"]["families"]}
    for row in low["evaluation"]["families"]:
        assert row["auc"] == rows[row["family"], row["perturbation"]]["auc"]
        assert row["tpr"] >= rows[row["family"], row["perturbation"]]["tpr"]
    assert low["evaluation"]["fpr"]["none"]["all"] >= report["evaluation"]["fpr"]["none"]["all"]
    refused = CliRunner().invoke(main, ["bench", "detector", "--threshold", "1.5"])
    assert refused.exit_code == 2 and "Traceback" not in refused.output


def _randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """The module with every weight and bias drawn anew: normal weights scaled by 1 / sqrt(fan-in) (activations of
    order one, as in a trained network), biases of spread 0.1 (torch's init keeps them near zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            fan_in = parameter[0].numel() if parameter.ndim > 1 else 100
            parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in**0.5)
    return module.eval()


def _torch_logits(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.from_numpy(x)[:, None]).numpy()


@pytest.mark.parametrize(("config", "sizes"), [
    ({"patch_size": 32, "widths": (4, 8), "max_grid": 8}, (32, 33, 47, 64)),
    ({"patch_size": 64, "widths": (16, 32, 64, 64), "max_grid": 4}, (64, 40, 71)),
    ({"patch_size": 32, "widths": (3,), "max_grid": 2}, (32, 5)),
])
def test_numpy_patch_view_equals_torch(config, sizes):
    module = _randomised(PatchDiscriminator(**config), seed=len(sizes))
    net = PatchNet.from_module(module)
    rng = np.random.default_rng(0)
    for size in sizes:
        for batch in (1, 7):
            x = rng.random((batch, size, size), dtype=np.float32)
            expected = _torch_logits(module, x)
            assert net(x).shape == expected.shape == (batch,)
            np.testing.assert_allclose(net(x), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("config", [{"size": 16, "widths": (4, 8)}, {"size": 24, "widths": (4, 8, 8)},
                                    {"size": 32, "widths": (32, 64, 128, 128)}])
def test_numpy_global_view_equals_torch(config):
    module = _randomised(GlobalDiscriminator(**config), seed=config["size"])
    net = GlobalNet.from_module(module)
    rng = np.random.default_rng(1)
    for batch in (1, 5, 70):  # 70: more than one chunk of the numpy forward pass
        x = rng.random((batch, config["size"], config["size"]), dtype=np.float32)
        np.testing.assert_allclose(net(x), _torch_logits(module, x), rtol=0, atol=1e-5)


def test_numpy_view_round_trips_to_torch_and_refuses_bad_input():
    net = PatchNet.from_module(_randomised(PatchDiscriminator(patch_size=32, widths=(4, 8)), seed=3))
    x = np.random.default_rng(2).random((3, 32, 32), dtype=np.float32)
    np.testing.assert_allclose(_torch_logits(to_torch(net), x), net(x), rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="mismatched"):
        PatchNet(net.config, {**net.state_dict(), "head.weight": np.zeros((1, 9), np.float32)})
    with pytest.raises(InputError, match="missing"):
        PatchNet(net.config, {k: v for k, v in net.state_dict().items() if k != "head.bias"})
    with pytest.raises(InputError, match=r"\(N, S, S\)"):
        net(np.zeros((32, 32), np.float32))


def _scored_images() -> list[np.ndarray]:
    """A seeded set: procedural images of several sizes, grey and RGB noise, a small image padded to one patch."""
    rng = np.random.default_rng(7)
    images = [procedural_image(h, w, seed=s) for s, (h, w) in enumerate([(512, 512), (96, 160), (300, 200),
                                                                         (128, 128), (700, 450), (64, 64)])]
    images += [rng.integers(0, 256, (200, 260), dtype=np.uint8), rng.integers(0, 256, (90, 90, 3), dtype=np.uint8),
               procedural_image(40, 50, seed=9), procedural_image(256, 256, seed=11)[..., 0]]
    return images


def test_builtin_numpy_runtime_equals_torch_runtime():
    numpy_detector = builtin_detector(num_threads=1)
    torch_detector = builtin_detector(num_threads=1, runtime="torch")
    assert numpy_detector.runtime is Runtime.NUMPY and isinstance(numpy_detector.model, PatchNet)
    assert torch_detector.runtime is Runtime.TORCH and isinstance(torch_detector.model, PatchDiscriminator)
    for image in _scored_images():
        a, b = numpy_detector.score(image), torch_detector.score(image)
        assert a.probability == pytest.approx(b.probability, rel=0, abs=1e-6)
        np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=0, atol=1e-6)
        assert a.logit == pytest.approx(b.logit, rel=0, abs=1e-4)
        assert a.global_logit == pytest.approx(b.global_logit, rel=0, abs=1e-4)
        assert (a.patches, a.threshold, a.model) == (b.patches, b.threshold, b.model)
        # What a report shows (the probability to 6 decimals, the heatmap to 4 as ``to_dict`` rounds it) can differ
        # only where the two values straddle a rounding boundary: by one step at most.
        assert abs(round(a.probability, 6) - round(b.probability, 6)) <= 1e-6 + 1e-12
        steps = np.abs(np.array(a.to_dict()["heatmap"]) - np.array(b.to_dict()["heatmap"]))
        assert steps.max() <= 1e-4 + 1e-12 and a.synthetic == b.synthetic


def test_runtime_is_chosen_from_the_device_and_checked():
    patch, calibration = tiny_model(), tiny_detector().calibration
    assert PatchDetector(patch, calibration).runtime is Runtime.NUMPY
    assert PatchDetector(patch, calibration, runtime="torch").device == "cpu"
    with pytest.raises(InputError, match="numpy runtime runs on the CPU only"):
        PatchDetector(patch, calibration, runtime="numpy", device="cuda")
    with pytest.raises(InputError, match="runtime must be one of"):
        PatchDetector(patch, calibration, runtime="onnx")
    with pytest.raises(InputError, match="device"):
        PatchDetector(patch, calibration, device="tpu")
    with pytest.raises(InputError, match="num_threads"):
        PatchDetector(patch, calibration, num_threads=0)


def test_numpy_detector_saves_what_the_torch_runtime_loads(tmp_path):
    """A detector loaded for numpy is saved by numpy; the torch runtime (diffusers' loader) reads it back."""
    tiny_two_view_detector().save_pretrained(tmp_path / "torch-saved")
    loaded = PatchDetector.from_pretrained(tmp_path / "torch-saved", name="tiny")
    assert isinstance(loaded.model, PatchNet) and isinstance(loaded.global_model, GlobalNet)
    loaded.save_pretrained(tmp_path / "numpy-saved")
    again = PatchDetector.from_pretrained(tmp_path / "numpy-saved", name="tiny", runtime="torch")
    assert isinstance(again.model, PatchDiscriminator) and isinstance(again.global_model, GlobalDiscriminator)
    image = procedural_image(96, 128, seed=6)
    assert again.score(image).probability == pytest.approx(loaded.score(image).probability, abs=1e-6)


def test_numpy_loader_refuses_weights_that_do_not_fit(tmp_path):
    tiny_detector().save_pretrained(tmp_path)
    config = tmp_path / "patch" / "config.json"
    config.write_text(config.read_text().replace('"patch_size": 32', '"patch_size": 64').replace("8\n", "16\n"))
    with pytest.raises(InputError, match="weights in"):
        PatchDetector.from_pretrained(tmp_path)
    config.write_text('{"_class_name": "GlobalDiscriminator"}')
    with pytest.raises(InputError, match="holds a 'GlobalDiscriminator'"):
        PatchDetector.from_pretrained(tmp_path)
    (tmp_path / "patch" / "config.json").write_text('{"_class_name": "PatchDiscriminator", "patch_size": 32, '
                                                    '"widths": [4, 8], "max_grid": 8}')
    (tmp_path / "patch" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(InputError, match="cannot load PatchDiscriminator"):
        PatchDetector.from_pretrained(tmp_path)
