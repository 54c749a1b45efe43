import json

import c2pa
import numpy as np
import pytest
from helpers.files import INTEROP
from PIL import Image

from synthguard.core.samples import procedural_image
from synthguard.errors import Hint, InputError, WatermarkError
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.provenance.signing import SigningSession
from synthguard.stamp import Stamper
from synthguard.watermark import default_image_watermarker
from synthguard.watermark.payload import PAYLOAD_LAYOUT_VERSION, Payload


@pytest.fixture
def stamper(home, identity):
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        yield Stamper(session, default_image_watermarker())


def manifest_of(path):
    with c2pa.Reader(str(path)) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]], store


def test_payload_layout_round_trip():
    for ai in (True, False):
        p = Payload.new(ai, None)
        back = Payload.from_bytes(p.to_bytes())
        assert back == p and back.version == PAYLOAD_LAYOUT_VERSION and back.ai_generated is ai
        assert len(p.to_bytes()) == 6


@pytest.mark.parametrize("mode,suffix", [("RGB", ".png"), ("L", ".png"), ("RGBA", ".png"), ("RGB", ".jpg"),
                                         ("RGB", ".webp")])
def test_stamp_embeds_then_signs_with_the_payload_bound(stamper, home, tmp_path, mode, suffix):
    src = tmp_path / f"in{suffix}"
    Image.fromarray(procedural_image(256, 192, seed=4)).convert(mode).save(src)
    out = tmp_path / f"out{suffix}"
    result = stamper.stamp_file(src, out, ManifestSpec(title="stamped"))
    manifest, _ = manifest_of(out)
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    assert assertions["c2pa.soft-binding"]["alg"] == stamper.watermarker.algorithm_id
    actions = [a["action"] for a in assertions["c2pa.actions.v2"]["actions"]]
    assert "c2pa.watermarked" in actions
    with Image.open(out) as img:
        assert img.mode == mode
        rgb = np.asarray(img.convert("L") if mode == "L" else img.convert("RGB"))
    found = stamper.watermarker.detect(rgb)
    assert found.detected and found.payload == result.payload
    assert Payload.from_bytes(result.payload).ai_generated  # trainedAlgorithmicMedia by default
    with Ledger(home.ledger_path) as ledger:
        assert ledger.find_by_soft_binding(result.payload)[0].asset_id == result.signed.asset_id


def test_capture_payload_has_no_ai_bit(stamper, png, tmp_path):
    spec = ManifestSpec(title="photo", digital_source_type=DigitalSourceType.DIGITAL_CAPTURE)
    result = stamper.stamp_file(png, tmp_path / "o.png", spec)
    assert not Payload.from_bytes(result.payload).ai_generated


def test_existing_manifest_is_kept_as_parent_when_watermarking(stamper, tmp_path):
    result = stamper.stamp_file(INTEROP / "CA.jpg", tmp_path / "o.jpg", ManifestSpec(title="edited"))
    assert result.signed.has_parent
    manifest, store = manifest_of(tmp_path / "o.jpg")
    assert [i["relationship"] for i in manifest["ingredients"]] == ["parentOf"]
    assert len(store["manifests"]) == 2


def test_gif_cannot_carry_the_watermark_and_says_how_to_go_on(stamper, tmp_path):
    src = tmp_path / "a.gif"
    Image.fromarray(procedural_image(200, 200)).save(src)
    with pytest.raises(WatermarkError) as exc:
        stamper.stamp_file(src, tmp_path / "o.gif", ManifestSpec(title="x"))
    assert exc.value.hint is Hint.NO_WATERMARK
    assert not (tmp_path / "o.gif").exists()


