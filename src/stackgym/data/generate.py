"""The synthetic SaaS + Stripe dataset, deterministic in its :class:`DatasetSpec`.

The original benchmark's data made every metric easy to fake (all usage in the
last 30 days, so churn was exactly 0). Ours is shaped so every metric needs
the right joins and filters:

* organizations follow one of five lifecycles (healthy, paying but idle, active
  but unpaying, churned, empty), so churn needs *both* usage and subscriptions,
  and orgs without users must be left out;
* usage spans 150 days, lapsed users only have old usage, and ~0.4 % of usage
  rows belong to deleted users;
* some users share a Stripe customer, some have none, and some customers have
  no user at all (Stripe-only);
* ~10 % of invoices are open and some open invoices are partly paid, so
  ``amount_paid`` must be filtered by ``status = 'paid'``;
* ``last_login_at`` and ``chat_sessions`` look like activity signals but are
  not the definition.

Every table draws from its own random stream, so changing one table's logic
never reshuffles the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stackgym.data.schema import table_schemas
from stackgym.data.spec import DatasetSpec

if TYPE_CHECKING:
    from stackgym.data.bugs import BugDiagnosis
    from stackgym.data.etl import EtlRun

SECOND = 1_000_000
DAY = 86_400 * SECOND

ORG_STATES = ("healthy", "paying_idle", "free_active", "churned", "empty")
ORG_STATE_WEIGHTS = (0.46, 0.12, 0.10, 0.24, 0.08)
NICKNAMES = ("starter", "growth", "team", "enterprise")
UNIT_AMOUNTS = {"starter": 2000, "growth": 5000, "team": 15000, "enterprise": 50000}
PRODUCT_NAMES = ("Starter", "Growth", "Team", "Enterprise", "API Add-on", "Support Plus")
FEATURE_KEYS = (
    "sso", "audit_log", "custom_models", "priority_support", "usage_alerts", "api_keys",
    "webhooks", "data_export", "team_roles", "fine_tuning", "batch_api", "analytics",
)  # fmt: skip
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "llama-3.1-70b", "mistral-large")
FIRST_NAMES = (
    "ada", "alan", "grace", "linus", "margaret", "ken", "barbara", "dennis", "edsger", "frances",
)  # fmt: skip
LAST_NAMES = (
    "lovelace", "turing", "hopper", "torvalds", "hamilton", "thompson", "liskov", "ritchie",
)  # fmt: skip
ORG_WORDS = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell", "cyberdyne",
    "soylent",
)  # fmt: skip
_ALPHABET = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)

Tables = dict[str, pa.Table]


def stripe_ids(rng: np.random.Generator, prefix: str, n: int, length: int = 14) -> pa.Array:
    """``n`` distinct Stripe-style ids such as ``cus_N4fQ2…``."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    width = len(head) + length
    while True:
        raw = np.empty((n, width), dtype=np.uint8)
        raw[:, : len(head)] = head
        raw[:, len(head) :] = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, length))]
        ids = pa.array(raw.view(f"S{width}").ravel(), type=pa.binary()).cast(pa.string())
        if pc.count_distinct(ids).as_py() == n:
            return ids


