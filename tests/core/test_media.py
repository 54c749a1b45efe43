import io
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

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


# Rendering properties of lossless images (PNG chunks, ICC profiles, orientation) are part of the content hash.

def _chunk_png(path, pixels, chunks=(), **save):
    """Write ``pixels`` as a PNG (Pillow ``save`` options) with the raw ``chunks`` ((type, data)) after IHDR, in
    this order."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", **save)
    data, ihdr_end = buf.getvalue(), 8 + 8 + 13 + 4
    raw = b"".join(len(d).to_bytes(4, "big") + k + d + zlib.crc32(k + d).to_bytes(4, "big") for k, d in chunks)
    path.write_bytes(data[:ihdr_end] + raw + data[ihdr_end:])
    return path


def _exif(orientation=None, software="synthguard test"):
    exif = Image.Exif()
    exif[0x0131] = software
    if orientation is not None:
        exif[0x0112] = orientation
    return exif.tobytes()


def _icc(name="sRGB"):
    """A profile's bytes; its header carries its creation time, so two made a second apart differ."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile(name)).tobytes()


_GAMA = (b"gAMA", (45455).to_bytes(4, "big"))
_CHRM = (b"cHRM", b"".join(v.to_bytes(4, "big") for v in (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)))
_SRGB = (b"sRGB", b"\x00")


def _hash(path):
    return decode_image(path).content_sha256


def test_png_chunks_that_change_rendering_change_the_content_hash(tmp_path, pixels):
    props = [_GAMA, _CHRM, _SRGB]
    base = _chunk_png(tmp_path / "base.png", pixels, props)
    chrm = list(_CHRM[1])
    chrm[3] ^= 1  # white point x moved by 1e-5
    variants = {
        "gAMA changed": [(b"gAMA", (100000).to_bytes(4, "big")), _CHRM, _SRGB],
        "gAMA removed": [_CHRM, _SRGB],
        "cHRM changed": [_GAMA, (b"cHRM", bytes(chrm)), _SRGB],
        "sRGB intent changed": [_GAMA, _CHRM, (b"sRGB", b"\x01")],
        "cICP added": [_GAMA, _CHRM, _SRGB, (b"cICP", bytes([9, 16, 0, 1]))],
        "cICP of a wrong length": [_GAMA, _CHRM, _SRGB, (b"cICP", bytes([9, 16, 0, 1, 0]))],
    }
    hashes = {"base": _hash(base), "no chunks": array_content_sha256(pixels)}
    for i, (name, chunks) in enumerate(variants.items()):
        hashes[name] = _hash(_chunk_png(tmp_path / f"v{i}.png", pixels, chunks))
    for name, extra in {"iCCP sRGB": {"icc_profile": _icc("sRGB")}, "iCCP XYZ": {"icc_profile": _icc("XYZ")},
                        "orientation 6": {"exif": _exif(6)}}.items():
        hashes[name] = _hash(_chunk_png(tmp_path / f"{name}.png", pixels, [_GAMA, _CHRM], **extra))
    hashes["gAMA added"] = _hash(_chunk_png(tmp_path / "gama.png", pixels, [_GAMA]))
    assert len(set(hashes.values())) == len(hashes), hashes


def test_png_metadata_that_does_not_change_rendering_keeps_the_content_hash(tmp_path, pixels):
    props = [_GAMA, _CHRM, _SRGB]
    base = _chunk_png(tmp_path / "base.png", pixels, props, exif=_exif(6))
    xmp = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta><tiff:Orientation>3</tiff:Orientation></x:xmpmeta>"
    copies = {
        "tEXt": props + [(b"tEXt", b"parameters\x00a prompt")],
        "XMP iTXt": props + [(b"iTXt", xmp)],
        "tIME": props + [(b"tIME", bytes([7, 232, 1, 2, 3, 4, 5]))],
        "C2PA caBX": props + [(b"caBX", b"\x00\x00\x00\x10jumbnot-a-manifest")],
        "re-ordered": [_SRGB, _CHRM, _GAMA],
    }
    paths = [_chunk_png(tmp_path / f"{i}.png", pixels, chunks, exif=_exif(6), compress_level=i)
             for i, chunks in enumerate(copies.values())]
    # Other EXIF fields than the orientation are metadata too.
    paths.append(_chunk_png(tmp_path / "exif.png", pixels, props, exif=_exif(6, software="another editor")))
    assert len({p.read_bytes() for p in [base, *paths]}) == len(paths) + 1
    assert {_hash(p) for p in paths} == {_hash(base)}


def test_image_without_rendering_properties_hashes_as_its_pixels(tmp_path, pixels):
    chunks = [(b"tEXt", b"Comment\x00hello"), (b"tIME", bytes([7, 232, 1, 2, 3, 4, 5]))]
    plain = _chunk_png(tmp_path / "a.png", pixels, chunks, exif=_exif(None))
    upright = _chunk_png(tmp_path / "b.png", pixels, exif=_exif(1))  # orientation 1 renders as none
    assert _hash(plain) == _hash(upright) == array_content_sha256(pixels)


def test_palette_transparency_is_in_the_pixels(tmp_path, pixels):
    palette = Image.fromarray(pixels).quantize(16)
    opaque, keyed = tmp_path / "p.png", tmp_path / "pt.png"
    palette.save(opaque)
    palette.save(keyed, transparency=int(np.asarray(palette)[0, 0]))
    assert _hash(opaque) != _hash(keyed)
    assert _hash(keyed) == array_content_sha256(np.asarray(Image.open(keyed).convert("RGBA")))


