"""The one exception root of SynthGuard and its few meaningful subclasses.

The CLI maps each class to an exit code (see ``synthguard.cli``), so a script can tell a bad input from a missing
key from a failed signature without parsing messages. Messages are one line, name the bad value, and never contain
secret material.
"""

from __future__ import annotations


class SynthGuardError(Exception):
    """Root of every error SynthGuard raises on purpose."""

    exit_code = 1


class InputError(SynthGuardError):
    """The input file or value is unusable: missing, empty, truncated, corrupt, hostile or of an unsupported type."""

    exit_code = 2


class IdentityError(SynthGuardError):
    """A signing identity or trust anchor is missing, malformed or does not sign."""

    exit_code = 3


class ProvenanceError(SynthGuardError):
    """Signing or reading a C2PA manifest failed for a reason other than the input itself."""

    exit_code = 4


class WatermarkError(SynthGuardError):
    """A watermark could not be embedded or decoded (for example, an image too small to carry it)."""

    exit_code = 5


class LedgerError(SynthGuardError):
    """The local ledger could not be opened, read or written."""

    exit_code = 6


def one_line(exc: BaseException) -> str:
    """A library's (possibly multi-line) error message as one line, for messages that wrap it."""
    return " ".join(str(exc).split())
