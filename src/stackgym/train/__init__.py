"""Training from traces (SPEC §7, seed 003): Tier 1 scorer, DPO, SFT, GRPO, audit.

Importing this package is cheap and needs none of the ``stackgym[train]``
extras; the modules that need torch, transformers or TRL import them when
used, through :mod:`stackgym.train.deps`, which says what to install.
"""

from stackgym.train.config import TrainConfig, load_config

__all__ = ["TrainConfig", "load_config"]
