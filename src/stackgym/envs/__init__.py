"""Built-in environments and their baseline agents, registered by import path.

Each environment lives in its own folder (``models.py``, ``env.py``,
``rubric.py``, ``baselines.py`` and its data); registering it here costs no
import until it is made.
"""
