"""Audio files in and out: formats sniffed from content, budgets checked from the header before decoding, full
decodes to float32, encodes in every format SynthGuard writes, and the content hash the ledger keys audio by.

Samples everywhere are float32 in [-1, 1], shape ``(frames, channels)`` here (``AudioClip.samples``); encoders also
take ``(frames,)`` for mono. WAV, FLAC, Ogg (Vorbis, Opus) and MP3 are decoded by libsndfile (``soundfile``), M4A
(AAC in MP4) by FFmpeg (``av``); MP3, Opus and AAC are encoded by FFmpeg (LAME, libopus, FFmpeg's AAC), WAV,
FLAC and Vorbis by libsndfile. Both libraries are imported inside the functions that use them.

Hostile input costs nothing: the declared duration, sample rate and channel count are read from the header and
checked against the budgets (``max_audio_seconds()``, ``max_audio_rate()``, ``max_audio_channels()``) before a
sample is decoded, and the decode itself stops one block past the duration budget whatever the header said. A
file whose data ends before its header says it should (a truncated WAV, FLAC, Ogg, MP3 frame or MP4) is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np

from synthguard.core.media import check_input_file, mp4_handler_types
from synthguard.errors import InputError, one_line

# 15 minutes covers a long interview clip or a song; rates past 384 kHz and more than 8 channels (7.1) are not
# audio anyone publishes. Override with SYNTHGUARD_MAX_AUDIO_SECONDS / _RATE / _CHANNELS.
DEFAULT_MAX_AUDIO_SECONDS = 15 * 60.0
DEFAULT_MAX_AUDIO_RATE = 384_000
DEFAULT_MAX_AUDIO_CHANNELS = 8
# Lossy formats are written at these bit rates by default (bits per second, all channels together).
DEFAULT_BITRATES = {"mp3": 192_000, "opus": 128_000, "m4a": 192_000}
# Frames read per block: the decode never holds more than one block past the duration budget.
_BLOCK_FRAMES = 1 << 18
_WRITE_BLOCK_FRAMES = 1 << 14
MAX_SAMPLES_PER_SECOND = 96_000 * 2
# An MP4 whose decoded audio falls this many frames short of its declared duration is truncated (AAC frames are
# 1024 samples and an encoder's padding is under two of them).
_MP4_SHORT_FRAMES = 4096


class AudioFormat(str, Enum):
    """The audio formats SynthGuard reads and writes (the value is the ``--format`` name)."""

    WAV = "wav"
    FLAC = "flac"
    MP3 = "mp3"
    OPUS = "opus"  # Opus in Ogg
    VORBIS = "vorbis"  # Vorbis in Ogg
    M4A = "m4a"  # AAC in MP4

    @property
    def mime(self) -> str:
        return _MIMES[self]

    @property
    def suffix(self) -> str:
        return _SUFFIXES[self]

    @property
    def lossless(self) -> bool:
        return self in (AudioFormat.WAV, AudioFormat.FLAC)

    @property
    def embeddable(self) -> bool:
        """True when a C2PA manifest goes into the file itself (c2pa has no Ogg support: a ``.c2pa`` sidecar)."""
        return self not in (AudioFormat.OPUS, AudioFormat.VORBIS)

    @classmethod
    def parse(cls, value: str) -> AudioFormat:
        """A format from its name or a file suffix ("wav", ".mp3", "ogg" reads as Opus)."""
        name = value.lower().lstrip(".")
        name = {"wave": "wav", "ogg": "opus", "oga": "opus", "aac": "m4a", "mp4": "m4a"}.get(name, name)
        try:
            return cls(name)
        except ValueError:
            raise InputError(f"unknown audio format {value!r} (use one of "
                             f"{', '.join(f.value for f in cls)})") from None


_MIMES = {AudioFormat.WAV: "audio/wav", AudioFormat.FLAC: "audio/flac", AudioFormat.MP3: "audio/mpeg",
          AudioFormat.OPUS: "audio/ogg", AudioFormat.VORBIS: "audio/ogg", AudioFormat.M4A: "audio/mp4"}
_SUFFIXES = {AudioFormat.WAV: ".wav", AudioFormat.FLAC: ".flac", AudioFormat.MP3: ".mp3", AudioFormat.OPUS: ".opus",
             AudioFormat.VORBIS: ".ogg", AudioFormat.M4A: ".m4a"}


@dataclass(frozen=True)
class AudioClip:
    """Decoded audio: ``samples`` float32 ``(frames, channels)`` in [-1, 1] at ``rate`` Hz."""

    samples: np.ndarray = field(repr=False, compare=False)
    rate: int
    format: AudioFormat
    channels: int
    frames: int
    # The file's sample coding as libsndfile names it ("PCM_16", "PCM_24", "FLOAT", "MPEG_LAYER_III", "OPUS",
    # "VORBIS"), or "AAC"/"ALAC" for M4A: what a lossless re-encode keeps.
    subtype: str | None = None

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    @property
    def mono(self) -> np.ndarray:
        """The channels averaged: float32 ``(frames,)``."""
        return self.samples[:, 0] if self.channels == 1 else self.samples.mean(axis=1, dtype=np.float32)


def _env_number(name: str, default: float, kind: Callable[[str], float]) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise InputError(f"{name}={value!r} is not a number") from None
    if number <= 0:
        raise InputError(f"{name}={value!r} must be positive")
    return number


def max_audio_seconds() -> float:
    return _env_number("SYNTHGUARD_MAX_AUDIO_SECONDS", DEFAULT_MAX_AUDIO_SECONDS, float)


def max_audio_rate() -> int:
    return int(_env_number("SYNTHGUARD_MAX_AUDIO_RATE", DEFAULT_MAX_AUDIO_RATE, int))


def max_audio_channels() -> int:
    return int(_env_number("SYNTHGUARD_MAX_AUDIO_CHANNELS", DEFAULT_MAX_AUDIO_CHANNELS, int))


# --- sniffing --------------------------------------------------------------------------------------------------

def _id3v2_size(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of ``head`` (header, body and footer), 0 without one."""
    if len(head) < 10 or not head.startswith(b"ID3") or any(b & 0x80 for b in head[6:10]):
        return 0
    body = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    return 10 + body + (10 if head[5] & 0x10 else 0)


