-- Naive: an organization is churned when none of its users was active;
-- paying organizations whose users stopped calling the API count as churned.
with usage as (
    select user_id, cast(usage_created_at as timestamp) as used_at
    from {{ ref('stg_app_api_usage') }}
),

recent_users as (
    select distinct user_id
    from usage
    where used_at >= (select max(used_at) from usage) - interval 30 day
),

org_status as (
    select u.org_id, count(r.user_id) > 0 as active
    from {{ ref('stg_app_users') }} as u
    left join recent_users as r on r.user_id = u.user_id
    group by u.org_id
)

select round(avg(case when active then 0.0 else 1.0 end), 4) as value
from org_status
