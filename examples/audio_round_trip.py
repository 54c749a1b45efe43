"""Audio, end to end: generate a clip with the built-in chorale model (watermarked, signed, in the ledger), re-post
it as a 128 kbps MP3 (which drops the manifest) and verify both: the MP3's manifest comes back from the ledger
through the watermark's payload.

Run:  python examples/audio_round_trip.py /tmp/sg-audio
(Uses $SYNTHGUARD_HOME like the CLI; creates a local identity there if there is none.)
"""

import sys
from pathlib import Path

import synthguard as sg
from synthguard.core.audio import AudioFormat, decode_audio, encode_audio


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    home = sg.Home.from_env().ensure()
    request = sg.AudioRequest(output_dir=folder, n=1, seed=3, seconds=8.0, prompt="G major: G4 A4 B4:2",
                              overwrite=True)
    clip = sg.generate_audio(request, home).clips[0]
    original = clip.stamp.signed.output
    decoded = decode_audio(original)
    repost = folder / "reposted.mp3"
    repost.write_bytes(encode_audio(decoded.samples, decoded.rate, AudioFormat.MP3, bitrate=128_000))
    with sg.InspectionContext.build(home) as context:
        for path in (original, repost):
            inspection = sg.inspect_file(path, context)
            provenance, mark = inspection.provenance, inspection.watermark
            source = f", from the ledger by {provenance.ledger_match}" if provenance.ledger_match else ""
            found = f"found, p={mark.p_value:.1e}" if mark is not None and mark.detected else "not found"
            print(f"{path.name}: {inspection.verdict.label.value} (provenance {provenance.state.value}{source}; "
                  f"watermark {found})")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "sg-audio"))