def test_text_is_signed_without_a_watermark_and_says_why(stamper, tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("hello\n")
    result = stamper.stamp_file(src, tmp_path / "o.txt", ManifestSpec(title="x"))
    assert result.payload is None and "text/plain" in result.watermark_skipped


@pytest.mark.parametrize("mime,suffix", [("image/png", ".png"), ("image/jpeg", ".jpg")])
def test_stamp_pixels_from_a_generator(stamper, home, tmp_path, mime, suffix):
    from synthguard.detect import InspectionContext, inspect_file

    pixels = procedural_image(256, 256, seed=9)
    out = tmp_path / f"gen{suffix}"
    result = stamper.stamp_pixels(pixels, out, ManifestSpec(title="generated"), mime=mime)
    with InspectionContext.build(home) as context:
        inspection = inspect_file(out, context)
    # The content hash recorded at signing is the one detect computes from the signed file.
    from synthguard.core.media import decode_image
    assert decode_image(out).content_sha256 == result.signed.content_sha256
    assert inspection.provenance.state.value == "trusted" and inspection.watermark.detected
    assert inspection.verdict.label.value == "ai-generated"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".synthguard-")]


def test_stamp_pixels_without_watermark(home, identity, tmp_path):
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        result = Stamper(session, None).stamp_pixels(procedural_image(64, 64), tmp_path / "g.png",
                                                     ManifestSpec(title="g"))
    assert result.payload is None and "turned off" in result.watermark_skipped


def test_a_mark_that_does_not_read_back_is_refused_not_signed(stamper, tmp_path):
    # A uniform black image leaves the mark nothing to hide in: it must not be stamped silently unreadable.
    src = tmp_path / "black.png"
    Image.new("RGB", (200, 200), (0, 0, 0)).save(src)
    out = tmp_path / "o.png"
    try:
        result = stamper.stamp_file(src, out, ManifestSpec(title="x"))
    except WatermarkError as exc:
        assert exc.hint is Hint.NO_WATERMARK and not out.exists()
    else:
        with Image.open(out) as img:
            assert stamper.watermarker.detect(np.asarray(img.convert("RGB"))).payload == result.payload


@pytest.mark.parametrize("size", [(128, 128), (128, 200), (160, 160), (300, 200)])
def test_small_images_are_stamped_readably_or_refused(stamper, tmp_path, size):
    src = tmp_path / "small.png"
    Image.fromarray(procedural_image(*size, seed=1)).save(src)
    out = tmp_path / "o.png"
    try:
        result = stamper.stamp_file(src, out, ManifestSpec(title="x"))
    except WatermarkError:
        assert not out.exists()
        return
    with Image.open(out) as img:
        assert stamper.watermarker.detect(np.asarray(img.convert("RGB"))).payload == result.payload


def test_refusal_path_when_the_detector_cannot_read_the_mark(home, identity, png, tmp_path):
    from synthguard.watermark import ImageWatermarker, WatermarkResult

    class Unreadable(ImageWatermarker):
        """Embeds nothing: stands for any mark that does not survive encoding."""
        name, version, payload_bytes = "unreadable", "1", 6

        def embed(self, image, payload):
            return image.copy()

        def detect(self, image):
            return WatermarkResult(False, None, None, 0.0, 1.0, self.algorithm_id)

    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        with pytest.raises(WatermarkError, match="does not read back"):
            Stamper(session, Unreadable()).stamp_file(png, tmp_path / "o.png", ManifestSpec(title="x"))
        assert ledger.count() == 0
    assert not (tmp_path / "o.png").exists()


def test_stamp_many_on_threads_matches_one_thread(stamper, home, tmp_path):
    images = [procedural_image(256, 256, seed=s) for s in range(4)]
    specs = [ManifestSpec(title=f"g{i}") for i in range(4)]
    parallel = stamper.stamp_many(images, [tmp_path / f"p{i}.png" for i in range(4)], specs, workers=2)
    serial = stamper.stamp_many(images, [tmp_path / f"s{i}.png" for i in range(4)], specs, workers=1)
    for results in (parallel, serial):
        for result in results:
            with Image.open(result.signed.output) as img:
                found = stamper.watermarker.detect(np.asarray(img))
            assert found.detected and found.payload == result.payload
    assert len({r.payload for r in parallel + serial}) == 8  # every asset its own payload
    with Ledger(home.ledger_path) as ledger:
        assert ledger.count() == 8
        assert all(ledger.find_by_soft_binding(r.payload) for r in parallel)


