"""A policy applied to the signals: whose signatures count as trusted, who may vouch for a capture, what a declared
source type means, when a watermark counts as found. ``synthguard.policy`` holds the rules as data; this is the one
module of ``detect`` that reads them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from pathlib import Path

from synthguard.core.home import Home
from synthguard.detect.fusion import CAPTURE_NOT_VOUCHED, capture_out_of_scope, declares_capture
from synthguard.detect.signals import (
    PayloadWatermarkSignal,
    TextWatermarkSignal,
    WatermarkSignal,
    source_type_code,
)
from synthguard.policy import DEFAULT_POLICY, Policy
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.reading import ProvenanceSignal, ProvenanceState
from synthguard.provenance.trustlist import TrustListKind, conforming_products, installed_products, trust_list


def in_force(policy: Policy | None) -> Policy:
    """The policy an inspection runs under: the given one, else the default (trust this machine's identity and
    the anchors added to its home)."""
    return DEFAULT_POLICY if policy is None else policy


def trust_anchors(policy: Policy, home: Home, extra: tuple[Path, ...] = ()) -> TrustAnchors:
    """The roots this policy trusts on this home (the C2PA Trust List in force on it, when the policy counts it),
    and ``extra`` PEM files; time-stamps are checked against the C2PA TSA Trust List in force.

    The Conforming Products List in force is read here only when the home has one installed (it is then compared
    with the shipped snapshot); otherwise the anchors carry None, and the shipped snapshot is parsed on the first
    manifest that needs it (an inspection of files without one never pays for it)."""
    listed = trust_list(home, TrustListKind.CLAIM_SIGNERS) if policy.trust.c2pa_trust_list else None
    products = conforming_products(home) if installed_products(home) is not None else None
    return TrustAnchors.from_home(home, include_own=policy.trust.own_identity, include_added=policy.trust.home_anchors,
                                  extra=policy.anchor_files() + tuple(extra), trust_list=listed,
                                  tsa_list=trust_list(home, TrustListKind.TIME_STAMPS), products=products)


def _named(patterns: tuple[str, ...], signer: str | None, issuer: str | None) -> bool:
    names = [n for n in (signer, issuer) if n]
    return any(fnmatch.fnmatchcase(n.lower(), pattern.lower()) for n in names for pattern in patterns)


def signer_allowed(policy: Policy, signer: str | None, issuer: str | None) -> bool:
    """Does the signer (or its issuer) match the policy's list of signers (any, when the list is empty)?"""
    return not policy.trust.signers or _named(policy.trust.signers, signer, issuer)


def capture_signer_allowed(policy: Policy, signer: str | None, issuer: str | None) -> bool:
    """May this signer vouch for a capture: does it (or its issuer) match ``trust.capture_signers`` (none may, when
    the list is empty)? The same matching as ``signer_allowed``."""
    return _named(policy.trust.capture_signers, signer, issuer)


def apply_to_provenance(policy: Policy, provenance: ProvenanceSignal) -> ProvenanceSignal:
    """The provenance as this policy reads it: a trusted signer not on its list counts as untrusted, the AI flag
    follows its source types, and a capture claim from a trusted signer the policy does not name as a capture source,
    or one its C2PA Conforming Products entry may not make, is marked (``CAPTURE_NOT_VOUCHED`` among its
    informational codes: the manifest stays trusted and intact, its capture claim settles nothing)."""
    p = provenance
    if p.state is ProvenanceState.TRUSTED and not signer_allowed(policy, p.signer, p.issuer):
        p = replace(p, state=ProvenanceState.VALID, failures=(*p.failures, "policy.signerNotListed"))
    declared = {source_type_code(t) for t in (p.digital_source_type, *(a.digital_source_type for a in p.actions))
                if t}
    if declared:
        p = replace(p, ai_generated=bool(declared & set(policy.labeling.ai_source_types)))
    if (p.state is ProvenanceState.TRUSTED and declares_capture(p)
            and (not capture_signer_allowed(policy, p.signer, p.issuer) or capture_out_of_scope(p))):
        p = replace(p, informational=(*p.informational, CAPTURE_NOT_VOUCHED))  # a note on the claim, not a failure
    return p


def apply_to_watermark(policy: Policy, watermark: WatermarkSignal | None) -> WatermarkSignal | None:
    """A watermark whose p-value is not within this policy's bound (images and audio: below it; texts: at or below
    it) counts as not found."""
    w, bounds = watermark, policy.detection
    if isinstance(w, TextWatermarkSignal) and w.detected and w.p_value > bounds.text_watermark_max_p_value:
        return replace(w, detected=False, ai_declared=None)
    if isinstance(w, PayloadWatermarkSignal) and w.detected and w.p_value >= bounds.watermark_max_p_value:
        return replace(w, detected=False, payload=None, ai_declared=None, bit_errors=None)
    return w
