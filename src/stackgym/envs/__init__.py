"""Built-in environments, one subpackage each.

Each subpackage (``models.py``, ``env.py``, ``rubric.py``, ``baselines.py`` and
its data) registers itself in its ``__init__`` with import-path strings only,
so listing environments imports nothing heavy. Importing this package imports
every subpackage's ``__init__``.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")
