"""Ground truth: cross-checked against independent SQL, and never degenerate."""

from __future__ import annotations

import duckdb
import pytest

from stackgym.data import DatasetSpec, dataset_for, metric_tasks

SEEDS = (0, 1, 2, 3, 4)
DRIFTS = ("none", "stripe-lag", "missing-mapping")

# An independent implementation of SPEC section 2, in SQL, written from the
# definitions and sharing no code with stackgym.data.truth.
ACTIVE = """
active AS (
  SELECT u.id, u.organization_id, u.stripe_customer_id
  FROM users u
  WHERE u.id IN (
    SELECT user_id FROM api_usage
    WHERE created_at >= (SELECT max(created_at) FROM api_usage) - INTERVAL 30 DAY
  )
)"""
PAID = "paid AS (SELECT customer_id, sum(amount_paid) AS total FROM invoices WHERE status = 'paid' GROUP BY 1)"

SQL = {
    "active_user_arpu": f"""
        WITH {ACTIVE}
        SELECT round(
          (SELECT coalesce(sum(amount_paid), 0) FROM invoices
           WHERE status = 'paid'
             AND customer_id IN (SELECT stripe_customer_id FROM active))
          / (SELECT count(*) FROM active))""",
    "org_churn_rate": f"""
        WITH {ACTIVE},
        org_users AS (SELECT * FROM users WHERE organization_id IN (SELECT id FROM organizations)),
        live AS (
          SELECT DISTINCT organization_id FROM org_users
          WHERE id IN (SELECT id FROM active)
             OR stripe_customer_id IN (
               SELECT customer_id FROM subscriptions WHERE status = 'active')
        )
        SELECT round(1 - (SELECT count(*) FROM live)
                     / (SELECT count(DISTINCT organization_id) FROM org_users), 4)""",
    "avg_org_ltv": f"""
        WITH {PAID},
        per_org AS (
          SELECT u.organization_id, sum(coalesce(p.total, 0)) AS ltv
          FROM users u LEFT JOIN paid p ON p.customer_id = u.stripe_customer_id
          WHERE u.organization_id IN (SELECT id FROM organizations)
          GROUP BY 1
        )
        SELECT round(avg(ltv)) FROM per_org""",
}


