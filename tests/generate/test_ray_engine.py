"""``generate --engine ray``: images sampled, stamped and written by Ray Data actors into one ledger (SQLite here,
PostgreSQL for clusters), each file verified, every payload its own, the pixels before the watermark those of the
local engine; a cluster past this machine refused on the home's SQLite ledger; workers' errors raised typed."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.postgres import BACKENDS, backend_url, fresh_postgres_url, postgres_url  # noqa: F401 (fixtures)
from helpers.ray import ray_local  # noqa: F401 (fixture)
from PIL import Image

from synthguard.cli import main
from synthguard.core.database import ENV_VAR, Database
from synthguard.errors import Hint, InputError, WatermarkError
from synthguard.generate.backends import builtin_generator
from synthguard.generate.ray_engine import _names_another_machine, _runs, generate_images_on_ray
from synthguard.generate.runs import Engine, ImageRequest
from synthguard.provenance.identity import IdentityStore
from synthguard.provenance.ledger import Ledger
from synthguard.watermark import default_image_watermarker


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(params=BACKENDS)
def ledger_url(request, tmp_path, monkeypatch) -> str:
    url = backend_url(request, tmp_path)
    monkeypatch.setenv(ENV_VAR, url)
    return url


@pytest.mark.usefixtures("ray_local")
def test_ray_actors_stamp_every_image_into_the_ledger_like_the_local_engine(home, ledger_url, tmp_path):
    from synthguard.detect import InspectionContext, inspect_file

    IdentityStore(home).init("SynthGuard test signer", "SynthGuard tests")
    request = ImageRequest(output_dir=tmp_path / "out", n=5, seed=7, threads=1)
    report = generate_images_on_ray(request, home, actors=2)

    assert report.engine is Engine.RAY and report.cluster.nodes == 1 and report.cluster.cpus == 2
    assert report.to_dict()["engine"] == "ray" and report.to_dict()["cluster"]["nodes"] == 1
    names = [f"mnist-dcgan-{seed:06d}.png" for seed in range(7, 12)]
    assert [f.signed.output for f in report.files] == [tmp_path / "out" / name for name in names]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names
    payloads = [f.payload for f in report.files]
    assert len(set(payloads)) == 5
    with Ledger(ledger_url) as ledger:
        assert ledger.count() == 5
        assert [[r.asset_id for r in ledger.find_by_soft_binding(p)] for p in payloads] == [
            [f.signed.asset_id] for f in report.files]
    with Database(ledger_url) as db:
        assert db.scalar("SELECT COUNT(DISTINCT soft_binding_value) FROM assets") == 5

    # The pixels before the watermark are the local engine's for the same seeds: marking them with the file's own
    # payload gives the file's pixels exactly (PNG is lossless).
    local = builtin_generator("gan", num_threads=1).generate(5, 7, device="cpu").images
    marker = default_image_watermarker()
    with InspectionContext.build(home) as context:
        for i, (file, pixels) in enumerate(zip(report.files, local, strict=True)):
            with Image.open(file.signed.output) as img:
                written = np.asarray(img)
            assert np.array_equal(written, marker.embed(pixels, file.payload))
            inspection = inspect_file(file.signed.output, context)
            assert inspection.provenance.state.value == "trusted"
            assert inspection.watermark.detected and bytes.fromhex(inspection.watermark.payload) == file.payload
            assert inspection.provenance.model["seed"] == 7 + i
            assert inspection.verdict.label.value == "ai-generated"


@pytest.mark.usefixtures("ray_local")
def test_the_ray_command_refuses_existing_outputs_and_replaces_them_with_force(home, tmp_path, monkeypatch):
    # Relative paths (home and output folder) mean the same on the workers, and are reported as given.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTHGUARD_HOME", home.root.name)
    out = Path("out")
    out.mkdir()
    (out / "mnist-dcgan-000001.png").write_bytes(b"mine")
    refused = run("generate", "--engine", "ray", "-n", "3", "-o", out, "--threads", "1")
    assert refused.exit_code == 2 and "already exists" in refused.output
    assert (out / "mnist-dcgan-000001.png").read_bytes() == b"mine"

    result = run("generate", "--engine", "ray", "--workers", "2", "-n", "3", "-o", out, "--threads", "1", "--force",
                 "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["engine"] == "ray" and report["images"] == 3 and report["cluster"]["cpus"] == 2
    assert set(report["seconds"]) == {"model", "watermark", "sign"}
    assert [f["output"] for f in report["files"]] == [str(out / f"mnist-dcgan-{s:06d}.png") for s in range(3)]
    assert (out / "mnist-dcgan-000001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Ledger(home.ledger_path) as ledger:
        assert ledger.count() == 3


@pytest.mark.usefixtures("ray_local")
def test_ray_actors_make_a_class_label_with_the_conditional_built_in(home, tmp_path):
    from synthguard.detect import InspectionContext, inspect_file

    IdentityStore(home).init("SynthGuard test signer", "SynthGuard tests")
    request = ImageRequest(output_dir=tmp_path / "fours", n=2, seed=3, threads=1, label=4)
    report = generate_images_on_ray(request, home, actors=1)

    assert [f.signed.output.name for f in report.files] == ["mnist-cdcgan-l4-000003.png", "mnist-cdcgan-l4-000004.png"]
    local = builtin_generator("gan-conditional", num_threads=1).generate(2, 3, labels=4, device="cpu").images
    marker = default_image_watermarker()
    with InspectionContext.build(home) as context:
        for file, pixels in zip(report.files, local, strict=True):
            with Image.open(file.signed.output) as img:
                assert np.array_equal(np.asarray(img), marker.embed(pixels, file.payload))
            inspection = inspect_file(file.signed.output, context)
            assert json.loads(str(inspection.provenance.model["parameters"]["label"])) == 4
            assert inspection.verdict.label.value == "ai-generated"


@pytest.mark.usefixtures("ray_local")
def test_an_error_on_a_worker_is_raised_with_its_type_and_hint(home, tmp_path):
    IdentityStore(home).init("t", "t")
    # 64 px is too small for the watermark: the actor's stamper refuses it before anything is written.
    request = ImageRequest(output_dir=tmp_path / "small", n=2, size=64, threads=1)
    with pytest.raises(WatermarkError, match="too small for the watermark") as caught:
        generate_images_on_ray(request, home, actors=1)
    assert caught.value.hint is Hint.NO_WATERMARK
    assert list((tmp_path / "small").iterdir()) == []


def test_a_cluster_on_another_machine_is_refused_on_the_home_sqlite_ledger(home, tmp_path):
    request = ImageRequest(output_dir=tmp_path / "out", n=2)
    with pytest.raises(InputError, match="each write a ledger of their own. Set SYNTHGUARD_DATABASE_URL to a "
                                         "PostgreSQL ledger"):
        generate_images_on_ray(request, home, address="10.11.12.13:6379")
    result = run("generate", "--engine", "ray", "--address", "ray://10.11.12.13:10001", "-n", "2", "-o",
                 tmp_path / "out")
    assert result.exit_code == 2 and "SYNTHGUARD_DATABASE_URL" in result.output
    # Refused before anything was made: no identity, no ledger, no folder.
    assert not IdentityStore(home).exists() and not home.ledger_path.exists() and not (tmp_path / "out").exists()


def test_what_the_ray_options_apply_to(home, tmp_path):
    assert run("generate", "--address", "auto", "-o", tmp_path / "o").exit_code == 2
    assert run("generate", "--engine", "ray", "--backend", "text", "--prompt", "x", "-o",
               tmp_path / "t.txt").exit_code == 2
    assert run("generate", "--engine", "ray", "--backend", "vae", "--interpolate", "1", "2", "-o",
               tmp_path / "m").exit_code == 2
    with pytest.raises(InputError, match="actors must be an integer"):
        generate_images_on_ray(ImageRequest(output_dir=tmp_path / "o"), home, actors=0)


def test_addresses_and_seed_runs():
    assert not _names_another_machine("auto")
    assert not _names_another_machine("127.0.0.1:6379") and not _names_another_machine("ray://localhost:10001")
    assert _names_another_machine("10.11.12.13:6379") and _names_another_machine("ray://head.example.org:10001")
    assert _runs([3, 4, 5, 9, 10, 2]) == [[3, 4, 5], [9, 10], [2]]