def _timestamps(anchor_us: int, days_ago: np.ndarray) -> np.ndarray:
    """Microsecond timestamps ``days_ago`` before the anchor, truncated to seconds."""
    micros = anchor_us - (np.asarray(days_ago) * DAY).astype(np.int64)
    return (micros // SECOND) * SECOND


def _table(name: str, columns: dict[str, object]) -> pa.Table:
    schema = table_schemas()[name].arrow_schema()
    arrays = []
    for field in schema:
        value = columns[field.name]
        if field.type == pa.timestamp("us"):
            arrays.append(pa.array(np.asarray(value, dtype="datetime64[us]"), type=field.type))
        elif isinstance(value, (pa.Array, pa.ChunkedArray)):
            arrays.append(value.cast(field.type))
        else:
            arrays.append(pa.array(value, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass
class _World:
    """Latent facts that tie the tables together (never written out)."""

    org_state: np.ndarray  # per org, index into ORG_STATES
    user_org: np.ndarray  # per user, org index
    user_activity: np.ndarray  # per user: 0 active, 1 lapsed, 2 never used
    user_customer: np.ndarray  # per user, customer index or -1
    customer_state: np.ndarray  # per customer, org state index or -1 (Stripe-only)


class _Generator:
    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.anchor_us = int((spec.anchor - datetime(1970, 1, 1)).total_seconds()) * SECOND
        self.counts = {name: t.rows_at(spec.scale) for name, t in table_schemas().items()}
        streams = np.random.SeedSequence(spec.seed).spawn(len(self.counts) + 1)
        self.rngs = {
            name: np.random.default_rng(stream)
            for name, stream in zip([*self.counts, "world"], streams, strict=True)
        }

    def run(self) -> Tables:
        tables: Tables = {}
        tables["products"] = self.products()
        tables["prices"] = self.prices(tables["products"])
        world = self.world()
        tables["organizations"] = self.organizations(world)
        tables["customers"] = self.customers(world)
        tables["users"] = self.users(world, tables["customers"])
        tables["subscriptions"] = self.subscriptions(world, tables)
        tables["invoices"] = self.invoices(tables)
        tables["payment_intents"] = self.payment_intents(tables["customers"])
        tables["features"] = self.features()
        tables["api_usage"] = self.api_usage(world)
        tables["chat_sessions"] = self.chat_sessions()
        # Stripe sets a subscription's created_at no later than its first invoice.
        tables["subscriptions"] = self._backdate_subscriptions(tables)
        return {name: tables[name] for name in self.counts}

    # -- latent world ---------------------------------------------------------

    def world(self) -> _World:
        rng = self.rngs["world"]
        n_org, n_user, n_cust = (self.counts[k] for k in ("organizations", "users", "customers"))
        org_state = rng.choice(len(ORG_STATES), size=n_org, p=ORG_STATE_WEIGHTS)
        nonempty = np.flatnonzero(org_state != ORG_STATES.index("empty"))
        if nonempty.size == 0:
            org_state[0] = 0
            nonempty = np.array([0])
        # one user per non-empty org first, the rest spread with a heavy tail
        first = nonempty[: min(n_user, nonempty.size)]
        weights = rng.lognormal(0.0, 0.8, size=nonempty.size)
        rest = rng.choice(nonempty, size=n_user - first.size, p=weights / weights.sum())
        user_org = rng.permutation(np.concatenate([first, rest]))

        state = org_state[user_org]
        engaged = np.isin(state, (0, 2))  # healthy, free_active
        draw = rng.random(n_user)
        activity = np.where(
            engaged,
            np.select([draw < 0.7, draw < 0.9], [0, 1], 2),
            np.where(draw < 0.75, 1, 2),
        )
        # an engaged org has at least one active user
        _, first_user = np.unique(user_org, return_index=True)
        activity[first_user[engaged[first_user]]] = 0

        user_customer = np.full(n_user, -1, dtype=np.int64)
        pool = rng.permutation(n_cust)
        taken = 0
        last_in_org: dict[int, int] = {}
        has_customer = rng.random(n_user) < 0.85
        shares = rng.random(n_user) < 0.18
        for user in range(n_user):
            if not has_customer[user]:
                continue
            org = int(user_org[user])
            if shares[user] and org in last_in_org:
                user_customer[user] = last_in_org[org]
            elif taken < n_cust:
                user_customer[user] = pool[taken]
                taken += 1
                last_in_org[org] = int(user_customer[user])
        customer_state = np.full(n_cust, -1, dtype=np.int64)
        mapped = user_customer >= 0
        customer_state[user_customer[mapped]] = state[mapped]
        return _World(org_state, user_org, activity, user_customer, customer_state)

    # -- Stripe catalogue -------------------------------------------------------

    def products(self) -> pa.Table:
        rng, n = self.rngs["products"], self.counts["products"]
        names = [
            PRODUCT_NAMES[i % len(PRODUCT_NAMES)]
            + ("" if i < len(PRODUCT_NAMES) else f" {i // len(PRODUCT_NAMES) + 1}")
            for i in range(n)
        ]
        return _table(
            "products",
            {
                "id": stripe_ids(rng, "prod_", n),
                "name": names,
                "active": [i % len(PRODUCT_NAMES) != len(PRODUCT_NAMES) - 1 for i in range(n)],
                "created_at": _timestamps(self.anchor_us, rng.uniform(700, 1100, n)),
            },
        )

    def prices(self, products: pa.Table) -> pa.Table:
        rng, n = self.rngs["prices"], self.counts["prices"]
        nick = [NICKNAMES[i % 4] for i in range(n)]
        product_ids = products["id"].to_pylist()
        return _table(
            "prices",
            {
                "id": stripe_ids(rng, "price_", n),
                "product_id": [product_ids[i % len(product_ids)] for i in range(n)],
                "nickname": nick,
                "unit_amount": [UNIT_AMOUNTS[k] for k in nick],
                "currency": ["usd"] * n,
                "billing_interval": ["month" if (i // 4) % 2 == 0 else "year" for i in range(n)],
                "created_at": _timestamps(self.anchor_us, rng.uniform(600, 700, n)),
            },
        )

    # -- app ----------------------------------------------------------------------

    def organizations(self, world: _World) -> pa.Table:
        rng, n = self.rngs["organizations"], self.counts["organizations"]
        words = rng.integers(0, len(ORG_WORDS), n)
        names = [f"{ORG_WORDS[w].title()} {i + 1}" for i, w in enumerate(words)]
        return _table(
            "organizations",
            {
                "id": np.arange(1, n + 1),
                "name": names,
                "created_at": _timestamps(self.anchor_us, rng.uniform(200, 900, n)),
            },
        )

    def customers(self, world: _World) -> pa.Table:
        rng, n = self.rngs["customers"], self.counts["customers"]
        first = rng.integers(0, len(FIRST_NAMES), n)
        last = rng.integers(0, len(LAST_NAMES), n)
        sources = rng.choice(["web", "sales", "partner", "api"], n, p=[0.5, 0.25, 0.1, 0.15])
        segments = rng.choice(["smb", "mid_market", "enterprise"], n, p=[0.6, 0.3, 0.1])
        return _table(
            "customers",
            {
                "id": stripe_ids(rng, "cus_", n),
                "name": [
                    f"{FIRST_NAMES[a].title()} {LAST_NAMES[b].title()}"
                    for a, b in zip(first, last, strict=True)
                ],
                "email": [
                    f"{FIRST_NAMES[a]}.{LAST_NAMES[b]}{i}@example.com"
                    for i, (a, b) in enumerate(zip(first, last, strict=True))
                ],
                "metadata": [
                    json.dumps({"source": s, "segment": g}, separators=(",", ":"))
                    for s, g in zip(sources, segments, strict=True)
                ],
                "created_at": _timestamps(self.anchor_us, rng.uniform(30, 800, n)),
            },
        )

    def users(self, world: _World, customers: pa.Table) -> pa.Table:
        rng, n = self.rngs["users"], self.counts["users"]
        created_days = rng.uniform(20, 700, n)
        order = np.argsort(-created_days, kind="stable")  # ids grow with creation time
        customer_ids = np.asarray(customers["id"].to_pylist(), dtype=object)
        stripe_customer = np.where(
            world.user_customer >= 0, customer_ids[np.maximum(world.user_customer, 0)], None
        )
        activity = world.user_activity
        draw = rng.random(n)
        login_days = np.where(
            activity == 0,
            np.where(draw < 0.6, rng.uniform(0, 29, n), rng.uniform(31, 200, n)),
            np.where(draw < 0.2, rng.uniform(0, 29, n), rng.uniform(31, 300, n)),
        )
        login_days = np.minimum(login_days, created_days)
        never = (activity == 2) & (rng.random(n) < 0.5)
        roles = rng.choice(["owner", "admin", "member", "viewer"], n, p=[0.1, 0.15, 0.6, 0.15])
        first = rng.integers(0, len(FIRST_NAMES), n)
        self.user_order = order  # user index -> row position, for usage/chat generation
        self.user_activity_by_id = activity[order]
        return _table(
            "users",
            {
                "id": np.arange(1, n + 1),
                "organization_id": world.user_org[order] + 1,
                "stripe_customer_id": stripe_customer[order].tolist(),
                "email": [f"{FIRST_NAMES[first[i]]}{k + 1}@corp.test" for k, i in enumerate(order)],
                "role": roles[order],
                "created_at": _timestamps(self.anchor_us, created_days[order]),
                "last_login_at": pa.array(
                    np.where(never[order], None, _timestamps(self.anchor_us, login_days[order])),
                    type=pa.timestamp("us"),
                    from_pandas=True,
                ),
            },
        )

    # -- Stripe billing ---------------------------------------------------------

    def subscriptions(self, world: _World, tables: Tables) -> pa.Table:
        rng, n = self.rngs["subscriptions"], self.counts["subscriptions"]
        n_cust = self.counts["customers"]
        mapped_weight = np.where(world.customer_state >= 0, 2.0, 1.0)
        extra = rng.choice(n_cust, size=max(0, n - n_cust), p=mapped_weight / mapped_weight.sum())
        customer = np.concatenate([np.arange(min(n, n_cust)), extra])
        state = world.customer_state[customer]
        statuses = np.array(["active", "trialing", "canceled", "past_due"])
        paying = np.isin(state, (0, 1))  # healthy, paying_idle
        unpaying = np.isin(state, (2, 3))  # free_active, churned
        # statuses: 0 active, 1 trialing, 2 canceled, 3 past_due
        status = np.select(
            [paying, unpaying],
            [
                rng.choice(4, n, p=[0.65, 0.07, 0.2, 0.08]),
                rng.choice(4, n, p=[0.0, 0.15, 0.6, 0.25]),
            ],
            rng.choice(4, n, p=[0.4, 0.1, 0.4, 0.1]),
        )
        # every paying org keeps at least one active subscription
        org_of_customer = np.full(n_cust, -1)
        mapped = world.user_customer >= 0
        org_of_customer[world.user_customer[mapped]] = world.user_org[mapped]
        sub_org = org_of_customer[customer]
        for org in np.unique(sub_org[paying]):
            rows = np.flatnonzero(sub_org == org)
            if not np.any(status[rows] == 0):
                status[rows[0]] = 0
        price_weights = np.array([0.35, 0.3, 0.25, 0.1])
        n_price = self.counts["prices"]
        price_nick = np.arange(n_price) % 4
        price_p = price_weights[price_nick] / price_weights[price_nick].sum()
        price_index = rng.choice(n_price, n, p=price_p)
        yearly = (np.arange(n_price) // 4) % 2 == 1
        period_days = np.where(yearly[price_index], 365, 30)
        live = status != 2
        start_days = np.where(live, rng.uniform(0, 1, n) * period_days, rng.uniform(30, 360, n))
        price_ids = np.asarray(tables["prices"]["id"].to_pylist(), dtype=object)
        customer_ids = np.asarray(tables["customers"]["id"].to_pylist(), dtype=object)
        self.sub_status = status
        self.sub_customer = customer
        self.sub_amount = np.array([UNIT_AMOUNTS[NICKNAMES[k]] for k in price_nick])[price_index]
        return _table(
            "subscriptions",
            {
                "id": stripe_ids(rng, "sub_", n),
                "customer_id": customer_ids[customer],
                "price_id": price_ids[price_index],
                "status": statuses[status],
                "current_period_start": _timestamps(self.anchor_us, start_days),
                "current_period_end": _timestamps(self.anchor_us, start_days - period_days),
                "cancel_at_period_end": (status == 0) & (rng.random(n) < 0.1),
                "created_at": _timestamps(self.anchor_us, start_days + rng.uniform(0, 300, n)),
            },
        )

    def invoices(self, tables: Tables) -> pa.Table:
        rng, n = self.rngs["invoices"], self.counts["invoices"]
        weight = np.array([3.0, 0.3, 1.5, 2.0])[self.sub_status]
        sub = rng.choice(self.sub_status.size, n, p=weight / weight.sum())
        days_ago = rng.uniform(0, 365, n)
        due = self.sub_amount[sub].astype(np.float64)
        prorated = rng.random(n) < 0.1
        due = np.where(prorated, np.round(due * rng.uniform(0.2, 1.0, n)), due).astype(np.int64)
        paid = rng.random(n) < 0.9
        partial = ~paid & (rng.random(n) < 0.2)
        amount_paid = np.where(
            paid, due, np.where(partial, np.round(due * rng.uniform(0.1, 0.9, n)), 0)
        ).astype(np.int64)
        order = np.argsort(-days_ago, kind="stable")
        sub_ids = np.asarray(tables["subscriptions"]["id"].to_pylist(), dtype=object)
        customer_ids = np.asarray(tables["customers"]["id"].to_pylist(), dtype=object)
        self.invoice_sub = sub[order]
        self.invoice_days = days_ago[order]
        return _table(
            "invoices",
            {
                "id": stripe_ids(rng, "in_", n),
                "customer_id": customer_ids[self.sub_customer[sub[order]]],
                "subscription_id": sub_ids[sub[order]],
                "amount_due": due[order],
                "amount_paid": amount_paid[order],
                "status": np.where(paid, "paid", "open")[order],
                "created_at": _timestamps(self.anchor_us, days_ago[order]),
            },
        )

    def _backdate_subscriptions(self, tables: Tables) -> pa.Table:
        subs = tables["subscriptions"]
        created = subs["created_at"].to_numpy().astype("datetime64[us]").astype(np.int64)
        first_invoice = np.full(created.size, np.iinfo(np.int64).max)
        np.minimum.at(
            first_invoice, self.invoice_sub, _timestamps(self.anchor_us, self.invoice_days)
        )
        rng = self.rngs["subscriptions"]
        lead = (rng.uniform(0, 20, created.size) * DAY).astype(np.int64) // SECOND * SECOND
        backdated = np.where(first_invoice < created, first_invoice - lead, created)
        created = np.minimum(created, backdated)
        index = subs.schema.get_field_index("created_at")
        return subs.set_column(
            index, "created_at", pa.array(created.astype("datetime64[us]"), type=pa.timestamp("us"))
        )

    def payment_intents(self, customers: pa.Table) -> pa.Table:
        rng, n = self.rngs["payment_intents"], self.counts["payment_intents"]
        customer_ids = np.asarray(customers["id"].to_pylist(), dtype=object)
        days_ago = np.sort(rng.uniform(0, 365, n))[::-1]
        return _table(
            "payment_intents",
            {
                "id": stripe_ids(rng, "pi_", n),
                "customer_id": customer_ids[rng.integers(0, customer_ids.size, n)],
                "amount": rng.choice(list(UNIT_AMOUNTS.values()), n),
                "currency": ["usd"] * n,
                "status": rng.choice(
                    ["succeeded", "requires_payment_method", "canceled", "processing"],
                    n,
                    p=[0.8, 0.1, 0.05, 0.05],
                ),
                "created_at": _timestamps(self.anchor_us, days_ago),
            },
        )

    def features(self) -> pa.Table:
        rng, n = self.rngs["features"], self.counts["features"]
        keys = [
            FEATURE_KEYS[i % len(FEATURE_KEYS)]
            + ("" if i < len(FEATURE_KEYS) else f"_{i // len(FEATURE_KEYS) + 1}")
            for i in range(n)
        ]
        return _table(
            "features",
            {
                "id": np.arange(1, n + 1),
                "key": keys,
                "enabled": rng.random(n) < 0.7,
                "created_at": _timestamps(self.anchor_us, rng.uniform(100, 600, n)),
            },
        )

    # -- usage --------------------------------------------------------------------

    def api_usage(self, world: _World) -> pa.Table:
        rng, n = self.rngs["api_usage"], self.counts["api_usage"]
        activity = self.user_activity_by_id  # by user id - 1
        users = np.flatnonzero(activity < 2)
        weights = rng.lognormal(0.0, 1.0, users.size)
        row_user = rng.choice(users, n, p=weights / weights.sum())
        lapsed = activity[row_user] == 1
        days_ago = np.where(lapsed, rng.uniform(31, 150, n), rng.uniform(0, 90, n))
        # each active user has at least one call in the last 30 days
        active_rows = np.flatnonzero(~lapsed)
        _, first = np.unique(row_user[active_rows], return_index=True)
        days_ago[active_rows[first]] = rng.uniform(0, 29, first.size)
        user_id = row_user + 1
        # calls from deleted users: their ids are no longer in `users`
        orphans = rng.random(n) < 0.004
        user_id[orphans] = self.counts["users"] + 1 + rng.integers(0, 50, int(orphans.sum()))
        order = np.argsort(-days_ago, kind="stable")
        model = pa.DictionaryArray.from_arrays(
            pa.array(rng.integers(0, len(MODELS), n)[order], type=pa.int8()), pa.array(MODELS)
        )
        return _table(
            "api_usage",
            {
                "id": np.arange(1, n + 1),
                "user_id": user_id[order],
                "model": model,
                "tokens": np.maximum(1, rng.lognormal(6.5, 0.8, n)).astype(np.int64)[order],
                "latency_ms": np.maximum(5, rng.lognormal(6.0, 0.6, n)).astype(np.int64)[order],
                "created_at": _timestamps(self.anchor_us, days_ago[order]),
            },
        )

    def chat_sessions(self) -> pa.Table:
        rng, n = self.rngs["chat_sessions"], self.counts["chat_sessions"]
        days_ago = np.sort(rng.uniform(0, 90, n))[::-1]
        model = pa.DictionaryArray.from_arrays(
            pa.array(rng.integers(0, len(MODELS), n), type=pa.int8()), pa.array(MODELS)
        )
        return _table(
            "chat_sessions",
            {
                "id": np.arange(1, n + 1),
                "user_id": rng.integers(1, self.counts["users"] + 1, n),
                "model": model,
                "message_count": rng.integers(1, 60, n),
                "duration_seconds": rng.integers(10, 3600, n),
                "created_at": _timestamps(self.anchor_us, days_ago),
            },
        )


@dataclass
class Snapshot:
    """Everything one spec generates: the tables, the ETL log and the bug's diagnosis."""

    tables: Tables
    etl_log: list[EtlRun]
    diagnosis: BugDiagnosis | None


def generate_snapshot(spec: DatasetSpec) -> Snapshot:
    """Generate ``spec`` in memory: drift applied, then the bug injected, then the ETL log."""
    from stackgym.data.bugs import inject_bug
    from stackgym.data.drift import apply_drift
    from stackgym.data.etl import generate_etl_log

    source = apply_drift(_Generator(spec).run(), spec.drift)
    tables, diagnosis = source, None
    if spec.bug != "none":
        tables, diagnosis = inject_bug(source, spec)
    return Snapshot(tables, generate_etl_log(spec, source, diagnosis), diagnosis)


def generate_tables(spec: DatasetSpec) -> Tables:
    """Generate the eleven tables for ``spec`` (drift applied, bug injected) in memory."""
    return generate_snapshot(spec).tables