def sql_metrics(dataset) -> dict[str, float]:
    con = duckdb.connect()
    for name in ("users", "api_usage", "invoices", "subscriptions", "organizations"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{dataset.path(name)}')")
    return {task: float(con.execute(sql).fetchone()[0]) for task, sql in SQL.items()}


@pytest.mark.parametrize("drift", DRIFTS)
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_reference_truth_agrees_with_independent_sql(seed, drift):
    dataset = dataset_for(DatasetSpec(seed=seed, drift=drift))
    truth = dataset.truth().model_dump()
    tasks = metric_tasks()
    for task, value in sql_metrics(dataset).items():
        assert tasks[task].accepts(truth[task], value), (task, truth[task], value)


def test_reference_truth_agrees_with_sql_at_another_scale_and_anchor():
    dataset = dataset_for(DatasetSpec(seed=8, scale=0.3, anchor="2024-07-01"))
    truth = dataset.truth().model_dump()
    for task, value in sql_metrics(dataset).items():
        assert metric_tasks()[task].accepts(truth[task], value), task


# Plausible wrong answers: each must miss the truth by more than the tolerance.
NAIVE = {
    "active_user_arpu": {
        "counts unpaid invoices": """WITH {active} SELECT sum(amount_paid) / (SELECT count(*) FROM active)
            FROM invoices WHERE customer_id IN (SELECT stripe_customer_id FROM active)""",
        "uses now() instead of the latest usage": """
            WITH a AS (SELECT * FROM users WHERE id IN (SELECT user_id FROM api_usage
                       WHERE created_at >= now() - INTERVAL 30 DAY))
            SELECT coalesce((SELECT sum(amount_paid) FROM invoices WHERE status = 'paid'
              AND customer_id IN (SELECT stripe_customer_id FROM a)) / nullif((SELECT count(*) FROM a), 0), 0)""",
        "joins users to invoices (double counts shared customers)": """WITH {active}
            SELECT sum(i.amount_paid) / (SELECT count(*) FROM active) FROM active a
            JOIN invoices i ON i.customer_id = a.stripe_customer_id WHERE i.status = 'paid'""",
        "drops users without a customer from the denominator": """WITH {active}
            SELECT sum(amount_paid) / (SELECT count(*) FROM active WHERE stripe_customer_id IS NOT NULL)
            FROM invoices WHERE status = 'paid' AND customer_id IN (SELECT stripe_customer_id FROM active)""",
        "uses last_login_at for activity": """
            WITH a AS (SELECT * FROM users WHERE last_login_at >= (SELECT max(last_login_at) FROM users) - INTERVAL 30 DAY)
            SELECT (SELECT sum(amount_paid) FROM invoices WHERE status = 'paid'
              AND customer_id IN (SELECT stripe_customer_id FROM a)) / (SELECT count(*) FROM a)""",
    },
    "org_churn_rate": {
        "returns 0": "SELECT 0",
        "ignores subscriptions": """WITH {active}
            SELECT 1 - count(DISTINCT organization_id) / (SELECT count(DISTINCT organization_id) FROM users) FROM active""",
        "ignores usage": """SELECT 1 - count(DISTINCT organization_id) / (SELECT count(DISTINCT organization_id) FROM users)
            FROM users WHERE stripe_customer_id IN (SELECT customer_id FROM subscriptions WHERE status = 'active')""",
        "counts organizations without users": """WITH {active},
            live AS (SELECT DISTINCT organization_id FROM users WHERE id IN (SELECT id FROM active)
              OR stripe_customer_id IN (SELECT customer_id FROM subscriptions WHERE status = 'active'))
            SELECT 1 - (SELECT count(*) FROM live) / (SELECT count(*) FROM organizations)""",
        "treats trialing and past_due as active": """WITH {active},
            live AS (SELECT DISTINCT organization_id FROM users WHERE id IN (SELECT id FROM active)
              OR stripe_customer_id IN (SELECT customer_id FROM subscriptions WHERE status <> 'canceled'))
            SELECT 1 - (SELECT count(*) FROM live) / (SELECT count(DISTINCT organization_id) FROM users)""",
    },
    "avg_org_ltv": {
        "counts each customer once per org": """WITH {paid},
            per_org AS (SELECT organization_id, sum(coalesce(p.total, 0)) AS ltv FROM
              (SELECT DISTINCT organization_id, stripe_customer_id FROM users) u
              LEFT JOIN paid p ON p.customer_id = u.stripe_customer_id GROUP BY 1)
            SELECT avg(ltv) FROM per_org""",
        "counts unpaid invoices": """WITH per_org AS (SELECT u.organization_id, sum(coalesce(i.amount_paid, 0)) AS ltv
              FROM users u LEFT JOIN invoices i ON i.customer_id = u.stripe_customer_id GROUP BY 1)
            SELECT avg(ltv) FROM per_org""",
        "divides by all organizations": """WITH {paid}
            SELECT sum(coalesce(p.total, 0)) / (SELECT count(*) FROM organizations)
            FROM users u LEFT JOIN paid p ON p.customer_id = u.stripe_customer_id""",
        "plain sum of paid invoices per org count": """SELECT (SELECT sum(amount_paid) FROM invoices WHERE status = 'paid')
            / (SELECT count(DISTINCT organization_id) FROM users)""",
    },
}


@pytest.mark.parametrize("drift", DRIFTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_no_metric_is_degenerate_and_naive_answers_fail(seed, drift):
    dataset = dataset_for(DatasetSpec(seed=seed, drift=drift))
    truth = dataset.truth()
    assert 0.05 <= truth.org_churn_rate <= 0.6
    con = duckdb.connect()
    for name in ("users", "api_usage", "invoices", "subscriptions", "organizations"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{dataset.path(name)}')")
    counts = {
        t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("users", "invoices", "organizations", "api_usage")
    }
    tasks = metric_tasks()
    for task, answers in NAIVE.items():
        expected = getattr(truth, task)
        assert expected not in (0, *counts.values())
        for label, sql in answers.items():
            value = con.execute(sql.format(active=ACTIVE, paid=PAID)).fetchone()[0]
            assert not tasks[task].accepts(expected, float(value or 0)), (task, label, value)
