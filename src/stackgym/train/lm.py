"""Causal language models for DPO, SFT and GRPO: any local Hugging Face model, or ``tiny``.

``model.name: tiny`` builds, offline, a small Llama-architecture model from a
config (``tiny_layers``, ``tiny_hidden``, ``tiny_heads``) with a byte-level
BPE tokenizer trained with ``tokenizers`` on the texts of the traces. It is
what the tests and the offline demo train: big enough to show each trainer
works end to end and lowers its loss, small enough for a CPU. Any other name
is loaded with ``from_pretrained(name, local_files_only=True)``: a path, or a
model already in the local Hugging Face cache (nothing is downloaded).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stackgym.core.errors import ConfigError
from stackgym.train.config import ModelConfig
from stackgym.train.deps import require

#: The chat template of tiny models (and of local models that have none).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, with our chat template."""
    tokenizers = require("tokenizers", purpose="the tiny model's tokenizer")
    transformers = require("transformers", purpose="the tiny model's tokenizer")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<|pad|>", eos_token="<|end|>", bos_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny(config: ModelConfig, texts: Iterable[str], folder: Path) -> tuple[Any, Any]:
    """A tiny Llama and its tokenizer, built once per corpus and config and saved in ``folder``."""
    transformers = require("transformers", purpose="the tiny model")
    torch = require("torch", purpose="the tiny model")
    texts = list(texts)
    digest = hashlib.sha256(
        (config.model_dump_json() + "\x1f".join(texts[:2_000])).encode()
    ).hexdigest()[:16]
    stamp = folder / "tiny.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("digest") == digest:
        return load_model(str(folder))
    tokenizer = train_tokenizer(texts, config.tiny_vocab)
    torch.manual_seed(0)
    model_config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.tiny_hidden,
        intermediate_size=config.tiny_hidden * 2,
        num_hidden_layers=config.tiny_layers,
        num_attention_heads=config.tiny_heads,
        num_key_value_heads=config.tiny_heads,
        max_position_embeddings=max(config.max_length, 64) * 2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = transformers.LlamaForCausalLM(model_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    stamp.write_text(json.dumps({"digest": digest, "config": config.model_dump()}))
    # Loaded back from disk so the model knows its path (TRL builds reference models from it).
    return load_model(str(folder))


def load_model(name: str) -> tuple[Any, Any]:
    """A local causal LM and its tokenizer (never downloaded)."""
    transformers = require("transformers", purpose="loading a language model")
    torch = require("torch", purpose="loading a language model")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, local_files_only=True)
        # float32 weights whatever the checkpoint holds: bf16 is the trainer's autocast, and
        # updates of lr 1e-5 to bf16 weights would mostly round away.
        model = transformers.AutoModelForCausalLM.from_pretrained(
            name, local_files_only=True, dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot load the model {name!r} offline: {exc}",
            "name a local folder with a Hugging Face causal LM (config.json, weights, "
            "tokenizer), or set model.name: tiny to build a small one from the traces",
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHAT_TEMPLATE
    return model, tokenizer


def model_for(config: ModelConfig, texts: Iterable[str], folder: Path) -> tuple[Any, Any]:
    """The model ``config`` names: ``tiny`` (built in ``folder``) or a local model."""
    if config.name == "tiny":
        return build_tiny(config, texts, folder)
    return load_model(config.name)


def corpus_texts(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every message text of chat rows (what the tiny tokenizer learns from)."""
    texts = []
    for row in rows:
        for key in ("prompt", "chosen", "rejected", "completion"):
            for message in row.get(key) or ():
                texts.append(message["content"])
    return texts
