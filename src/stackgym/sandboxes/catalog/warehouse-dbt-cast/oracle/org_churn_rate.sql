-- Oracle: share of organizations (with at least one user) where no user was
-- active in the last 30 days and no user's Stripe customer has an active
-- subscription. Staging already casts timestamps.
with usage as (
    select user_id, usage_created_at as used_at
    from {{ ref('stg_app_api_usage') }}
),

recent_users as (
    select distinct user_id
    from usage
    where used_at >= (select max(used_at) from usage) - interval 30 day
),

paying_customers as (
    select distinct customer_id
    from {{ ref('stg_stripe_subscriptions') }}
    where subscription_status = 'active'
),

org_users as (
    select u.org_id, u.user_id, u.stripe_customer_id
    from {{ ref('stg_app_users') }} as u
    inner join {{ ref('stg_app_organizations') }} as o on o.org_id = u.org_id
),

org_status as (
    select
        u.org_id,
        count(r.user_id) + count(p.customer_id) > 0 as retained
    from org_users as u
    left join recent_users as r on r.user_id = u.user_id
    left join paying_customers as p on p.customer_id = u.stripe_customer_id
    group by u.org_id
)

select round(avg(case when retained then 0.0 else 1.0 end), 4) as value
from org_status
