-- One row per organization, with how many users and Stripe customers it has.
with users as (
    select org_id, user_id, stripe_customer_id
    from {{ ref('stg_app_users') }}
)

select
    o.org_id,
    o.org_name,
    o.org_created_at,
    count(u.user_id) as user_count,
    count(distinct u.stripe_customer_id) as customer_count
from {{ ref('stg_app_organizations') }} as o
left join users as u on u.org_id = o.org_id
group by o.org_id, o.org_name, o.org_created_at
