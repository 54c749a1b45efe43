"""A small chat model for the tests: the built-in Shakespeare GPT-2 (weights copied, not changed) with ChatML's turn
tokens added and a chat template like SmolLM2-Instruct's (a default system message, ``<|im_end|>`` ending each turn).
It never learned to end a turn, so tests that need an end force it; its text re-tokenises like the built-in model's,
so its watermark is detected from the text."""

from __future__ import annotations

import torch

# SmolLM2-Instruct's template, with a default system message of its own.
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a tiny test assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def tiny_chat_model(folder):
    """The chat model saved to ``folder`` and loaded the way users load models."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from synthguard.models.text import BUILTIN_TEXT_FOLDER, load_text_model

    tokenizer = AutoTokenizer.from_pretrained(BUILTIN_TEXT_FOLDER)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(BUILTIN_TEXT_FOLDER)
    torch.manual_seed(0)  # the two new embedding rows are drawn around the others' mean
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_text_model(str(folder), device="cpu")
