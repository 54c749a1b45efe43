"""Library use, end to end: make an identity, sign a rendered image with its model metadata, verify it.

Run:  python examples/sign_and_verify.py /tmp/sg-example
(Uses $SYNTHGUARD_HOME like the CLI; creates a local identity there if there is none.)
"""

import sys
from pathlib import Path

from PIL import Image

from synthguard.core.home import Home
from synthguard.core.samples import procedural_image
from synthguard.detect import inspect_file
from synthguard.policy import DEFAULT_POLICY
from synthguard.provenance.identity import IdentityStore
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo
from synthguard.provenance.signing import SigningSession


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    home = Home.from_env().ensure()
    identity, created = IdentityStore(home).ensure()
    if created:
        print(f"created local identity {identity.common_name!r} (self-issued)")

    render = folder / "render.png"
    Image.fromarray(procedural_image(256, 256, seed=1)).save(render)
    spec = ManifestSpec(
        title="Example render",
        digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
        model=ModelInfo("example-model", "1.0", seed=1, parameters={"size": 256}),
    )
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        result = session.sign_file(render, folder / "render-signed.png", spec, overwrite=True)
        inspection = inspect_file(result.output, trust=DEFAULT_POLICY.trust_anchors(home), ledger=ledger)
    print(f"{inspection.file}: {inspection.verdict.label.value} "
          f"(provenance {inspection.provenance.state.value}, signed by {inspection.provenance.signer})")
    for reason in inspection.verdict.reasons:
        print(f"  - {reason}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "sg-example"))
