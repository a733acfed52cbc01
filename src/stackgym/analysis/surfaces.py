"""Tool use by layer, and which surfaces of a stack a run touched.

Envs report these per episode under fixed names (the metrics env does):
``reads_<layer>`` (reads of files or database objects of that layer),
``touched_app_surface`` and ``touched_warehouse_surface``; a run touching
both is a cross-layer traversal. Any env that reports them gets this
section; others do not.
"""

from __future__ import annotations

import numpy as np

from stackgym.analysis.aggregate import RunTable
from stackgym.analysis.compare import rate
from stackgym.analysis.summary import LayerReads, SurfaceRow, SurfaceSummary
from stackgym.sandboxes.manifest import LAYERS

READS_PREFIX = "reads_"
APP, WAREHOUSE = "touched_app_surface", "touched_warehouse_surface"
#: The layers of SPEC section 3, in the order reports list them; others follow, sorted.
LAYER_ORDER = LAYERS


def surface_summary(table: RunTable, realistic: str | None = None) -> SurfaceSummary | None:
    """Reads per layer and surface shares per condition (None if no run reports them)."""
    names = table.metric_names()
    seen = {n[len(READS_PREFIX) :] for n in names if n.startswith(READS_PREFIX)}
    has_surfaces = APP in names
    if not seen and not has_surfaces:
        return None
    layers = [layer for layer in LAYER_ORDER if layer in seen] + sorted(seen - set(LAYER_ORDER))
    reads_by_layer = {layer: table.metric(READS_PREFIX + layer) for layer in layers}
    app = table.metric(APP)
    warehouse = table.metric(WAREHOUSE)
    reported = table.completed & ~np.isnan(app) & ~np.isnan(warehouse)
    touched_app = reported & (np.nan_to_num(app) > 0)
    touched_warehouse = reported & (np.nan_to_num(warehouse) > 0)
    reads: list[LayerReads] = []
    surfaces: list[SurfaceRow] = []
    for c, condition in enumerate(table.conditions):
        in_condition = table.completed & (table.condition == c)
        runs = int(in_condition.sum())
        if not runs:
            continue
        if layers:
            # A run that does not report a layer read nothing of it.
            columns = {layer: np.nan_to_num(v[in_condition]) for layer, v in reads_by_layer.items()}
            reads.append(
                LayerReads(
                    condition=condition,
                    runs=runs,
                    mean_reads={layer: float(v.mean()) for layer, v in columns.items()},
                    share_reading={layer: float((v > 0).mean()) for layer, v in columns.items()},
                )
            )
        if has_surfaces:
            groups = [(None, in_condition)] + [
                (model, in_condition & (table.model == m)) for m, model in enumerate(table.models)
            ]
            for model, mask in groups:
                n = int((mask & reported).sum())
                if model is not None and not mask.any():
                    continue
                surfaces.append(
                    SurfaceRow(
                        condition=condition,
                        model=model,
                        runs=n,
                        app=rate(int((mask & touched_app).sum()), n),
                        warehouse=rate(int((mask & touched_warehouse).sum()), n),
                        both=rate(int((mask & touched_app & touched_warehouse).sum()), n),
                    )
                )
    return SurfaceSummary(layers=layers, reads=reads, surfaces=surfaces, realistic=realistic)
