"""Unsigned AI declarations in metadata: every generator format, written with PIL into real photographs on the spot,
is read as one; the same photographs without metadata, and the C2PA sample files, declare nothing; hostile
containers (truncated, huge, invalid UTF-8, entity expansion, deep nesting, random damage) give a clean result."""

from __future__ import annotations

import json
import struct
import time
import zlib

import numpy as np
import pytest
from helpers.files import INTEROP
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from synthguard.detect import metadata
from synthguard.detect.fusion import VerdictLabel, decide
from synthguard.detect.metadata import Declaration, MetadataFormat, MetadataSignal, read_declarations
from synthguard.errors import InputError
from synthguard.provenance.manifest import DigitalSourceType
from synthguard.provenance.reading import ProvenanceSignal, ProvenanceState

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
A1111 = ("a lighthouse on a cliff at dusk, film grain\nNegative prompt: blurry, lowres\n"
         "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 1024x1024, Model hash: 31e35c80fc, "
         'Model: sd_xl_base_1.0, Lora hashes: "detail: 5a1b, film: 77c2", Version: v1.10.1')
FORGE = A1111.replace("Version: v1.10.1", "Version: f2.0.1v1.10.1-previous-659-gc055f2d4")
COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "model": ["4", 0],
                                               "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}}
COMFY_WORKFLOW = {"last_node_id": 9, "nodes": [
    {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["dreamshaper_8.safetensors"]},
    {"id": 3, "type": "KSamplerAdvanced",
     "widgets_values": ["enable", 987654321, "randomize", 20, 8, "euler", "normal", 0, 10000, "disable"]},
    {"id": 9, "type": "SaveImage", "widgets_values": ["ComfyUI"]}], "links": [], "version": 0.4}
INVOKE = {"generation_mode": "txt2img", "positive_prompt": "a red fox", "seed": 4242, "steps": 30,
          "model": {"key": "a1b2", "hash": "blake3:...", "name": "Juggernaut XL v9", "base": "sdxl", "type": "main"},
          "app_version": "4.2.4"}
SD_METADATA = {"model": "stable diffusion", "model_weights": "stable-diffusion-1.5", "app_id": "invoke-ai/InvokeAI",
               "app_version": "2.2.4", "image": {"prompt": [{"prompt": "a red fox", "weight": 1}], "seed": 3612014779,
                                                 "steps": 50, "type": "txt2img"}}
DREAM = '"a red fox in the snow" -s 50 -S 3612014779 -W 512 -H 512 -C 7.5 -A k_lms'
NOVELAI_COMMENT = {"prompt": "1girl, scenery", "steps": 28, "scale": 5.0, "seed": 2871936, "sampler": "k_euler",
                   "uc": "lowres", "request_type": "PromptGenerateRequest"}
FOOOCUS = {"prompt": "a red fox", "negative_prompt": "", "base_model": "juggernautXL_v8Rundiffusion.safetensors",
           "seed": "8731054628", "steps": 30, "sampler": "dpmpp_2m_sde_gpu", "version": "Fooocus v2.5.0"}


