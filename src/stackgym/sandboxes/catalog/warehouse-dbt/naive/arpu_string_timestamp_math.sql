-- Naive: right logic, but subtracts an interval from a text timestamp.
-- Fails here with DuckDB's "No function matches ... '-(VARCHAR, INTERVAL)'";
-- passes where staging casts timestamps (warehouse-dbt-cast, -fair).
with active_users as (
    select distinct u.user_id, u.stripe_customer_id
    from {{ ref('stg_app_users') }} as u
    inner join {{ ref('stg_app_api_usage') }} as a on a.user_id = u.user_id
    where a.usage_created_at >= (
        select max(usage_created_at) from {{ ref('stg_app_api_usage') }}
    ) - interval 30 day
)

select round(sum(i.amount_paid_cents) / (select count(*) from active_users)) as value
from {{ ref('stg_stripe_invoices') }} as i
where
    i.invoice_status = 'paid'
    and i.customer_id in (select stripe_customer_id from active_users)
