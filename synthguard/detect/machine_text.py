"""Machine-text detection without a watermark: the analytic Fast-DetectGPT criterion (Bao et al. 2024).

For a text x_1..x_n and a scoring model q, with the model sampling and scoring itself:

    score = (sum_t log q(x_t | x_<t) - sum_t mu_t) / sqrt(sum_t sigma_t^2)

where mu_t and sigma_t^2 are the mean and variance of log q(X | x_<t) for X drawn from q(. | x_<t). Text the model
(or a similar one) wrote sits in the high-likelihood part of each conditional distribution, so its score is high;
people choose less likely words. The threshold comes from human reference text (a chosen false-positive rate on
windows of it), and the measured rate is reported with every score: it is a statistical signal, never proof.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from synthguard.detect.signals import MACHINE_TEXT_MAX_TOKENS, MachineTextSignal
from synthguard.errors import InputError

MAX_SCORED_TOKENS = MACHINE_TEXT_MAX_TOKENS  # longer texts are scored on their first this-many tokens


def fast_detect_score(tm, ids: Sequence[int]) -> tuple[float, int]:
    """The criterion for token ids under the text model ``tm`` (scored in chunks of the model's context)."""
    import torch  # noqa: PLC0415 (a text model's forward pass: image inspections never import torch)

    ids = list(ids)[:MAX_SCORED_TOKENS]
    if len(ids) < 2:
        raise InputError("too little text to score (needs at least 2 tokens)")
    limit = getattr(tm.model.config, "n_positions", None) or getattr(tm.model.config, "max_position_embeddings",
                                                                      1024)
    chunk = max(2, min(int(limit), 1024))
    bos = tm.tokenizer.bos_token_id if tm.tokenizer.bos_token_id is not None else tm.tokenizer.eos_token_id
    ll = mu = var = 0.0
    count = 0
    for start in range(0, len(ids), chunk - 1):
        part = ids[start:start + chunk - 1]
        context = [bos] if start == 0 else [ids[start - 1]]
        inp = torch.tensor([context + part], device=tm.device)
        with torch.inference_mode():
            logits = tm.model(inp).logits[0, :-1].double()
        logp = torch.log_softmax(logits, -1)
        p = logp.exp()
        target = inp[0, 1:]
        ll += float(logp.gather(1, target[:, None]).sum())
        m = (p * logp).sum(-1)
        mu += float(m.sum())
        var += float(((p * logp * logp).sum(-1) - m * m).sum())
        count += len(part)
    return (ll - mu) / math.sqrt(max(var, 1e-12)), count


@dataclass
class MachineTextCalibration:
    """Human reference scores for one scoring model, and the threshold taken from them."""

    model: str
    threshold: float
    target_fpr: float
    measured_fpr: float  # on the held-out half of the reference windows
    windows: int
    corpus: str
    scores: list[float]  # all reference scores (for empirical p-values)

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate(tm, windows: Sequence[str], *, target_fpr: float = 0.01, corpus: str = "") -> MachineTextCalibration:
    """Threshold at ``target_fpr`` on half of the human windows; measured false-positive rate on the other half."""
    scores = [fast_detect_score(tm, tm.encode(w))[0] for w in windows]
    if len(scores) < 40:
        raise InputError(f"machine-text calibration needs at least 40 human windows, got {len(scores)}")
    fit, held = np.asarray(scores[0::2]), np.asarray(scores[1::2])
    threshold = float(np.quantile(fit, 1 - target_fpr, method="higher"))
    return MachineTextCalibration(tm.name, threshold, target_fpr, float((held >= threshold).mean()), len(scores),
                                  corpus, [float(s) for s in scores])


def score_machine_text(tm, text: str, calibration: MachineTextCalibration) -> MachineTextSignal:
    from synthguard.watermark.text.windows import encode_prefix  # noqa: PLC0415 (imports torch: texts only)

    ids = encode_prefix(tm, text, MAX_SCORED_TOKENS).ids.tolist()
    try:
        score, tokens = fast_detect_score(tm, ids)
    except InputError as exc:
        return MachineTextSignal(tm.name, skipped=str(exc))
    ref = np.asarray(calibration.scores)
    empirical = float((1 + (ref >= score).sum()) / (1 + len(ref)))
    return MachineTextSignal(tm.name, score, calibration.threshold, calibration.measured_fpr, empirical,
                             score >= calibration.threshold, tokens)