# ----------------------------------------------------------------------------------------------- file makers
def photos() -> dict[str, Image.Image]:
    """Real photographs: the C2PA sample without a manifest and three of scikit-image's, scaled down."""
    import skimage.data

    shots = {"no_manifest": Image.open(INTEROP / "no_manifest.jpg").convert("RGB"),
             **{name: Image.fromarray(getattr(skimage.data, name)()) for name in ("astronaut", "coffee", "chelsea")}}
    return {name: im.resize((im.width * 256 // im.height, 256)) for name, im in shots.items()}


PHOTOS = photos()


def xmp(uri: str, form: str = "attribute", creator: str | None = None) -> bytes:
    """An XMP packet with the IPTC digital source type, in one of its three RDF spellings."""
    tool = f' xmp:CreatorTool="{creator}"' if creator else ""
    ns = ('rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
          'xmlns:xmp="http://ns.adobe.com/xap/1.0/"')
    if form == "attribute":
        body = f'<rdf:Description {ns}{tool} Iptc4xmpExt:DigitalSourceType="{uri}"/>'
    elif form == "element":
        body = (f"<rdf:Description {ns}{tool}><Iptc4xmpExt:DigitalSourceType>{uri}</Iptc4xmpExt:DigitalSourceType>"
                "</rdf:Description>")
    else:
        body = f'<rdf:Description {ns}{tool}><Iptc4xmpExt:DigitalSourceType rdf:resource="{uri}"/></rdf:Description>'
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">{body}</rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode()


def exif(user_comment: bytes | str | None = None, *, software: str | None = None, in_ifd0: bool = False,
         maker_note: str | None = None, endian: str = ">") -> bytes:
    ex = Image.Exif()
    ex.endian = endian
    if software:
        ex[0x0131] = software
    if maker_note:
        ex[0x927C] = maker_note
    if user_comment is not None:
        if in_ifd0:
            ex[0x9286] = user_comment
        else:
            ex.get_ifd(0x8769)[0x9286] = user_comment
    return ex.tobytes()


def unicode_comment(text: str, codec: str = "utf-16-be") -> bytes:
    """EXIF UserComment as the web UI writes it (piexif's ``UserComment.dump(text, encoding="unicode")``)."""
    return b"UNICODE\0" + text.encode(codec)


def png(tmp_path, name: str, texts: dict[str, str] = (), *, photo: str = "astronaut", itxt=(), ztxt=()) -> object:
    info = PngInfo()
    for key, value in dict(texts).items():
        info.add_text(key, value)
    for key, value in dict(itxt).items():
        info.add_itxt(key, value)
    for key, value in dict(ztxt).items():
        info.add_text(key, value, zip=True)
    path = tmp_path / f"{name}.png"
    PHOTOS[photo].save(path, "PNG", pnginfo=info)
    return path


def save(tmp_path, name: str, fmt: str, photo: str = "coffee", **kwargs):
    path = tmp_path / f"{name}.{fmt.lower()}"
    PHOTOS[photo].save(path, fmt, **kwargs)
    return path


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_chunk(path, kind: bytes, data: bytes, out) -> object:
    """The PNG at ``path`` with one more chunk after IHDR."""
    raw = path.read_bytes()
    out.write_bytes(raw[:33] + chunk(kind, data) + raw[33:])
    return out


GENERATED = {  # name -> (make(tmp_path), format, generator, model, seed)
    "sd-webui png tEXt": (lambda t: png(t, "a1111", {"parameters": A1111}),
                          MetadataFormat.SD_WEBUI, "Stable Diffusion web UI", "sd_xl_base_1.0", 1234),
    "sd-webui png iTXt": (lambda t: png(t, "a1111i", itxt={"parameters": "\u732b " + A1111}, photo="chelsea"),
                          MetadataFormat.SD_WEBUI, "Stable Diffusion web UI", "sd_xl_base_1.0", 1234),
    "sd-webui png zTXt": (lambda t: png(t, "a1111z", ztxt={"parameters": A1111}, photo="no_manifest"),
                          MetadataFormat.SD_WEBUI, "Stable Diffusion web UI", "sd_xl_base_1.0", 1234),
    "forge png": (lambda t: png(t, "forge", {"parameters": FORGE}, photo="coffee"),
                  MetadataFormat.SD_WEBUI, "Stable Diffusion web UI Forge", "sd_xl_base_1.0", 1234),
    "sd-webui jpeg UserComment": (
        lambda t: save(t, "a1111", "JPEG", "no_manifest", exif=exif(unicode_comment(A1111))),
        MetadataFormat.SD_WEBUI, "Stable Diffusion web UI", "sd_xl_base_1.0", 1234),
    "sd-webui jpeg UserComment utf-16-le": (
        lambda t: save(t, "a1111le", "JPEG", "astronaut", exif=exif(unicode_comment(A1111, "utf-16-le"),
                                                                     endian="<")),
        MetadataFormat.SD_WEBUI, "Stable Diffusion web UI", "sd_xl_base_1.0", 1234),
    "sd-webui jpeg UserComment ASCII": (
        lambda t: save(t, "a1111a", "JPEG", "chelsea", exif=exif(b"ASCII\0\0\0" + A1111.encode())),
        MetadataFormat.SD_WEBUI, "Stable Diffusion web UI", "sd_xl_base_1.0", 1234),
    "sd-webui webp UserComment": (lambda t: save(t, "a1111", "WEBP", exif=exif(unicode_comment(A1111))),
                                  MetadataFormat.SD_WEBUI, "Stable Diffusion web UI", "sd_xl_base_1.0", 1234),
    "comfyui png prompt+workflow": (
        lambda t: png(t, "comfy", {"prompt": json.dumps(COMFY_PROMPT), "workflow": json.dumps(COMFY_WORKFLOW)}),
        MetadataFormat.COMFYUI_PROMPT, "ComfyUI", "v1-5-pruned-emaonly.safetensors", 156680208700286),
    "comfyui png workflow only": (lambda t: png(t, "comfyw", {"workflow": json.dumps(COMFY_WORKFLOW)}, photo="coffee"),
                                  MetadataFormat.COMFYUI_WORKFLOW, "ComfyUI", "dreamshaper_8.safetensors", 987654321),
    "invokeai png": (lambda t: png(t, "invoke", {"invokeai_metadata": json.dumps(INVOKE)}, photo="chelsea"),
                     MetadataFormat.INVOKEAI, "InvokeAI 4.2.4", "Juggernaut XL v9", 4242),
    "invokeai png sd-metadata": (lambda t: png(t, "invoke2", {"sd-metadata": json.dumps(SD_METADATA)}),
                                 MetadataFormat.INVOKEAI_LEGACY, "InvokeAI", "stable-diffusion-1.5", 3612014779),
    "invokeai png Dream": (lambda t: png(t, "dream", {"Dream": DREAM}, photo="no_manifest"),
                           MetadataFormat.INVOKEAI_LEGACY, "InvokeAI", None, 3612014779),
    "novelai png": (lambda t: png(t, "nai", {"Title": "AI generated image", "Description": "1girl, scenery",
                                             "Software": "NovelAI", "Source": "NovelAI Diffusion V3 7BCCAA2C",
                                             "Generation time": "3.2", "Comment": json.dumps(NOVELAI_COMMENT)}),
                    MetadataFormat.NOVELAI, "NovelAI", "NovelAI Diffusion V3 7BCCAA2C", 2871936),
    "fooocus png": (lambda t: png(t, "fooocus", {"parameters": json.dumps(FOOOCUS), "fooocus_scheme": "fooocus"},
                                  photo="coffee"),
                    MetadataFormat.FOOOCUS, "Fooocus v2.5.0", "juggernautXL_v8Rundiffusion.safetensors", 8731054628),
    "fooocus jpeg exif": (lambda t: save(t, "fooocus", "JPEG", "astronaut", exif=exif(
        json.dumps(FOOOCUS), software="Fooocus v2.5.0", in_ifd0=True, maker_note="fooocus")),
        MetadataFormat.FOOOCUS, "Fooocus v2.5.0", "juggernautXL_v8Rundiffusion.safetensors", 8731054628),
    "iptc jpeg xmp attribute": (lambda t: save(t, "iptc", "JPEG", "no_manifest",
                                               xmp=xmp(IPTC + "trainedAlgorithmicMedia")),
                                MetadataFormat.IPTC_SOURCE_TYPE, None, None, None),
    "iptc png iTXt xmp element": (lambda t: png(t, "iptc", itxt={"XML:com.adobe.xmp": xmp(
        IPTC + "compositeWithTrainedAlgorithmicMedia", "element").decode()}, photo="chelsea"),
        MetadataFormat.IPTC_SOURCE_TYPE, None, None, None),
    "iptc webp xmp resource": (lambda t: save(t, "iptc", "WEBP", "astronaut",
                                              xmp=xmp(IPTC + "trainedAlgorithmicMedia", "resource")),
                               MetadataFormat.IPTC_SOURCE_TYPE, None, None, None),
}


# --------------------------------------------------------------------------------------- generators declare AI
@pytest.mark.parametrize("case", list(GENERATED))
def test_each_generator_format_written_into_a_photo_declares_ai(tmp_path, case):
    make, fmt, generator, model, seed = GENERATED[case]
    signal = read_declarations(make(tmp_path))
    assert signal.declares_ai, signal
    assert signal.notes == () and not signal.truncated
    (found,) = [d for d in signal.declarations if not d.hint]
    assert (found.format, found.generator, found.model, found.seed) == (fmt, generator, model, seed)
    assert found.declares_ai and not found.truncated
    if fmt is MetadataFormat.IPTC_SOURCE_TYPE:
        assert DigitalSourceType.parse(found.source_type).is_generative_ai
    assert signal.describe()[0] == found.describe()
    assert " AI generation; " in found.describe() or "(generative AI); " in found.describe()
    # With no manifest behind it, the declaration gives ai-declared (never ai-generated), citing itself.
    verdict = decide(ProvenanceSignal(present=False, state=ProvenanceState.ABSENT), metadata=signal)
    assert verdict.label is VerdictLabel.AI_DECLARED and found.describe() in verdict.reasons
    assert found.describe().endswith("anyone can add or remove such metadata, so it proves nothing by itself")


def test_the_web_ui_line_names_model_and_seed_and_says_it_proves_nothing(tmp_path):
    signal = read_declarations(png(tmp_path, "a1111", {"parameters": A1111}))
    assert signal.describe() == (
        "unsigned metadata: Stable Diffusion web UI parameters in PNG tEXt 'parameters' (model sd_xl_base_1.0, seed "
        "1234) declare AI generation; anyone can add or remove such metadata, so it proves nothing by itself",)
    assert signal.blocks_read == ("PNG tEXt 'parameters'",)


def test_the_signal_is_plain_json_and_reads_back(tmp_path):
    signal = read_declarations(GENERATED["fooocus jpeg exif"][0](tmp_path))
    data = json.loads(json.dumps(signal.to_dict()))
    assert list(data) == ["declares_ai", "declarations", "blocks_read", "truncated", "notes", "skipped"]
    assert data["declares_ai"] is True
    assert data["declarations"] == [
        {"format": "fooocus", "location": "JPEG APP1 EXIF UserComment", "declares_ai": True, "hint": False,
         "generator": "Fooocus v2.5.0", "model": "juggernautXL_v8Rundiffusion.safetensors", "seed": 8731054628,
         "source_type": None, "truncated": False},
        {"format": "software-tag", "location": "JPEG APP1 EXIF Software", "declares_ai": False, "hint": True,
         "generator": "Fooocus v2.5.0", "model": None, "seed": None, "source_type": None, "truncated": False}]
    assert MetadataSignal.from_dict(data) == signal
    assert MetadataSignal.from_dict(None) is None


def test_the_user_comment_as_piexif_writes_it_is_read(tmp_path):
    """The web UI's own layout, byte for byte: a big-endian TIFF whose Exif IFD holds UserComment as UNDEFINED
    (type 7), ``UNICODE\\0`` then UTF-16-BE (piexif's ``UserComment.dump(text, encoding="unicode")``)."""
    comment = unicode_comment(A1111)
    ifd0 = struct.pack(">HHHII", 1, 0x8769, 4, 1, 26) + b"\0\0\0\0"  # one entry: the Exif IFD at offset 26
    exif_ifd = struct.pack(">HHHII", 1, 0x9286, 7, len(comment), 44) + b"\0\0\0\0"
    tiff = b"MM\0*" + struct.pack(">I", 8) + ifd0 + exif_ifd + comment
    for fmt in ("JPEG", "WEBP"):
        signal = read_declarations(save(tmp_path, "piexif", fmt, "chelsea", exif=b"Exif\0\0" + tiff))
        (found,) = signal.declarations
        assert (found.format, found.model, found.seed, signal.notes) == (MetadataFormat.SD_WEBUI, "sd_xl_base_1.0",
                                                                         1234, ())


# ------------------------------------------------------------------------------------ nothing, or not AI
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("photo", list(PHOTOS))
def test_the_same_photos_without_metadata_declare_nothing(tmp_path, photo, fmt):
    signal = read_declarations(save(tmp_path, photo, fmt, photo))
    assert signal == MetadataSignal()
    assert "absence proves nothing" in signal.describe()[0]
    assert decide(ProvenanceSignal(present=False, state=ProvenanceState.ABSENT), metadata=signal).label \
        is VerdictLabel.UNKNOWN


# What each C2PA sample carries beside its manifest: EXIF and XMP written by Adobe tools (CreatorTool "Adobe
# Photoshop ...", Software "Adobe Lightroom ..."), no IPTC source type, no generator.
C2PA_BLOCKS = {"adobe_connected_identities.jpg": ("JPEG APP1 EXIF", "JPEG APP1 XMP"),
               "boxhash.jpg": ("JPEG APP1 XMP",), "cloud.jpg": ("JPEG APP1 EXIF", "JPEG APP1 XMP"),
               "no_manifest.jpg": ("JPEG APP1 EXIF", "JPEG APP1 XMP"), "prerelease.jpg": ("JPEG APP1 XMP",)}


@pytest.mark.parametrize("name", sorted(p.name for p in INTEROP.iterdir() if p.suffix in (".jpg", ".png")))
def test_the_c2pa_samples_declare_nothing(name):
    signal = read_declarations(INTEROP / name)
    assert (signal.declarations, signal.notes, signal.truncated) == ((), (), False)
    if name == "sample1.png":  # ImageMagick copied a camera's EXIF into eXIf and into 48 text chunks
        assert signal.blocks_read[0] == "PNG eXIf" and len(signal.blocks_read) == 49
        assert "PNG tEXt 'exif:Software'" in signal.blocks_read
        assert signal.describe()[0].startswith("unsigned metadata: no AI declaration or generator tag (read PNG "
                                               "eXIf, PNG tEXt (48))")
    else:
        assert signal.blocks_read == C2PA_BLOCKS.get(name, ())
    assert len(list(INTEROP.glob("*.[jp][pn]g"))) == 12


@pytest.mark.parametrize(("term", "form"), [("digitalCapture", "attribute"), ("algorithmicallyEnhanced", "element"),
                                            ("algorithmicMedia", "resource"), ("compositeSynthetic", "attribute"),
                                            ("somethingElse", "element")])
def test_an_iptc_type_that_is_not_generative_ai_is_reported_but_declares_nothing(tmp_path, term, form):
    signal = read_declarations(save(tmp_path, term, "JPEG", xmp=xmp(IPTC + term, form)))
    (found,) = signal.declarations
    assert found.source_type == IPTC + term and not found.declares_ai and not signal.declares_ai
    assert found.describe().startswith(f"unsigned metadata: JPEG APP1 XMP declares IPTC digital source type "
                                       f"{term if term != 'somethingElse' else repr(IPTC + term)} (not generative AI)")


def test_software_tags_naming_a_generator_are_hints_only(tmp_path):
    jpeg = read_declarations(save(tmp_path, "sw", "JPEG", exif=exif(software="ComfyUI"),
                                  xmp=xmp(IPTC + "digitalCapture", creator="Midjourney v6")))
    assert not jpeg.declares_ai
    assert [(d.location, d.generator, d.hint) for d in jpeg.hints] == [
        ("JPEG APP1 EXIF Software", "ComfyUI", True), ("JPEG APP1 XMP CreatorTool", "Midjourney v6", True)]
    assert jpeg.describe()[0].endswith("(not generative AI); unsigned, so it proves nothing by itself")
    assert jpeg.describe()[1] == ("unsigned metadata: JPEG APP1 EXIF Software names 'ComfyUI', a known image "
                                  "generator: a hint only, not an AI declaration (editors and converters write such "
                                  "tags too)")
    nai = read_declarations(png(tmp_path, "nai-tag", {"Software": "NovelAI"}))
    assert not nai.declares_ai and [d.format for d in nai.declarations] == [MetadataFormat.SOFTWARE_TAG]
    editors = read_declarations(save(tmp_path, "ps", "JPEG", exif=exif(software="Adobe Photoshop 25.0"),
                                     xmp=xmp(IPTC + "digitalCapture", creator="GIMP 2.10")))
    assert [d.format for d in editors.declarations] == [MetadataFormat.IPTC_SOURCE_TYPE]


def test_a_comfyui_graph_without_a_sampler_declares_nothing(tmp_path):
    upscale = {"1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
               "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "scale_by": 2}},
               "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}
    signal = read_declarations(png(tmp_path, "upscale", {"prompt": json.dumps(upscale)}))
    (found,) = signal.declarations
    assert found.format is MetadataFormat.COMFYUI_PROMPT and not signal.declares_ai
    assert "no sampler node" in found.describe()


def test_text_that_only_looks_like_generator_metadata_declares_nothing(tmp_path):
    signal = read_declarations(png(tmp_path, "plain", {"parameters": "my holiday, Steps: to the beach",
                                                       "prompt": "hello", "Comment": "{}", "Dream": "a dream"}))
    assert signal.declarations == () and signal.notes == ("PNG tEXt 'prompt': not valid JSON (Expecting value: "
                                                          "line 1 column 1 (char 0))",)


def test_not_an_image_it_reads_and_missing_files(tmp_path):
    text = tmp_path / "note.txt"
    text.write_text("Steps: 20, Sampler: Euler, Seed: 1\n")
    assert read_declarations(text).skipped == "declarations are read from PNG, JPEG and WebP files, not text/plain"
    assert read_declarations(text).describe() == (f"metadata not read: {read_declarations(text).skipped}",)
    with pytest.raises(InputError, match="no such file"):
        read_declarations(tmp_path / "missing.png")


# -------------------------------------------------------------------------------------------------- hostile
def test_truncated_files_give_what_was_read_and_say_so(tmp_path):
    for case, cut_in in [("sd-webui png tEXt", b"Steps: 30"), ("iptc jpeg xmp attribute", b"Iptc4xmpExt:Digital"),
                         ("iptc webp xmp resource", b"Iptc4xmpExt:Digital"),
                         ("sd-webui jpeg UserComment", "Steps".encode("utf-16-be"))]:
        raw = GENERATED[case][0](tmp_path).read_bytes()
        cut = tmp_path / f"cut-{len(raw)}"
        cut.write_bytes(raw[:raw.index(cut_in) + 4])
        signal = read_declarations(cut)
        assert signal.truncated and not signal.declares_ai, case
        assert any("the file ends inside it" in n for n in signal.notes), (case, signal.notes)


def test_a_100_mb_text_chunk_is_read_to_the_cap_only(tmp_path):
    base = save(tmp_path, "base", "PNG")
    huge = tmp_path / "huge.png"
    raw = base.read_bytes()
    size = 100 * 2**20
    with open(huge, "wb") as out:  # a sparse file: the chunk's 100 MB are zeros the filesystem does not store
        out.write(raw[:33] + struct.pack(">I", size) + b"tEXtparameters\0")
        out.seek(size - len("parameters\0"), 1)
        out.write(b"\0\0\0\0" + raw[33:])
    started = time.monotonic()
    signal = read_declarations(huge)
    assert time.monotonic() - started < 5
    assert signal.truncated and signal.declarations == ()
    assert signal.notes == (f"PNG tEXt chunk: {size} bytes, read to the 2 MiB cap",)


def test_a_compression_bomb_inflates_to_the_cap_only(tmp_path):
    bomb = zlib.compress(b"a" * (32 * 2**20), 9)  # 32 MB of text in some 32 KB
    path = with_chunk(save(tmp_path, "base", "PNG"), b"zTXt", b"parameters\0\0" + bomb, tmp_path / "bomb.png")
    signal = read_declarations(path)
    assert signal.truncated and signal.notes == (f"PNG zTXt 'parameters': inflated text cut at {2 * 2**20} bytes",)


def test_the_per_file_caps_stop_many_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(metadata, "MAX_BLOCKS", 20)
    base = save(tmp_path, "base", "PNG")
    raw = base.read_bytes()
    many = tmp_path / "many.png"
    many.write_bytes(raw[:33] + b"".join(chunk(b"tEXt", f"k{i}\0v".encode()) for i in range(50)) + raw[33:])
    signal = read_declarations(many)
    assert signal.truncated and signal.notes == ("PNG: more than 20 chunks; the rest was not read",)
    monkeypatch.setattr(metadata, "MAX_BLOCKS", 100_000)
    monkeypatch.setattr(metadata, "MAX_TOTAL_BYTES", 300)
    signal = read_declarations(GENERATED["comfyui png prompt+workflow"][0](tmp_path))
    assert signal.truncated and "read to the per-file cap" in " ".join(signal.notes)


def test_invalid_utf8_is_replaced_and_noted(tmp_path):
    itxt = b"parameters\0\0\0\0\0" + b"bad \xff\xfe bytes\n" + A1111.encode()
    path = with_chunk(save(tmp_path, "base", "PNG"), b"iTXt", itxt, tmp_path / "bad.png")
    signal = read_declarations(path)
    assert signal.declares_ai and signal.notes == ("PNG iTXt 'parameters': invalid UTF-8 at byte 4 (replaced)",)
    jpeg = read_declarations(save(tmp_path, "bad", "JPEG", exif=exif(b"ASCII\0\0\0\xc3\x28" + A1111.encode())))
    assert jpeg.declares_ai and jpeg.notes == ("JPEG APP1 EXIF UserComment: invalid UTF-8 at byte 0 (replaced)",)


LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i + 1} "{f"&lol{i};" * 10}">'.replace("&lol0;", "&lol;") for i in range(9))
          + ']><x:xmpmeta xmlns:x="adobe:ns:meta/">&lol9;</x:xmpmeta>')
XXE = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       '<x:xmpmeta xmlns:x="adobe:ns:meta/">&xxe;</x:xmpmeta>')


@pytest.mark.parametrize("packet", [LAUGHS, XXE], ids=["billion-laughs", "external-entity"])
def test_xml_with_a_doctype_is_refused(tmp_path, packet):
    for path, where in [(save(tmp_path, "x", "JPEG", xmp=packet.encode()), "JPEG APP1 XMP"),
                        (png(tmp_path, "x", itxt={"XML:com.adobe.xmp": packet}), "PNG iTXt 'XML:com.adobe.xmp'"),
                        (save(tmp_path, "x", "WEBP", xmp=packet.encode()), "WebP XMP")]:
        started = time.monotonic()
        signal = read_declarations(path)
        assert time.monotonic() - started < 2
        assert signal.declarations == () and signal.notes == (
            f"{where}: XML refused: it declares a DOCTYPE or entities",)


def test_deeply_nested_xml_and_json_are_refused(tmp_path):
    deep_xml = '<x:xmpmeta xmlns:x="adobe:ns:meta/">' + "<a>" * 100_000 + "</a>" * 100_000 + "</x:xmpmeta>"
    signal = read_declarations(png(tmp_path, "deepx", itxt={"XML:com.adobe.xmp": deep_xml}))
    assert signal.notes == ("PNG iTXt 'XML:com.adobe.xmp': XML refused: nested deeper than 64 elements",)
    deep = "[" * 100_000 + "]" * 100_000
    signal = read_declarations(png(tmp_path, "deepj", {"prompt": deep, "workflow": deep, "invokeai_metadata": deep,
                                                       "parameters": '{"a":' * 100_000}))
    assert signal.declarations == ()
    assert sorted(signal.notes) == sorted(f"PNG tEXt {k!r}: JSON nested too deep; not read"
                                          for k in ("prompt", "workflow", "invokeai_metadata", "parameters"))


def test_damaged_containers_never_raise_anything_but_input_error(tmp_path):
    """Seeded random damage to every generated file (bytes flipped, cut, duplicated): a signal or an InputError."""
    rng = np.random.default_rng(16)
    originals = [make(tmp_path).read_bytes() for make, *_ in GENERATED.values()]
    bad_length = (save(tmp_path, "b", "PNG").read_bytes()[:33] + struct.pack(">I", 0xFFFFFFF0) + b"tEXt")
    for i in range(300):
        raw = bytearray(originals[i % len(originals)])
        head = 12 if raw.startswith(b"RIFF") else 8  # keep the signature, so the container is walked
        for at in rng.integers(head, min(len(raw), 3000), size=int(rng.integers(1, 20))):
            raw[at] = int(rng.integers(0, 256))
        if i % 3 == 0:
            raw = raw[: int(rng.integers(head + 1, len(raw)))]
        path = tmp_path / f"damaged-{i}"
        path.write_bytes(bytes(raw))
        try:
            signal = read_declarations(path)
        except InputError:
            continue
        json.dumps(signal.to_dict())
        signal.describe()
    path = tmp_path / "bad-length.png"
    path.write_bytes(bad_length)
    assert read_declarations(path).notes == (
        "PNG: a 'tEXt' chunk declares 4294967280 bytes, over PNG's limit; the rest was not read",)


def test_declaration_reads_back_from_its_json():
    found = Declaration(MetadataFormat.IPTC_SOURCE_TYPE, "WebP XMP", True, source_type=IPTC + "trainedAlgorithmicMedia")
    assert Declaration.from_dict(json.loads(json.dumps(found.to_dict()))) == found
    assert found.describe() == ("unsigned metadata: WebP XMP declares IPTC digital source type trainedAlgorithmicMedia "
                                "(generative AI); anyone can add or remove such metadata, so it proves nothing by "
                                "itself")
