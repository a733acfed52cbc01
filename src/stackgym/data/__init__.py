"""The synthetic SaaS + Stripe dataset, its drift modes and its ground truth."""

from stackgym.data.bugs import BugDiagnosis, inject_bug
from stackgym.data.cache import cache_root, dataset_for
from stackgym.data.dataset import Dataset, Manifest, generate_dataset
from stackgym.data.drift import apply_drift
from stackgym.data.etl import EtlRun
from stackgym.data.generate import Snapshot, generate_snapshot, generate_tables
from stackgym.data.schema import TABLE_NAMES, TableSchema, table_schemas
from stackgym.data.spec import BUG_TYPES, DEFAULT_ANCHOR, DRIFT_MODES, DatasetSpec
from stackgym.data.truth import MetricTask, Truth, compute_truth, metric_tasks

__all__ = [
    "BUG_TYPES",
    "DEFAULT_ANCHOR",
    "DRIFT_MODES",
    "TABLE_NAMES",
    "BugDiagnosis",
    "Dataset",
    "DatasetSpec",
    "EtlRun",
    "Manifest",
    "MetricTask",
    "Snapshot",
    "TableSchema",
    "Truth",
    "apply_drift",
    "cache_root",
    "compute_truth",
    "dataset_for",
    "generate_dataset",
    "generate_snapshot",
    "generate_tables",
    "inject_bug",
    "metric_tasks",
    "table_schemas",
]
