"""Edits an adversary (or an ordinary editor) makes to a text: word deletion, word substitution, and pasting the
text into a longer human document. Every attack is seeded."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

_WORD = re.compile(r"\S+")


def delete_words(text: str, fraction: float, seed: int) -> str:
    """Remove ``fraction`` of the words, chosen at random."""
    words = text.split()
    rng = random.Random(seed)
    drop = set(rng.sample(range(len(words)), int(round(fraction * len(words))))) if words else set()
    return " ".join(w for i, w in enumerate(words) if i not in drop)


def substitute_words(text: str, fraction: float, seed: int,
                     proposer: Callable[[list[str], list[int]], list[str]]) -> str:
    """Replace ``fraction`` of the words, chosen at random, by what ``proposer(words, positions)`` offers."""
    words = text.split()
    if not words:
        return text
    rng = random.Random(seed)
    positions = sorted(rng.sample(range(len(words)), int(round(fraction * len(words)))))
    if not positions:
        return " ".join(words)
    for pos, new in zip(positions, proposer(words, positions), strict=True):
        words[pos] = new
    return " ".join(words)


def word_list_proposer(vocabulary: Sequence[str], seed: int) -> Callable[[list[str], list[int]], list[str]]:
    """Proposals drawn at random from a word list (keeping the replaced word's trailing punctuation)."""
    rng = random.Random(seed)

    def propose(words: list[str], positions: list[int]) -> list[str]:
        out = []
        for pos in positions:
            tail = re.search(r"[^\w]*$", words[pos]).group(0)
            out.append(rng.choice(vocabulary) + tail)
        return out

    return propose


def lm_proposer(tm) -> Callable[[list[str], list[int]], list[str]]:
    """A language model's own proposals: for each chosen word, the model's most likely word at that point of the
    text (one forward pass over the text), other than the word itself; the paraphrase-by-model attack."""
    import torch  # noqa: PLC0415

    def propose(words: list[str], positions: list[int]) -> list[str]:
        text = " ".join(words)
        starts, at = [], 0
        for w in words:
            starts.append(at)
            at += len(w) + 1
        ids, offsets = tm.encode_with_offsets(text)
        bos = tm.tokenizer.bos_token_id if tm.tokenizer.bos_token_id is not None else tm.tokenizer.eos_token_id
        with torch.inference_mode():
            logits = tm.model(torch.tensor([[bos] + ids[:1023]], device=tm.device)).logits[0]
        token_at = {}
        for t, (s, _) in enumerate(offsets or []):
            token_at.setdefault(s, t)
            if text[s:s + 1] == " ":
                token_at.setdefault(s + 1, t)  # the token carries the word's leading space (" city")
        out = []
        for pos in positions:
            original = words[pos]
            t = token_at.get(starts[pos])
            choice = original
            if t is not None and t < logits.shape[0]:
                for token in logits[t].topk(50).indices.tolist():
                    piece = tm.tokenizer.decode([token]).strip()
                    if piece and piece.isprintable() and piece.lower() != original.lower().strip(".,;:!?"):
                        choice = piece
                        break
            out.append(choice)
        return out

    return propose


def words_changed(original: str, attacked: str) -> float:
    """The share of the original's words that an attack removed or replaced (position by position for
    substitutions, by count for deletions)."""
    a, b = original.split(), attacked.split()
    if not a:
        return 0.0
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) / len(a)
    return 1 - len(b) / len(a)


def insert_into(human_before: str, marked: str, human_after: str) -> tuple[str, tuple[int, int]]:
    """``marked`` pasted between two human passages; returns the document and the marked span's characters."""
    start = len(human_before) + 1 if human_before else 0
    doc = (human_before + "\n" if human_before else "") + marked + ("\n" + human_after if human_after else "")
    return doc, (start, start + len(marked))
