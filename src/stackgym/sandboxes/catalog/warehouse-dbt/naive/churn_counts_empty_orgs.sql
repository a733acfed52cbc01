-- Naive: divides by every organization in dim_orgs, including those without
-- users (which it also counts as churned).
with usage as (
    select user_id, cast(usage_created_at as timestamp) as used_at
    from {{ ref('stg_app_api_usage') }}
),

retained_orgs as (
    select distinct u.org_id
    from {{ ref('stg_app_users') }} as u
    left join usage on usage.user_id = u.user_id
    left join {{ ref('fct_mrr') }} as m on m.customer_id = u.stripe_customer_id
    where
        usage.used_at >= (select max(used_at) from usage) - interval 30 day
        or m.subscription_status = 'active'
)

select round(1 - (select count(*) from retained_orgs) / count(*), 4) as value
from {{ ref('dim_orgs') }}
