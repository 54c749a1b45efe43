import io

import pytest
from PIL import Image

from synthguard.core.media import (
    MediaKind,
    array_content_sha256,
    decode_image,
    jpeg_coded_data_sha256,
    read_text,
    sniff,
)
from synthguard.errors import InputError


@pytest.mark.parametrize("fmt,mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"),
                                      ("GIF", "image/gif"), ("TIFF", "image/tiff"), ("PDF", "application/pdf")])
def test_sniff_from_content_not_extension(tmp_path, pixels, fmt, mime):
    path = tmp_path / "misnamed.txt"
    Image.fromarray(pixels).save(path, format=fmt)
    media = sniff(path)
    assert media.mime == mime and media.embeddable


def test_text_types(tmp_path):
    for name, mime in (("a.md", "text/markdown"), ("a.json", "application/json"), ("a.txt", "text/plain"),
                       ("a", "text/plain")):
        (tmp_path / name).write_text("héllo\n")
        media = sniff(tmp_path / name)
        assert media.mime == mime and media.kind is MediaKind.TEXT and not media.embeddable


def test_content_hash_survives_lossless_resave_and_matches_array_hash(tmp_path, pixels):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(pixels).save(a, compress_level=1)
    Image.fromarray(pixels).save(b, compress_level=9, pnginfo=None)
    assert a.read_bytes() != b.read_bytes()
    assert decode_image(a).content_sha256 == decode_image(b).content_sha256 == array_content_sha256(pixels)
    changed = pixels.copy()
    changed[0, 0, 0] ^= 1
    assert array_content_sha256(changed) != array_content_sha256(pixels)


def test_jpeg_coded_hash_ignores_provenance_metadata_only(pixels):
    plain, with_xmp, with_exif = io.BytesIO(), io.BytesIO(), io.BytesIO()
    Image.fromarray(pixels).save(plain, format="JPEG", quality=90)
    Image.fromarray(pixels).save(with_xmp, format="JPEG", quality=90, xmp=b"<x:xmpmeta>note</x:xmpmeta>")
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: shown upside down
    Image.fromarray(pixels).save(with_exif, format="JPEG", quality=90, exif=exif)
    assert plain.getvalue() != with_xmp.getvalue()
    assert jpeg_coded_data_sha256(plain.getvalue()) == jpeg_coded_data_sha256(with_xmp.getvalue())
    # A segment that changes how the picture renders is part of the picture.
    assert jpeg_coded_data_sha256(plain.getvalue()) != jpeg_coded_data_sha256(with_exif.getvalue())
    other = io.BytesIO()
    Image.fromarray(pixels).save(other, format="JPEG", quality=89)
    assert jpeg_coded_data_sha256(other.getvalue()) != jpeg_coded_data_sha256(plain.getvalue())


def test_pixel_budget(tmp_path, pixels, monkeypatch):
    path = tmp_path / "a.png"
    Image.fromarray(pixels).save(path)
    monkeypatch.setenv("SYNTHGUARD_MAX_PIXELS", "1000")
    with pytest.raises(InputError, match="MP limit"):
        decode_image(path)


def test_truncated_jpeg_without_end_marker_is_refused_even_in_fast_mode(tmp_path, pixels):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="truncated"):
        decode_image(path)
    with pytest.raises(InputError, match="truncated"):
        decode_image(path, keep_rgb=True)


def test_read_text_refuses_binary_and_bad_encoding(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"abc\x00def")
    (tmp_path / "latin.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(InputError, match="binary"):
        read_text(tmp_path / "bin.txt")
    with pytest.raises(InputError, match="not UTF-8"):
        read_text(tmp_path / "latin.txt")


def test_animation_frames_share_the_pixel_budget(tmp_path, monkeypatch):
    frames = [Image.new("L", (100, 100), color) for color in (0, 80, 160, 240)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    monkeypatch.setenv("SYNTHGUARD_MAX_PIXELS", "30000")  # one frame fits, four do not
    with pytest.raises(InputError, match="4 frames"):
        decode_image(path)
