"""Library use: verify a folder under a newsroom policy, as `synthguard verify` does, and act on the lines.

    python examples/verify_folder.py FOLDER [POLICY.yaml]

Prints one line per file (desk action, verdict, file) and the count per action. Uses SYNTHGUARD_HOME for the
trust anchors and the ledger like the CLI; nothing is written (no JSONL, no audit entries).
"""

from __future__ import annotations

import sys
from pathlib import Path

from synthguard.core.home import Home
from synthguard.desk.batch import VerifySettings, verify
from synthguard.policy import load_policy

REPO = Path(__file__).resolve().parents[1]


def main(folder: Path, policy_path: Path) -> None:
    settings = VerifySettings(policy=load_policy(policy_path), home=Home.from_env().root)
    result = verify([folder], settings, audit=False)
    for line in result.lines:
        what = line.verdict.value if line.verdict else f"error: {line.error}"
        print(f"{line.action.value:13} {what:18} {line.file}")
    print(result.counts)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "policies" / "newsroom-default.yaml")