def test_what_marking_would_damage_is_refused_with_a_way_out(stamper, tmp_path):
    deep = tmp_path / "deep.png"
    Image.fromarray(procedural_image(256, 256, seed=1)[..., 0].astype(np.uint16) * 257).save(deep)
    frames = [Image.fromarray(procedural_image(256, 256, seed=s)) for s in range(3)]
    anim = tmp_path / "anim.gif"
    frames[0].save(anim, save_all=True, append_images=frames[1:])
    for src in (deep, anim):
        with pytest.raises(WatermarkError) as exc:
            stamper.stamp_file(src, tmp_path / f"o-{src.name}", ManifestSpec(title="x"))
        assert exc.value.hint is Hint.NO_WATERMARK
        assert not (tmp_path / f"o-{src.name}").exists()


def test_marking_keeps_transparency_orientation_and_colour_profile(stamper, tmp_path):
    base = Image.fromarray(procedural_image(256, 256, seed=2))
    palette = base.convert("P")
    palette.info["transparency"] = 0
    pal = tmp_path / "pal.png"
    palette.save(pal, transparency=0)
    out = tmp_path / "pal-out.png"
    stamper.stamp_file(pal, out, ManifestSpec(title="p"))
    with Image.open(out) as img:
        assert img.mode == "RGBA"
    grey_alpha = tmp_path / "la.png"
    base.convert("LA").save(grey_alpha)
    stamper.stamp_file(grey_alpha, tmp_path / "la-out.png", ManifestSpec(title="la"))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = tmp_path / "rot.jpg"
    base.save(rotated, quality=92, exif=exif, icc_profile=b"\x00" * 128)
    stamper.stamp_file(rotated, tmp_path / "rot-out.jpg", ManifestSpec(title="r"))
    with Image.open(tmp_path / "rot-out.jpg") as img:
        assert img.getexif().get(0x0112) == 6 and img.info.get("icc_profile") == b"\x00" * 128


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_the_recorded_content_hash_is_the_written_files_when_it_carries_a_profile(stamper, tmp_path, suffix):
    from PIL import ImageCms

    from synthguard.core.media import decode_image

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6
    src = tmp_path / f"tagged{suffix}"
    Image.fromarray(procedural_image(256, 256, seed=5)).save(src, icc_profile=profile, exif=exif, lossless=True)
    out = tmp_path / f"tagged-out{suffix}"
    result = stamper.stamp_file(src, out, ManifestSpec(title="t"))
    assert result.signed.content_sha256 == decode_image(out).content_sha256


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_marking_keeps_png_gamma_chromaticities_srgb_and_transparent_colour(stamper, tmp_path, mode):
    import struct

    from PIL import PngImagePlugin

    from synthguard.core.media import decode_image

    chunks = PngImagePlugin.PngInfo()
    chunks.add(b"gAMA", struct.pack(">I", 45455))
    chunks.add(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
    chunks.add(b"sRGB", b"\x01")
    src = tmp_path / f"tagged-{mode}.png"
    transparent = (0, 0, 0) if mode == "RGB" else 0
    Image.fromarray(procedural_image(256, 256, seed=6)).convert(mode).save(src, pnginfo=chunks,
                                                                           transparency=transparent)
    out = tmp_path / f"tagged-{mode}-out.png"
    result = stamper.stamp_file(src, out, ManifestSpec(title="t"))
    with Image.open(src) as before, Image.open(out) as after:
        for key in ("gamma", "chromaticity", "srgb", "transparency"):
            assert after.info.get(key) == before.info.get(key), key
    assert result.signed.content_sha256 == decode_image(out).content_sha256


# ------------------------------------------------------------------------------------------------------- texts
def test_stamp_text_binds_the_text_watermark_in_a_signed_sidecar(home, identity, tmp_path):
    from synthguard.provenance.signing import sidecar_path
    from synthguard.watermark.text import make_watermarker

    with Stamper.from_home(home, identity=identity, image_watermark=False, text_watermark="synthid") as stamper:
        wm = stamper.text_watermarker
        assert wm.key_id == make_watermarker("synthid", identity.text_watermark_secret()).key_id
        out = tmp_path / "story.txt"
        result = stamper.stamp_text("A text sampled with the mark in the loop.\n", out, ManifestSpec(title="story"))
        assert out.read_text() == "A text sampled with the mark in the loop.\n"
        assert result.payload == bytes.fromhex(wm.key_id) and result.algorithm == wm.algorithm_id
        assert result.signed.sidecar == sidecar_path(out) and result.to_dict()["watermark"]["embedded"]
        with open(sidecar_path(out), "rb") as store, c2pa.Reader("application/c2pa", store) as reader:
            data = json.loads(reader.json())
        manifest = data["manifests"][data["active_manifest"]]
        assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
        assert assertions["c2pa.soft-binding"]["alg"] == wm.algorithm_id
        assert "c2pa.watermarked" in [a["action"] for a in assertions["c2pa.actions.v2"]["actions"]]
        with pytest.raises(InputError, match="already exists"):
            stamper.stamp_text("again", out, ManifestSpec(title="story"))
        with pytest.raises(InputError, match="no text"):
            stamper.stamp_text(" \n", tmp_path / "empty.txt", ManifestSpec(title="empty"))
    with Ledger(home.ledger_path) as ledger:
        assert ledger.find_by_soft_binding(result.payload)[0].asset_id == result.signed.asset_id


def test_stamp_text_without_a_text_watermarker_says_why(stamper, tmp_path):
    result = stamper.stamp_text("plain words\n", tmp_path / "p.md", ManifestSpec(title="p"))
    assert result.payload is None and result.watermark_skipped == "watermarking turned off"
    assert result.signed.mime == "text/markdown" and (tmp_path / "p.md.c2pa").is_file()


# ---------------------------------------------------------------------------------------- opening from a home
def test_from_home_opens_the_ledger_and_closes_only_what_it_opened(home, identity, tmp_path):
    with Stamper.from_home(home, identity=identity) as stamper:
        assert stamper.watermarker is not None and stamper.text_watermarker is None
        stamper.stamp_pixels(procedural_image(256, 256, seed=5), tmp_path / "a.png", ManifestSpec(title="a"))
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        with Stamper(session, None) as given:
            pass
        given.stamp_pixels(procedural_image(64, 64), tmp_path / "b.png", ManifestSpec(title="b"))  # still open
        assert ledger.count() == 2


def test_from_home_makes_the_identity_on_demand(home, tmp_path):
    from synthguard.provenance.identity import IdentityStore

    made = []

    def make():
        made.append(True)
        return IdentityStore(home).ensure()[0]

    with Stamper.from_home(home, identity=make, image_watermark=False):
        assert made == [True]
    with Stamper.from_home(home, image_watermark=False) as stamper:  # the home's own, now existing
        assert stamper.session.identity.common_name == IdentityStore(home).load().common_name
    with pytest.raises(InputError, match="unknown text watermark scheme"):
        Stamper.from_home(home, text_watermark="nope")


def test_stamp_copy_refuses_a_corrupt_image_before_making_an_identity(home, tmp_path):
    from synthguard.provenance.identity import IdentityStore
    from synthguard.stamp import stamp_copy

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(InputError):
        stamp_copy(broken, tmp_path / "o.png", ManifestSpec(title="o"), home)
    assert not IdentityStore(home).exists()
    src = tmp_path / "ok.png"
    Image.fromarray(procedural_image(256, 256, seed=2)).save(src)
    result = stamp_copy(src, tmp_path / "o.png", ManifestSpec(title="o"), home, thumbnail=True)
    assert result.payload is not None and IdentityStore(home).exists()


# ----------------------------------------------------------------------------------------------- marking only
def test_mark_file_writes_a_marked_unsigned_copy(tmp_path, png):
    from synthguard.stamp import mark_file

    out = tmp_path / "marked.jpg"
    result = mark_file(png, out, payload=bytes.fromhex("2a0000c0ffee"))
    assert result.to_dict() == {"output": str(out), "payload": "2a0000c0ffee",
                                "algorithm": default_image_watermarker().algorithm_id}
    with Image.open(out) as img:
        assert default_image_watermarker().detect(np.asarray(img.convert("RGB"))).payload == result.payload
    fresh = mark_file(png, tmp_path / "fresh.png", ai_generated=False)
    assert not Payload.from_bytes(fresh.payload).ai_generated
    with pytest.raises(InputError, match="already exists"):
        mark_file(png, out)
    with pytest.raises(InputError, match="unknown output format"):
        mark_file(png, tmp_path / "m.gif")


def _deep(tmp_path, name, channels):
    """A 16-bit-per-sample image written by OpenCV (which Pillow opens as 8-bit RGB / RGBA for 3 and 4 channels)."""
    import cv2

    rgb = procedural_image(256, 256, seed=4).astype(np.uint16) * 257 + 3  # low bits Pillow would drop
    deep = rgb[..., 0] if channels == 1 else np.dstack([rgb, rgb[..., :1]]) if channels == 4 else rgb
    path = tmp_path / name
    assert cv2.imwrite(str(path), deep)
    return path, deep


@pytest.mark.parametrize("name,channels", [("rgb48.png", 3), ("rgba64.png", 4), ("grey16.png", 1),
                                           ("rgb48.tif", 3), ("rgba64.tiff", 4)])
def test_a_16_bit_image_is_refused_for_marking_not_reduced_to_8_bits(stamper, tmp_path, name, channels):
    src, _ = _deep(tmp_path, name, channels)
    out = tmp_path / f"o-{name}"
    with pytest.raises(WatermarkError, match="16-bit|I;16") as exc:
        stamper.stamp_file(src, out, ManifestSpec(title="x"))
    assert exc.value.hint is Hint.NO_WATERMARK
    assert not out.exists()


def test_a_16_bit_png_signed_without_a_watermark_keeps_its_depth_and_pixels(home, identity, tmp_path):
    import cv2

    src, deep = _deep(tmp_path, "rgb48.png", 3)
    out = tmp_path / "signed.png"
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        result = Stamper(session, None).stamp_file(src, out, ManifestSpec(title="x"))
    assert result.payload is None and result.watermark_skipped == "watermarking turned off"
    assert out.read_bytes()[24] == 16  # IHDR bit depth
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), deep)


