"""The one exception root of SynthGuard and its few meaningful subclasses.

Each class carries its exit code, so a script can tell a bad input from a missing key from a failed signature
without parsing messages. Messages are one line, name the bad value, and never contain secret material.

Library messages name no command-line flag: a Python caller has none. Where a way out exists, the error carries a
``hint`` (one of ``Hint``) naming it as a concept; the CLI words it as its own flag ("use --force to replace it"),
and a Python caller reads ``exc.hint`` to find the keyword argument that does the same.
"""

from __future__ import annotations

from enum import Enum


class Hint(str, Enum):
    """The way out of an error, as a concept (the CLI maps each one to its flag)."""

    OVERWRITE = "overwrite"  # replace an existing output (Python: overwrite=True)
    RESUME_OR_OVERWRITE = "resume-or-overwrite"  # continue the earlier run, or start over
    NO_WATERMARK = "no-watermark"  # sign without a watermark (Python: watermarker=None)
    NEEDS_MODEL = "needs-model"  # give a model (a folder or a hub id)
    NEEDS_VAE = "needs-vae"  # only the VAE backend can do this
    NEEDS_DATA = "needs-data"  # give the dataset's path, or put it in the dataset cache
    INSTALL_EXTRA = "install-extra"  # an optional dependency is missing (the message names the extra)
    NEEDS_IDENTITY = "needs-identity"  # make a signing identity first (Python: IdentityStore(home).init)


class SynthGuardError(Exception):
    """Root of every error SynthGuard raises on purpose."""

    exit_code = 1

    def __init__(self, message: str = "", *, hint: Hint | None = None):
        super().__init__(message)
        self.hint = hint


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


def missing_extra(package: str, extra: str, purpose: str) -> InputError:
    """The error for an optional dependency that is not installed, naming the extra that brings it."""
    return InputError(f"{purpose} needs {package}, which is not installed: pip install 'synthguard[{extra}]'",
                      hint=Hint.INSTALL_EXTRA)
