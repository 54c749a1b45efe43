"""Human-written reference text that every machine has offline, for calibrating text tests.

- The docstrings of the Python standard library (read with ``ast`` from the installed sources, nothing imported):
  English prose written by people, several MB of it.
- The Python documentation's help topics (``pydoc_data``, the text behind ``help("if")``): reference prose.
- Any plain-text file the user names (in this project's benchmarks ``tinyshakespeare.txt``, the dataset of
  ``synthguard.core.datasets``).

Both are cut into windows of whole words, so a window re-tokenises the same way under any tokenizer.
"""

from __future__ import annotations

import ast
import random
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from synthguard.errors import InputError


def stdlib_docstrings(min_chars: int = 400) -> Iterator[str]:
    """Docstrings of the installed standard library, in sorted file order, at least ``min_chars`` long."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if any(part in ("test", "tests", "idlelib", "site-packages", "lib2to3") for part in path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= min_chars:
                    yield doc


def python_help_topics() -> list[str]:
    """The text of every topic of Python's interactive help (reference documentation written by people)."""
    from pydoc_data.topics import topics  # noqa: PLC0415

    return [topics[name] for name in sorted(topics)]


def word_windows(texts: Iterator[str] | list[str], words: int) -> Iterator[str]:
    """Consecutive, non-overlapping windows of ``words`` whitespace-separated words from each text."""
    for text in texts:
        tokens = text.split()
        for start in range(0, len(tokens) - words + 1, words):
            yield " ".join(tokens[start:start + words])


def load_corpus(source: str | Path, *, words: int, limit: int | None = None, seed: int = 0) -> list[str]:
    """Windows of human text: ``source`` is "stdlib-docstrings", "python-help" or a UTF-8 text file. With
    ``limit``, a seeded random sample of that many windows."""
    if str(source) == "stdlib-docstrings":
        windows = list(word_windows(stdlib_docstrings(), words))
    elif str(source) == "python-help":
        windows = list(word_windows(python_help_topics(), words))
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read as UTF-8 text ({exc})") from None
        windows = list(word_windows([text], words))
    if not windows:
        raise InputError(f"{source}: no window of {words} words")
    if limit is not None and limit < len(windows):
        windows = random.Random(seed).sample(windows, limit)
    return windows