def test_stamp_copy_refuses_a_16_bit_image_before_making_an_identity(home, tmp_path):
    from synthguard.provenance.identity import IdentityStore
    from synthguard.stamp import stamp_copy

    src, _ = _deep(tmp_path, "rgb48.png", 3)
    with pytest.raises(WatermarkError, match="16-bit"):
        stamp_copy(src, tmp_path / "o.png", ManifestSpec(title="o"), home)
    assert not IdentityStore(home).exists()
    result = stamp_copy(src, tmp_path / "o.png", ManifestSpec(title="o"), home, image_watermark=False)
    assert result.payload is None and IdentityStore(home).exists()


def test_a_key_another_signer_reserved_is_never_drawn(stamper, home, tmp_path, monkeypatch):
    import synthguard.watermark.payload as payload_module

    # Another machine on the same ledger reserved key 7 and has not recorded its asset yet; this stamper's first
    # draw is that key, its second key 8.
    rival = Payload(PAYLOAD_LAYOUT_VERSION, True, 7).to_bytes()
    assert stamper.session.ledger.reserve_soft_binding(rival)
    draws = iter([7, 8])
    monkeypatch.setattr(payload_module.secrets, "randbits", lambda bits: next(draws))
    spec = ManifestSpec(title="g", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)
    result = stamper.stamp_pixels(procedural_image(256, 256, seed=4), tmp_path / "g.png", spec)
    assert Payload.from_bytes(result.payload) == Payload(PAYLOAD_LAYOUT_VERSION, True, 8)
    with Ledger(home.ledger_path) as ledger:
        assert [r.asset_id for r in ledger.find_by_soft_binding(result.payload)] == [result.signed.asset_id]
        assert ledger.find_by_soft_binding(rival) == []
        assert not ledger.reserve_soft_binding(result.payload)
