"""Where SynthGuard keeps its state: keys, trust anchors and the ledger.

``SYNTHGUARD_HOME`` (default ``~/.synthguard``) holds::

    keys/       the signing identity: chain.pem (public), signing-key.pem (mode 0600)
    trust/      extra trust anchors (PEM) the user added, and roots of earlier local identities
    ledger.sqlite
    audit.sqlite  the append-only audit log of verifications and human reviews
    ledger-tokens.json  hashes of the bearer tokens `synthguard ledger serve` accepts (mode 0600)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        value = os.environ.get("SYNTHGUARD_HOME")
        return cls(Path(value).expanduser() if value else Path.home() / ".synthguard")

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def trust_dir(self) -> Path:
        return self.root / "trust"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.sqlite"

    @property
    def ledger_tokens_path(self) -> Path:
        return self.root / "ledger-tokens.json"

    def ensure(self) -> Home:
        """Create the folders (owner-only) if they are missing."""
        for folder in (self.root, self.keys_dir, self.trust_dir):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self
