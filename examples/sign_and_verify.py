"""Library use, end to end: watermark and sign a rendered image with its model metadata, then verify it.

Run:  python examples/sign_and_verify.py /tmp/sg-example
(Uses $SYNTHGUARD_HOME like the CLI; creates a local identity there if there is none.)
"""

import sys
from pathlib import Path

from PIL import Image

import synthguard as sg


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    home = sg.Home.from_env().ensure()
    render = folder / "render.png"
    Image.fromarray(sg.procedural_image(256, 256, seed=1)).save(render)
    spec = sg.ManifestSpec(
        title="Example render",
        digital_source_type=sg.DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
        model=sg.ModelInfo("example-model", "1.0", seed=1, parameters={"size": 256}),
    )
    with sg.Stamper.from_home(home) as stamper:
        result = stamper.stamp_file(render, folder / "render-signed.png", spec, overwrite=True)
    with sg.InspectionContext.build(home) as context:
        inspection = sg.inspect_file(result.signed.output, context)
    print(f"{inspection.file}: {inspection.verdict.label.value} "
          f"(provenance {inspection.provenance.state.value}, signed by {inspection.provenance.signer})")
    for reason in inspection.verdict.reasons:
        print(f"  - {reason}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "sg-example"))
