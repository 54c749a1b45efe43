"""Fixtures of the text watermark tests: one tiny seeded language model, built once for all of them."""

from __future__ import annotations

import pytest
import torch
from helpers.tiny_models import tiny_text_model


@pytest.fixture(scope="session")
def tm(tmp_path_factory):
    torch.set_num_threads(1)
    return tiny_text_model(tmp_path_factory.mktemp("tiny-lm"))
