"""End to end on generated audio: clips of the built-in chorale model written by ``generate_audio`` into a fresh home
(watermark, signed manifest, ledger record), then re-posted copies (an attack from ``watermark.audio.attacks``,
written as a new WAV: no manifest) checked by ``inspect_file`` as a newsroom would, with that home's ledger.

Per attack: how often the watermark's payload is the one the ledger holds for the clip, how often the clip's
manifest comes back from the ledger through that payload (``ledger_match == "soft-binding"``, still trusted), and
the verdicts given. The originals (``none``) are read as written: manifest embedded.

Run:  python -m synthguard.bench.audio_e2e_bench -n 50 --seconds 8
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ATTACKS = ("none", "mp3-128k", "opus-48k", "excerpt-4s-16k", "mp3-128k+excerpt-4s-16k")


@dataclass
class AttackTally:
    """What verification said about one attack's copies."""

    clips: int = 0
    payload: int = 0  # the mark read, with the clip's own payload
    manifest: int = 0  # the clip's manifest, trusted: embedded (none) or recovered through the payload
    verdicts: collections.Counter = field(default_factory=collections.Counter)
    seconds: float = 0.0  # inspection time

    def row(self, name: str) -> str:
        verdicts = ", ".join(f"{label} {count}" for label, count in sorted(self.verdicts.items()))
        return (f"{name:<26} {self.clips:>5} {self.payload / self.clips:>8.0%} {self.manifest / self.clips:>9.0%}"
                f"   {verdicts}  ({self.seconds / self.clips:.2f} s per file)")


def run(n: int = 50, seconds: float = 8.0, seed: int = 0, attacks: tuple[str, ...] = ATTACKS,
        log=print) -> dict[str, AttackTally]:
    """Generate ``n`` clips (seeds ``seed`` .. ``seed + n - 1``) and verify every attack's copy of each."""
    from synthguard.core.audio import AudioFormat, decode_audio, encode_audio  # noqa: PLC0415
    from synthguard.core.home import Home  # noqa: PLC0415
    from synthguard.detect.context import InspectionContext, inspect_file  # noqa: PLC0415
    from synthguard.generate.audio import AudioRequest, generate_audio  # noqa: PLC0415
    from synthguard.provenance.reading import ProvenanceState  # noqa: PLC0415
    from synthguard.watermark.audio.attacks import ATTACKS as SUITE  # noqa: PLC0415

    unknown = [a for a in attacks if a not in SUITE]
    if unknown:
        raise SystemExit(f"unknown attack(s) {unknown}; known: {', '.join(SUITE)}")
    tallies = {name: AttackTally() for name in attacks}
    with tempfile.TemporaryDirectory(prefix="synthguard-audio-e2e-") as tmp:
        home = Home(Path(tmp) / "home").ensure()
        start = time.perf_counter()
        report = generate_audio(AudioRequest(output_dir=Path(tmp) / "clips", n=n, seed=seed, seconds=seconds), home)
        log(f"generated {n} clips of {seconds:g} s in {time.perf_counter() - start:.0f} s")
        reposts = Path(tmp) / "reposts"
        reposts.mkdir()
        with InspectionContext.build(home) as context:
            for i, clip in enumerate(report.clips):
                original = clip.stamp.signed.output
                decoded = decode_audio(original)
                samples = decoded.samples[:, 0] if decoded.channels == 1 else decoded.samples
                for name in attacks:
                    if name == "none":
                        path = original
                    else:
                        attacked, rate = SUITE[name](samples, decoded.rate)
                        path = reposts / f"{original.stem}-{name}.wav"
                        path.write_bytes(encode_audio(attacked, rate, AudioFormat.WAV))
                    began = time.perf_counter()
                    found = inspect_file(path, context)
                    tally = tallies[name]
                    tally.seconds += time.perf_counter() - began
                    tally.clips += 1
                    mark = found.watermark
                    if mark is not None and mark.detected and mark.payload == clip.stamp.payload.hex():
                        tally.payload += 1
                    provenance = found.provenance
                    expected_match = None if name == "none" else "soft-binding"
                    if (provenance.state is ProvenanceState.TRUSTED and provenance.ledger_match == expected_match
                            and provenance.manifest_label == clip.stamp.signed.manifest_label):
                        tally.manifest += 1
                    tally.verdicts[found.verdict.label.value] += 1
                log(f"clip {i + 1}/{n} checked")
    return tallies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50, help="generated clips (default 50)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each clip (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attack", action="append", help=f"only these attacks (default: {', '.join(ATTACKS)})")
    args = parser.parse_args(argv)
    tallies = run(n=args.n, seconds=args.seconds, seed=args.seed, attacks=tuple(args.attack or ATTACKS),
                  log=lambda line: print(line, flush=True))
    print(f"{'attack':<26} {'clips':>5} {'payload':>8} {'manifest':>9}   verdicts")
    for name, tally in tallies.items():
        print(tally.row(name))
    print("payload: the mark read with the clip's own payload; manifest: the clip's signed manifest, trusted, read "
          "embedded (none) or recovered from the ledger through the payload (the attacked copies carry none)")


if __name__ == "__main__":
    main()
