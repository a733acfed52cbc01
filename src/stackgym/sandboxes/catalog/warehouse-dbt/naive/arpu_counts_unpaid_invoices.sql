-- Naive: sums amount_paid over every invoice of active users' customers,
-- open ones included (partly paid open invoices inflate revenue).
with usage as (
    select user_id, cast(usage_created_at as timestamp) as used_at
    from {{ ref('stg_app_api_usage') }}
),

active_users as (
    select distinct u.user_id, u.stripe_customer_id
    from {{ ref('stg_app_users') }} as u
    inner join usage on usage.user_id = u.user_id
    where usage.used_at >= (select max(used_at) from usage) - interval 30 day
)

select round(sum(i.amount_paid_cents) / (select count(*) from active_users)) as value
from {{ ref('stg_stripe_invoices') }} as i
where i.customer_id in (select stripe_customer_id from active_users)