def test_grey_transparency_key_changes_the_hash(tmp_path, pixels):
    grey = pixels[..., 0]
    path = tmp_path / "l.png"
    Image.fromarray(grey).save(path, transparency=int(grey[0, 0]))
    assert _hash(path) != array_content_sha256(grey)


def test_webp_lossless_icc_profile_and_orientation(tmp_path, pixels):
    def webp(name, **extra):
        path = tmp_path / name
        Image.fromarray(pixels).save(path, format="WEBP", lossless=True, exact=True, **extra)
        return _hash(path)

    srgb = _icc("sRGB")  # made once: a profile's header records the second it was created
    plain, icc, icc_again, other_icc = webp("a.webp"), webp("b.webp", icc_profile=srgb), \
        webp("c.webp", icc_profile=srgb, exif=_exif(1)), webp("d.webp", icc_profile=_icc("XYZ"))
    assert plain == array_content_sha256(pixels)
    assert icc == icc_again and len({plain, icc, other_icc}) == 3
    assert webp("e.webp", exif=_exif(1)) == plain != webp("f.webp", exif=_exif(6))


def test_tiff_orientation_and_icc_profile(tmp_path, pixels):
    def tiff(name, **extra):
        path = tmp_path / name
        Image.fromarray(pixels).save(path, compression="tiff_lzw", **extra)
        return _hash(path)

    plain = tiff("a.tif")
    assert plain == array_content_sha256(pixels) == tiff("b.tif", tiffinfo={0x0112: 1})
    rotated = tiff("c.tif", tiffinfo={0x0112: 6})
    assert rotated != plain
    assert tiff("d.tif", icc_profile=_icc("sRGB")) not in (plain, rotated)


def test_hostile_rendering_chunks_are_refused_or_hashed_not_crashed(tmp_path, pixels):
    base = _hash(_chunk_png(tmp_path / "base.png", pixels))
    corrupt = (b"not exif at all", b"MM\x00*\x00\x00\xff\xff", b"II*\x00\x08\x00\x00\x00\xff")
    garbage = [_hash(_chunk_png(tmp_path / f"g{i}.png", pixels, [(b"eXIf", data)])) for i, data in enumerate(corrupt)]
    # An EXIF block that cannot be read is hashed whole: each differs from the others and from none.
    assert len({base, *garbage}) == 4
    huge = zlib.compress(b"\x00" * (2 << 20))  # a profile that decompresses to 2 MiB (Pillow's limit is 1 MiB)
    path = _chunk_png(tmp_path / "huge.png", pixels, [(b"iCCP", b"p\x00\x00" + huge)])
    with pytest.raises(InputError, match="too large"):
        decode_image(path)
    bad_zlib = _chunk_png(tmp_path / "badz.png", pixels, [(b"iCCP", b"p\x00\x00not zlib")])
    assert _hash(bad_zlib) != base


# Text in UTF-16 and UTF-32 (a UTF-16LE byte-order mark, FF FE, is also an MPEG audio frame sync).

_POEM = "But soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n" * 3


@pytest.mark.parametrize("codec,bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                       ("utf-32-le", b"\xff\xfe\x00\x00"), ("utf-32-be", b"\x00\x00\xfe\xff"),
                                       ("utf-16-le", b""), ("utf-16-be", b""), ("utf-8", b"\xef\xbb\xbf")])
def test_utf16_and_utf32_text_is_text_and_reads_as_text(tmp_path, codec, bom):
    path = tmp_path / "poem.txt"
    path.write_bytes(bom + _POEM.encode(codec))
    media = sniff(path)
    assert media.kind is MediaKind.TEXT and media.mime == "text/plain" and not media.embeddable
    assert read_text(path) == _POEM  # the byte-order mark is not part of the text


def test_utf16_text_longer_than_the_sniffing_window_with_a_character_cut_at_its_edge(tmp_path):
    path = tmp_path / "long.md"
    # 2047 characters put the window's edge (4096 bytes, after the mark) inside the surrogate pair of an emoji.
    text = "a" * 2046 + "\U0001f600" + "é tail\n" * 500
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    assert sniff(path).mime == "text/markdown"
    assert read_text(path) == text


def test_an_mpeg_frame_sync_that_is_no_utf16_text_is_still_audio(tmp_path):
    path = tmp_path / "layer1.mp3"
    rng = np.random.default_rng(0)
    path.write_bytes(b"\xff\xfe\x90\x00" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    assert sniff(path).mime == "audio/mpeg"


def test_bad_utf16_text_is_refused_with_its_encoding_named(tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"\xff\xfe" + "hello".encode("utf-16-le") + b"h")  # a cut last character
    with pytest.raises(InputError, match="not UTF-16-LE text"):
        read_text(odd)
    lone = tmp_path / "lone.txt"
    lone.write_bytes(b"\xfe\xff" + "hi ".encode("utf-16-be") + b"\xdc\x00" + "there".encode("utf-16-be"))
    with pytest.raises(InputError, match="not UTF-16-BE text"):
        read_text(lone)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"\xff\xfe" + "a\x00b".encode("utf-16-le"))
    with pytest.raises(InputError, match="binary"):
        read_text(nul)


def test_ascii_headed_binary_formats_still_win_over_utf8_text(tmp_path):
    path = tmp_path / "plain.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    assert sniff(path).mime == "application/pdf"


def test_marked_utf16_text_with_control_characters_is_text_not_audio(tmp_path):
    path = tmp_path / "log.txt"
    path.write_bytes(b"\xff\xfe" + ("\x1b[1mbold\x1b[0m line\n" * 50).encode("utf-16-le"))
    assert sniff(path).kind is MediaKind.TEXT