# MPEG audio frame header fields: bit rates (kbps) by (version is MPEG-1, layer) and sample rates by version.
_MPEG_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class _MpegFrame:
    length: int
    rate: int
    channels: int
    bitrate: int
    samples: int


def _mpeg_frame(data: bytes, pos: int) -> _MpegFrame | None:
    """The MPEG audio frame header at ``pos``, or None when the bytes there are not a valid one."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (data[pos + 1] >> 3) & 3, (data[pos + 1] >> 1) & 3
    bitrate_index, rate_index = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved values (layer 0 is ADTS AAC); free-format bit rates are not supported
    layer, mpeg1 = 4 - layer_bits, version == 3
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _MPEG_RATES[version][rate_index]
    padding = (data[pos + 2] >> 1) & 1
    if layer == 1:
        length, samples = (12 * bitrate // rate + padding) * 4, 384
    else:
        samples = 1152 if layer == 2 or mpeg1 else 576
        length = samples // 8 * bitrate // rate + padding
    channels = 1 if data[pos + 3] >> 6 == 3 else 2
    return _MpegFrame(length, rate, channels, bitrate, samples)


def _ogg_codec(head: bytes) -> AudioFormat | None:
    """Opus or Vorbis from the first packet of an Ogg stream (None for another codec, e.g. FLAC or Speex)."""
    if len(head) < 28 or not head.startswith(b"OggS"):
        return None
    first = head[27 + head[26]:]
    if first.startswith(b"OpusHead"):
        return AudioFormat.OPUS
    if first.startswith(b"\x01vorbis"):
        return AudioFormat.VORBIS
    return None


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(size)


def _audio_start(handle: BinaryIO) -> int:
    """Where the audio data begins: after an ID3v2 tag, if there is one (libsndfile skips it the same way)."""
    return _id3v2_size(_read_at(handle, 0, 10))


def sniff_audio(handle: BinaryIO) -> AudioFormat | None:
    """The audio format of an open binary file from its content (None when it is not audio SynthGuard reads).

    An ID3v2 tag may precede MP3 or FLAC data; MP3 needs a valid frame header there
    *and* another one right after that frame, so a stray FF Ex byte pair is not taken for audio; MP4 counts as M4A
    when its brand says so or when its tracks are all sound tracks."""
    skip = _audio_start(handle)
    head = _read_at(handle, skip, 64)
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE" and not skip:
        return AudioFormat.WAV
    if head.startswith(b"fLaC"):
        return AudioFormat.FLAC
    if head.startswith(b"OggS") and not skip:
        return _ogg_codec(_read_at(handle, 0, 4096))
    if head[4:8] == b"ftyp" and not skip:
        handlers = mp4_handler_types(handle)
        if head[8:12] in (b"M4A ", b"M4B ") or (handlers and handlers <= {b"soun"}):
            return AudioFormat.M4A
        return None
    frame = _mpeg_frame(head, 0)
    if frame is not None:
        following = _read_at(handle, skip + frame.length, 4)
        if _mpeg_frame(following, 0) is not None or (not following and skip + frame.length > 0):
            return AudioFormat.MP3
    return None


# --- header reading (budgets, truncation) ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Header:
    """What a file declares before its samples are decoded; frames None when the header does not say."""

    rate: int
    channels: int
    frames: int | None
    codec: str
    bitrate: int | None = None


def _wav_header(handle: BinaryIO, size: int, name: str) -> _Header:
    """RIFF/RF64 WAVE: fmt and data chunk sizes; refuses a data chunk that runs past the end of the file."""
    head = _read_at(handle, 0, 12)
    pos, fmt, data_size, ds64 = 12, None, None, None
    while pos + 8 <= size:
        chunk = _read_at(handle, pos, 8)
        kind, length = chunk[:4], struct.unpack("<I", chunk[4:8])[0]
        if kind == b"ds64":
            body = _read_at(handle, pos + 8, 28)
            if len(body) >= 16:
                ds64 = struct.unpack("<Q", body[8:16])[0]
        elif kind == b"fmt ":
            fmt = _read_at(handle, pos + 8, min(length, 40))
        elif kind == b"data":
            data_size = ds64 if head[:4] == b"RF64" and length == 0xFFFFFFFF and ds64 is not None else length
            break
        pos += 8 + length + (length & 1)
    if fmt is None or len(fmt) < 16:
        raise InputError(f"{name}: WAV without a complete fmt chunk (truncated or not a WAV file)")
    if data_size is None:
        raise InputError(f"{name}: WAV without a data chunk (truncated or not a WAV file)")
    tag, channels, rate, byte_rate, block, bits = struct.unpack("<HHIIHH", fmt[:16])
    if channels == 0 or rate == 0 or block == 0:
        raise InputError(f"{name}: WAV declares {channels} channels at {rate} Hz, block {block}: not audio")
    available = size - (pos + 8)
    # 0 and 0xFFFFFFFF are what streaming writers put before they know the length: the file's end decides.
    if data_size in (0, 0xFFFFFFFF):
        data_size = available
    elif data_size > available:
        raise InputError(f"{name}: truncated WAV: the header declares {data_size} bytes of samples "
                         f"({data_size // block / rate:.1f} s), the file holds {max(available, 0)}")
    codec = {1: f"pcm_{bits}", 3: f"float_{bits}", 6: "alaw", 7: "mulaw", 0xFFFE: f"extensible_{bits}"}
    return _Header(rate, channels, data_size // block, codec.get(tag, f"wav-0x{tag:04x}"), byte_rate * 8)


def _flac_header(handle: BinaryIO, offset: int, name: str) -> _Header:
    block = _read_at(handle, offset + 4, 38)
    if len(block) < 38 or block[0] & 0x7F != 0:
        raise InputError(f"{name}: FLAC without a complete STREAMINFO block (truncated or corrupt)")
    info = int.from_bytes(block[14:22], "big")
    rate, channels, total = info >> 44, ((info >> 41) & 7) + 1, info & ((1 << 36) - 1)
    if rate == 0:
        raise InputError(f"{name}: FLAC declares a sample rate of 0 Hz")
    return _Header(rate, channels, total or None, "flac")


def _ogg_last_granule(handle: BinaryIO, size: int) -> int | None:
    """The granule position of the last Ogg page when that page is complete and flagged end-of-stream (None
    otherwise: a truncated stream)."""
    tail_start = max(0, size - 65536 - 282)
    tail = _read_at(handle, tail_start, size - tail_start)
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        page = tail[pos:]
        if len(page) >= 27 and page[4] == 0:
            segments = page[26]
            length = 27 + segments + sum(page[27:27 + segments])
            if len(page) >= 27 + segments:
                if length != len(page) or not page[5] & 0x04:
                    return None
                return int.from_bytes(page[6:14], "little", signed=True)
        pos = tail.rfind(b"OggS", 0, pos)
    return None


def _ogg_header(handle: BinaryIO, size: int, fmt: AudioFormat, name: str) -> _Header:
    first = _read_at(handle, 0, 4096)
    packet = first[27 + first[26]:]
    if fmt is AudioFormat.OPUS:
        if len(packet) < 19:
            raise InputError(f"{name}: Ogg Opus with a truncated OpusHead packet")
        # Opus always decodes at 48 kHz (the input rate in the header is only a note); the first granule
        # positions are the encoder's pre-skip, which the decoder drops.
        channels, rate, skip = packet[9], 48000, struct.unpack("<H", packet[10:12])[0]
    else:
        if len(packet) < 30:
            raise InputError(f"{name}: Ogg Vorbis with a truncated identification packet")
        channels, rate, skip = packet[11], struct.unpack("<I", packet[12:16])[0], 0
    if channels == 0 or rate == 0:
        raise InputError(f"{name}: Ogg {fmt.value} declares {channels} channels at {rate} Hz: not audio")
    granule = _ogg_last_granule(handle, size)
    if granule is None:
        raise InputError(f"{name}: truncated Ogg {fmt.value.capitalize()}: its last page is incomplete or not "
                         "marked as the end of the stream")
    return _Header(rate, channels, max(granule - skip, 0), fmt.value)


def _mp3_header(handle: BinaryIO, size: int, name: str) -> _Header:
    """Walks the MPEG frames from the first to the last (headers only, 1 MiB of the file at a time): a frame
    running past the end of the file is a truncation. Trailing tags (ID3v1, APE, Lyrics3) end the walk; so does
    lost sync (the decoder resynchronises and judges). A cut exactly between two frames leaves a shorter valid file,
    which no header can reveal."""
    pos = _audio_start(handle)
    window_start, window = pos, _read_at(handle, pos, 1 << 20)
    first = _mpeg_frame(window, 0)
    if first is None:
        raise InputError(f"{name}: MP3 without a valid first frame header (corrupt or not MP3)")
    frames = total_samples = bitrates = 0
    while pos < size:
        if pos + 4 > window_start + len(window):
            window_start, window = pos, _read_at(handle, pos, 1 << 20)
        frame = _mpeg_frame(window, pos - window_start)
        if frame is None:
            break
        if pos + frame.length > size:
            raise InputError(f"{name}: truncated MP3: frame {frames + 1} needs {frame.length} bytes, "
                             f"{size - pos} are left")
        frames, total_samples, bitrates = frames + 1, total_samples + frame.samples, bitrates + frame.bitrate
        pos += frame.length
    return _Header(first.rate, first.channels, total_samples, "mp3", bitrates // max(frames, 1))


def _check_budget(name: str, rate: int, channels: int, frames: int | None, max_seconds: float, max_rate: int,
                  max_channels: int) -> None:
    if rate > max_rate:
        raise InputError(f"{name}: sample rate {rate} Hz, over the {max_rate} Hz limit (raise "
                         "SYNTHGUARD_MAX_AUDIO_RATE to allow it)")
    if channels > max_channels:
        raise InputError(f"{name}: {channels} channels, over the limit of {max_channels} (raise "
                         "SYNTHGUARD_MAX_AUDIO_CHANNELS to allow it)")
    if frames is not None and frames > _frame_limit(rate, channels, max_seconds):
        raise InputError(f"{name}: {frames / rate:.0f} s of audio at {rate} Hz x {channels}, over the "
                         f"{max_seconds:.0f} s limit (of 96 kHz stereo: a decompression bomb or a very long "
                         "recording; raise SYNTHGUARD_MAX_AUDIO_SECONDS to allow it)")


def _frame_limit(rate: int, channels: int, max_seconds: float) -> int:
    """The most frames decoded: ``max_seconds`` of audio, and no more samples than that long at 96 kHz stereo
    (memory: 15 minutes of 384 kHz 7.1 would be 11 GB of float32)."""
    return int(max_seconds * min(rate, MAX_SAMPLES_PER_SECOND / channels))


def _budget_exceeded(name: str, max_seconds: float) -> InputError:
    return InputError(f"{name}: more than {max_seconds:.0f} s of audio (of 96 kHz stereo) once decoded, over the "
                      "limit (raise SYNTHGUARD_MAX_AUDIO_SECONDS to allow it)")


def _open(source: Path | bytes) -> tuple[BinaryIO, int, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if not data:
            raise InputError("<audio bytes>: empty")
        return io.BytesIO(data), len(data), "<audio bytes>"
    path = Path(source)
    size = check_input_file(path)
    try:
        return open(path, "rb"), size, str(path)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def _sniffed(handle: BinaryIO, name: str) -> AudioFormat:
    fmt = sniff_audio(handle)
    if fmt is None:
        head = _read_at(handle, 0, 12)
        what = ("an Ogg stream that is neither Opus nor Vorbis" if head.startswith(b"OggS")
                else "an MP4 with video or no sound track" if head[4:8] == b"ftyp"
                else "raw AAC (ADTS), which is read only inside M4A" if head[:2] in (b"\xff\xf1", b"\xff\xf9")
                else "no supported audio format (WAV, FLAC, MP3, Ogg Opus/Vorbis, M4A)")
        raise InputError(f"{name}: not audio SynthGuard reads: content matches {what}")
    return fmt


def _header(handle: BinaryIO, size: int, fmt: AudioFormat, name: str) -> _Header | None:
    """The header of every format but M4A (None: its budgets are checked from FFmpeg's reading)."""
    if fmt is AudioFormat.WAV:
        return _wav_header(handle, size, name)
    if fmt is AudioFormat.FLAC:
        return _flac_header(handle, _audio_start(handle), name)
    if fmt in (AudioFormat.OPUS, AudioFormat.VORBIS):
        return _ogg_header(handle, size, fmt, name)
    if fmt is AudioFormat.MP3:
        return _mp3_header(handle, size, name)
    _mp4_boxes_fit(handle, size, name)
    return None


def _mp4_boxes_fit(handle: BinaryIO, size: int, name: str) -> None:
    """Refuses an MP4 whose top-level boxes run past the end of the file (FFmpeg plays a cut one quietly)."""
    pos = 0
    while pos + 8 <= size:
        header = _read_at(handle, pos, 16)
        length = int.from_bytes(header[:4], "big")
        if length == 1 and len(header) == 16:
            length = int.from_bytes(header[8:16], "big")
        elif length == 0:
            return
        if length < 8 or pos + length > size:
            raise InputError(f"{name}: truncated M4A: its {header[4:8].decode('latin-1')!r} box needs "
                             f"{length} bytes, {size - pos} are left")
        pos += length


# --- decoding ----------------------------------------------------------------------------------------------------

def decode_audio(source: Path | bytes, *, max_seconds: float | None = None, max_rate: int | None = None,
                 max_channels: int | None = None) -> AudioClip:
    """Decode a whole audio file (a path or its bytes) to float32 ``(frames, channels)`` in [-1, 1].

    The format comes from the content (never the name); the declared rate, channels and duration are checked
    against the budgets (defaults: ``max_audio_seconds()`` etc.) before decoding. Empty, truncated, corrupt,
    over-budget or non-audio input raises InputError; so do non-finite float samples. Float samples past full
    scale are clipped to [-1, 1], as a player does.
    """
    max_seconds = max_audio_seconds() if max_seconds is None else max_seconds
    max_rate = max_audio_rate() if max_rate is None else max_rate
    max_channels = max_audio_channels() if max_channels is None else max_channels
    handle, size, name = _open(source)
    with handle:
        fmt = _sniffed(handle, name)
        header = _header(handle, size, fmt, name)
        if header is not None:
            _check_budget(name, header.rate, header.channels, header.frames, max_seconds, max_rate, max_channels)
        handle.seek(0)
        if fmt is AudioFormat.M4A:
            samples, rate, subtype = _decode_mp4(handle, name, max_seconds, max_rate, max_channels)
        else:
            samples, rate, subtype = _decode_sndfile(handle, fmt, header, name, max_seconds, max_rate,
                                                     max_channels)
    if not np.isfinite(samples).all():
        raise InputError(f"{name}: the decoded samples include NaN or infinity (a corrupt float file)")
    np.clip(samples, -1.0, 1.0, out=samples)
    return AudioClip(samples, rate, fmt, samples.shape[1], samples.shape[0], subtype)


def _decode_sndfile(handle: BinaryIO, fmt: AudioFormat, header: _Header | None, name: str, max_seconds: float,
                    max_rate: int, max_channels: int) -> tuple[np.ndarray, int, str]:
    import soundfile  # noqa: PLC0415 (optional native library, loaded when audio is decoded)

    try:
        with soundfile.SoundFile(handle) as sound:
            rate, channels, subtype = sound.samplerate, sound.channels, sound.subtype
            declared = header.frames if header is not None and header.frames is not None else None
            _check_budget(name, rate, channels, declared if declared is not None else sound.frames,
                          max_seconds, max_rate, max_channels)
            limit = _frame_limit(rate, channels, max_seconds)
            blocks, total = [], 0
            while True:
                block = sound.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                blocks.append(block)
                total += len(block)
                if total > limit:
                    raise _budget_exceeded(name, max_seconds)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 (libsndfile reports bad data as LibsndfileError, RuntimeError,
        # TypeError, ValueError or MemoryError: all bad input here)
        raise InputError(f"{name}: corrupt or truncated {fmt.value.upper()} audio ({one_line(exc)})") from None
    if total == 0:
        raise InputError(f"{name}: {fmt.value.upper()} file with no audio samples")
    # libsndfile stops quietly at the end of the data: fewer frames than the header declares is a truncation.
    # (An MP3's frame walk counts encoder padding that the decoder trims, up to two frames' worth.)
    if header is not None and header.frames is not None and fmt is not AudioFormat.MP3 and total < header.frames:
        raise InputError(f"{name}: truncated {fmt.value.upper()}: {total} of the {header.frames} frames its header "
                         "declares could be decoded")
    if fmt is AudioFormat.MP3 and header is not None and header.frames is not None and total < header.frames - 4608:
        raise InputError(f"{name}: corrupt MP3: {total} samples decoded from frames holding {header.frames}")
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0], rate, subtype


def _to_interleaved(frame) -> np.ndarray:
    """One decoded PyAV frame as float32 ``(samples, channels)``."""
    array = frame.to_ndarray()
    array = array.T if frame.format.is_planar else array.reshape(-1, frame.layout.nb_channels)
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    scale = float(1 << (8 * array.dtype.itemsize - 1))
    if array.dtype.kind == "u":
        return ((array.astype(np.float32) - scale) / scale).astype(np.float32)
    return (array.astype(np.float32) / scale).astype(np.float32)


def _decode_mp4(handle: BinaryIO, name: str, max_seconds: float, max_rate: int,
                max_channels: int) -> tuple[np.ndarray, int, str]:
    import av  # noqa: PLC0415 (bundled FFmpeg, loaded when M4A audio is decoded)

    try:
        with av.open(handle, mode="r", format="mp4") as container:
            if not container.streams.audio:
                raise InputError(f"{name}: M4A without an audio track")
            stream = container.streams.audio[0]
            codec = stream.codec_context
            rate, channels = codec.sample_rate, codec.layout.nb_channels
            if not rate or not channels:
                raise InputError(f"{name}: M4A audio track declares {channels} channels at {rate} Hz")
            declared = int(stream.duration * stream.time_base * rate) if stream.duration and stream.time_base \
                else None
            _check_budget(name, rate, channels, declared, max_seconds, max_rate, max_channels)
            limit = _frame_limit(rate, channels, max_seconds)
            blocks, total = [], 0
            for frame in container.decode(stream):
                if frame.sample_rate != rate or frame.layout.nb_channels != channels:
                    raise InputError(f"{name}: M4A audio changes its rate or channels mid-stream")
                block = _to_interleaved(frame)
                blocks.append(block)
                total += len(block)
                if total > limit:
                    raise _budget_exceeded(name, max_seconds)
            subtype = codec.name.upper()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 (FFmpeg's errors (av.FFmpegError and its subclasses) and PyAV's
        # ValueError / MemoryError on broken containers are all bad input here)
        raise InputError(f"{name}: corrupt or truncated M4A audio ({one_line(exc)})") from None
    if total == 0:
        raise InputError(f"{name}: M4A file with no audio samples")
    samples = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    if declared is not None:
        if total < declared - _MP4_SHORT_FRAMES:
            raise InputError(f"{name}: truncated M4A: {total} of the {declared} frames it declares could be "
                             "decoded")
        # The edit list's duration excludes the encoder's padding at the end, which FFmpeg's decoder keeps.
        samples = samples[:declared]
    return np.ascontiguousarray(samples), rate, subtype


# --- content hash --------------------------------------------------------------------------------------------------

def audio_content_sha256(clip: AudioClip) -> str:
    """The ledger's content key for audio: unchanged when only metadata (a C2PA manifest, ID3 / Vorbis comments,
    other RIFF chunks) is added or removed; changed by any change of the samples, including a re-encode.

    Exactly: sha256 over ``synthguard-audio-v1|<rate>|<channels>|<frames>|`` (decimal ASCII) followed by the
    decoded samples as ``decode_audio`` returns them (after clipping to [-1, 1]), float32 little-endian, frames in
    order with their channels interleaved. For WAV and FLAC these are the coded integers scaled exactly, so any
    decoder gives the same hash; for MP3, Ogg and M4A they are libsndfile's (mpg123, libvorbis, libopus) or
    FFmpeg's decode, stable for a given build of those libraries.
    """
    samples = np.ascontiguousarray(clip.samples, dtype="<f4")
    digest = hashlib.sha256(f"synthguard-audio-v1|{clip.rate}|{clip.channels}|{clip.frames}|".encode())
    digest.update(samples.reshape(-1).data)
    return digest.hexdigest()


# --- encoding ------------------------------------------------------------------------------------------------------

# Sample rates each lossy encoder accepts; another rate is resampled to the nearest rate above it (else the top).
_ENCODER_RATES = {
    AudioFormat.MP3: (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
    AudioFormat.OPUS: (48000,),
    AudioFormat.M4A: (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000),
    AudioFormat.VORBIS: tuple(range(8000, 192001)),
}
_WAV_SUBTYPES = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8")
_FLAC_SUBTYPES = ("PCM_16", "PCM_24", "PCM_S8")


def output_rate(fmt: AudioFormat, rate: int) -> int:
    """The sample rate ``encode_audio(..., rate, fmt)`` writes: ``rate`` itself, except Opus (always 48 kHz) and
    MP3 / M4A at a rate their encoders do not take (the nearest accepted rate above it, else their highest)."""
    allowed = _ENCODER_RATES.get(fmt)
    if allowed is None or rate in allowed:
        return rate
    above = [r for r in allowed if r >= rate]
    return above[0] if above else allowed[-1]


def _as_frames(samples: np.ndarray) -> np.ndarray:
    array = np.asarray(samples)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"expected audio samples of shape (frames,) or (frames, channels), got {array.shape}")
    if array.dtype != np.float32:
        raise InputError(f"expected float32 audio samples, got {array.dtype}")
    if not np.isfinite(array).all():
        raise InputError("audio samples include NaN or infinity")
    return np.clip(array, -1.0, 1.0)


def resample(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """``samples`` (frames, channels) float32 at ``new_rate`` (scipy's polyphase resample_poly), clipped."""
    if new_rate == rate:
        return samples
    from scipy.signal import resample_poly  # noqa: PLC0415

    ratio = Fraction(new_rate, rate)
    out = resample_poly(samples, ratio.numerator, ratio.denominator, axis=0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def encode_audio(samples: np.ndarray, rate: int, fmt: AudioFormat, *, bitrate: int | None = None,
                 subtype: str | None = None) -> bytes:
    """Encode float32 samples (``(frames,)`` or ``(frames, channels)``) as a complete file in ``fmt``.

    WAV is 16-bit PCM unless ``subtype`` says otherwise (``"PCM_24"``, ``"FLOAT"``, ...); FLAC 16-bit unless
    ``"PCM_24"``. MP3 (LAME), Opus (libopus, in Ogg) and M4A (AAC) use ``bitrate`` bits per second (default
    ``DEFAULT_BITRATES``); Vorbis libsndfile's default quality. Samples at a rate the encoder does not take are
    resampled first (``output_rate`` says to which: Opus is always 48 kHz).
    """
    fmt = AudioFormat(fmt)
    frames = _as_frames(samples)
    if not isinstance(rate, int | np.integer) or rate <= 0:
        raise InputError(f"sample rate must be a positive integer (Hz), got {rate!r}")
    rate = int(rate)
    if fmt.lossless or fmt is AudioFormat.VORBIS:
        if bitrate is not None:
            raise InputError(f"{fmt.value} takes no bit rate")
        return _encode_sndfile(frames, rate, fmt, subtype)
    if subtype is not None:
        raise InputError(f"{fmt.value} takes a bit rate, not a sample subtype ({subtype!r})")
    if fmt is AudioFormat.MP3 and frames.shape[1] > 2:
        raise InputError(f"MP3 holds mono or stereo, not {frames.shape[1]} channels")
    new_rate = output_rate(fmt, rate)
    return _encode_av(resample(frames, rate, new_rate), new_rate, fmt, bitrate or DEFAULT_BITRATES[fmt.value])


# Integer codings written from integers made here: sample x is round(x * 2^(bits-1)) clipped, the exact inverse
# of libsndfile's decode (i / 2^(bits-1)), so decoded samples re-encode to the same integers in WAV and FLAC alike.
# PCM_24 goes to libsndfile as int32 with its 24 bits on top.
_PCM_SCALE = {"PCM_16": (np.int16, 1 << 15, 0), "PCM_24": (np.int32, 1 << 23, 8), "PCM_32": (np.int32, 1 << 31, 0)}


def _to_pcm(frames: np.ndarray, subtype: str) -> np.ndarray:
    if subtype not in _PCM_SCALE:
        return frames
    dtype, scale, shift = _PCM_SCALE[subtype]
    ints = np.clip(np.round(frames.astype(np.float64) * scale), -scale, scale - 1).astype(np.int64)
    return (ints << shift).astype(dtype)


def _encode_sndfile(frames: np.ndarray, rate: int, fmt: AudioFormat, subtype: str | None) -> bytes:
    import soundfile  # noqa: PLC0415

    if fmt is AudioFormat.VORBIS:
        container, subtype = "OGG", "VORBIS"
    else:
        allowed = _WAV_SUBTYPES if fmt is AudioFormat.WAV else _FLAC_SUBTYPES
        subtype = subtype or "PCM_16"
        if subtype not in allowed:
            raise InputError(f"{fmt.value} cannot hold {subtype!r} samples (use one of {', '.join(allowed)})")
        container = fmt.value.upper()
        if fmt is AudioFormat.FLAC and rate > 655350:
            raise InputError(f"FLAC cannot hold a {rate} Hz sample rate")
        frames = _to_pcm(frames, subtype)
    buf = io.BytesIO()
    try:
        with soundfile.SoundFile(buf, "w", rate, frames.shape[1], subtype, format=container) as sound:
            # In blocks: libsndfile 1.2.2's Vorbis encoder crashes on one large write (about a minute of stereo).
            for start in range(0, len(frames), _WRITE_BLOCK_FRAMES):
                sound.write(frames[start:start + _WRITE_BLOCK_FRAMES])
    except Exception as exc:  # noqa: BLE001 (libsndfile refuses unsupported combinations with LibsndfileError)
        raise InputError(f"cannot write {fmt.value} at {rate} Hz, {frames.shape[1]} channels: "
                         f"{one_line(exc)}") from None
    return buf.getvalue()


_AV_ENCODERS = {AudioFormat.MP3: ("mp3", "libmp3lame"), AudioFormat.OPUS: ("ogg", "libopus"),
                AudioFormat.M4A: ("ipod", "aac")}


# FFmpeg's default layout for each channel count.
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _encode_av(frames: np.ndarray, rate: int, fmt: AudioFormat, bitrate: int) -> bytes:
    import av  # noqa: PLC0415

    container_format, codec = _AV_ENCODERS[fmt]
    channels = frames.shape[1]
    buf = io.BytesIO()
    try:
        layout = av.AudioLayout(_LAYOUTS.get(channels, f"{channels}c"))
        with av.open(buf, mode="w", format=container_format) as out:
            stream = out.add_stream(codec, rate=rate, layout=layout)
            stream.bit_rate = bitrate
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(frames.T), format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
            # PyAV cuts the frame into the encoder's frame size (and converts the sample format) itself.
            for packet in stream.encode(frame):
                out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    except Exception as exc:  # noqa: BLE001 (FFmpeg refuses unsupported layouts or rates with av.FFmpegError)
        raise InputError(f"cannot encode {fmt.value} at {rate} Hz, {channels} channels, {bitrate // 1000} kbps: "
                         f"{one_line(exc)}") from None
    return buf.getvalue()


# --- description ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AudioInfo:
    """What an audio file declares, read from its header (no full decode)."""

    format: AudioFormat
    codec: str  # "pcm_16", "float_32", "flac", "mp3", "opus", "vorbis", "aac", ...
    rate: int
    channels: int
    seconds: float | None  # None when the header does not say (Ogg without decoding to its end)
    bitrate: int | None  # bits per second: declared (WAV, M4A), averaged over the frames (MP3), or None
    file_bytes: int

    def to_dict(self) -> dict:
        return {"format": self.format.value, "mime": self.format.mime, "codec": self.codec, "rate": self.rate,
                "channels": self.channels, "seconds": None if self.seconds is None else round(self.seconds, 3),
                "bitrate": self.bitrate, "file_bytes": self.file_bytes, "lossless": self.format.lossless}

    def describe(self) -> tuple[str, ...]:
        length = "unknown length" if self.seconds is None else f"{self.seconds:.1f} s"
        rate = f", {self.bitrate // 1000} kbps" if self.bitrate else ""
        chans = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        kind = "lossless" if self.format.lossless else "lossy"
        return (f"audio: {self.format.value.upper()} ({self.codec}, {kind}), {self.rate} Hz {chans}, "
                f"{length}{rate}",)


def audio_info(source: Path | bytes) -> AudioInfo:
    """The format, codec, rate, channels, duration and bit rate an audio file declares (its header is read and
    checked as ``decode_audio`` would, but no samples are decoded; budgets are not applied)."""
    handle, size, name = _open(source)
    with handle:
        fmt = _sniffed(handle, name)
        header = _header(handle, size, fmt, name)
        if fmt is AudioFormat.M4A:
            header = _mp4_info(handle, name)
    seconds = header.frames / header.rate if header.frames is not None else None
    bitrate = header.bitrate
    if bitrate is None and seconds:
        bitrate = int(size * 8 / seconds)
    return AudioInfo(fmt, header.codec, header.rate, header.channels, seconds, bitrate, size)


def _mp4_info(handle: BinaryIO, name: str) -> _Header:
    import av  # noqa: PLC0415

    handle.seek(0)
    try:
        with av.open(handle, mode="r", format="mp4") as container:
            if not container.streams.audio:
                raise InputError(f"{name}: M4A without an audio track")
            stream = container.streams.audio[0]
            codec = stream.codec_context
            rate = codec.sample_rate
            frames = int(stream.duration * stream.time_base * rate) if stream.duration and stream.time_base \
                else None
            return _Header(rate, codec.layout.nb_channels, frames, codec.name, codec.bit_rate or None)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 (FFmpeg's errors on a broken container)
        raise InputError(f"{name}: cannot read the M4A header ({one_line(exc)})") from None
