"""The synthetic SaaS + Stripe dataset, its drift modes and its ground truth."""

from stackgym.data.cache import cache_root, dataset_for
from stackgym.data.dataset import Dataset, Manifest, generate_dataset
from stackgym.data.drift import apply_drift
from stackgym.data.generate import generate_tables
from stackgym.data.schema import TABLE_NAMES, TableSchema, table_schemas
from stackgym.data.spec import DEFAULT_ANCHOR, DRIFT_MODES, DatasetSpec
from stackgym.data.truth import MetricTask, Truth, compute_truth, metric_tasks

__all__ = [
    "DEFAULT_ANCHOR",
    "DRIFT_MODES",
    "TABLE_NAMES",
    "Dataset",
    "DatasetSpec",
    "Manifest",
    "MetricTask",
    "TableSchema",
    "Truth",
    "apply_drift",
    "cache_root",
    "compute_truth",
    "dataset_for",
    "generate_dataset",
    "generate_tables",
    "metric_tasks",
    "table_schemas",
]
