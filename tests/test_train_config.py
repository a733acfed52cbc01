"""The one training config: validated at load, read by every tier, refused when it disagrees."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackgym.core.errors import ConfigError
from stackgym.train.config import load_config
from stackgym.train.deps import MissingDependency, require


def test_a_configured_rank_of_32_is_the_rank_that_gets_built(tmp_path: Path):
    from stackgym.train.tier1 import Tier1Trainer

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "out"), "tier1": {"rank": 32}}))
    trainer = Tier1Trainer(load_config(path))
    assert trainer.model.A.weight.shape[0] == 32
    assert trainer.model.B.weight.shape == (64, 32)


def test_parameter_counts_match_the_seed_log_for_ranks_32_and_8(tmp_path: Path):
    # Seed 003: input_dim=813 gives 28,193 parameters at rank 32 and 7,145 at rank 8.
    from stackgym.train.tier1 import make_model, parameter_count

    dims = ["embedder.hashing_dim=384", "features.hashed_dim=417"]
    rank32 = load_config(None, [*dims, "tier1.rank=32"])
    rank8 = load_config(None, [*dims, "tier1.rank=8"])
    assert parameter_count(make_model(rank32)) == 28_193
    assert parameter_count(make_model(rank8)) == 7_145


def test_unknown_setting_is_refused_with_its_name(tmp_path: Path):
    path = tmp_path / "train.yaml"
    path.write_text("tier1:\n  scorer_rank: 32\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "tier1.scorer_rank" in str(error.value)
    assert "unknown setting" in str(error.value)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("tier1.rank=0", "tier1.rank"),
        ("tier1.min_lr=0.1", "min_lr"),
        ("pairs.rejected_max_reward=0.5", "rejected_max_reward"),
        ("embedder.kind=word2vec", "embedder.kind"),
        ("tier2.min_pairs=-3", "tier2.min_pairs"),
    ],
)
def test_impossible_values_are_refused_naming_the_setting(override: str, named: str):
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert named in str(error.value)


def test_overrides_win_over_the_file_and_dotted_keys_reach_nested_sections(tmp_path: Path):
    path = tmp_path / "train.yaml"
    path.write_text("tier1:\n  rank: 16\n  lr: 0.01\n")
    config = load_config(path, ["tier1.rank=4", "pairs.min_gap=0.5"])
    assert (config.tier1.rank, config.tier1.lr, config.pairs.min_gap) == (4, 0.01, 0.5)


def test_a_missing_config_file_and_broken_yaml_are_clear_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tier1: [rank\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_a_missing_optional_dependency_says_what_to_install():
    with pytest.raises(MissingDependency) as error:
        require("stackgym_no_such_package", purpose="DPO training")
    assert "pip install 'stackgym[train]'" in str(error.value)
    assert "DPO training" in str(error.value)


def test_core_envs_and_cli_import_without_torch_or_trl():
    import subprocess
    import sys

    code = (
        "import sys, stackgym, stackgym.cli, stackgym.train, stackgym.train.agent, "
        "stackgym.train.experience, stackgym.train.pairs, stackgym.train.audit\n"
        "from stackgym.core.agents import agent_names\n"
        "assert 'scorer:…' in agent_names('stack_doctor')\n"
        "heavy = [m for m in ('torch', 'trl', 'transformers', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
