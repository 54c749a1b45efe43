"""Every kind of bad input the CLI and the library must refuse, made on the spot in a test's folder."""

import struct
import zlib

import numpy as np


def _truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _bomb_png(width=20000, height=20000) -> bytes:
    """A real decompression bomb: a valid 1-bit 20000x20000 PNG (400 MP) of a few hundred KB."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def bad_inputs(tmp_path, png, jpg):
    """(name, path, expected message fragment) for every kind of bad input the CLI and library must refuse."""
    cases = []
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cases.append(("empty", empty, "empty file"))
    tpng = tmp_path / "truncated.png"
    tpng.write_bytes(_truncated(png.read_bytes()))
    cases.append(("truncated png", tpng, "truncated"))
    tjpg = tmp_path / "truncated.jpg"
    tjpg.write_bytes(_truncated(jpg.read_bytes()))
    cases.append(("truncated jpeg", tjpg, "truncated"))
    rand = tmp_path / "random.png"
    rand.write_bytes(np.random.default_rng(0).bytes(5000))
    cases.append(("random bytes named .png", rand, "not a recognised media type"))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    cases.append(("directory", folder, "is a directory"))
    cases.append(("missing", tmp_path / "missing.png", "no such file"))
    elf = tmp_path / "program.bin"
    elf.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8)
    cases.append(("unsupported type", elf, "not a recognised media type"))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_bomb_png())
    cases.append(("decompression bomb", bomb, "decompression bomb"))
    return cases
