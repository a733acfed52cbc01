-- Oracle: active-user ARPU in cents. Staging passes timestamps through as
-- ISO-8601 text, so they are cast before any date arithmetic.
with usage as (
    select user_id, cast(usage_created_at as timestamp) as used_at
    from {{ ref('stg_app_api_usage') }}
),

active_users as (
    select distinct u.user_id, u.stripe_customer_id
    from {{ ref('stg_app_users') }} as u
    inner join usage on usage.user_id = u.user_id
    where usage.used_at >= (select max(used_at) from usage) - interval 30 day
),

active_revenue as (
    select coalesce(sum(i.amount_paid_cents), 0) as cents
    from {{ ref('stg_stripe_invoices') }} as i
    where
        i.invoice_status = 'paid'
        and i.customer_id in (
            select stripe_customer_id from active_users where stripe_customer_id is not null
        )
)

select round(active_revenue.cents / (select count(*) from active_users)) as value
from active_revenue
