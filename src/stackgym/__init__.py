"""stackgym: build, run, measure and train LLM agents on data-stack troubleshooting.

>>> import stackgym
>>> env = stackgym.make("stack_doctor", mode="blind_diagnosis")
>>> observation, info = env.reset(seed=0)
"""

from stackgym.core.registry import make, register, registry
from stackgym.version import __version__

__all__ = ["__version__", "make", "register", "registry"]
