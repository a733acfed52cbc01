-- Monthly recurring revenue per Stripe subscription, with the subscriber's organization.
with org_customers as (
    select distinct org_id, stripe_customer_id as customer_id
    from {{ ref('stg_app_users') }}
    where stripe_customer_id is not null
)

select
    s.subscription_id,
    s.customer_id,
    c.org_id,
    s.subscription_status,
    p.price_nickname,
    p.billing_interval,
    case
        when p.billing_interval = 'year' then p.unit_amount_cents / 12.0
        else p.unit_amount_cents * 1.0
    end as mrr_cents,
    s.subscription_created_at
from {{ ref('stg_stripe_subscriptions') }} as s
inner join {{ ref('stg_stripe_prices') }} as p on p.price_id = s.price_id
left join org_customers as c on c.customer_id = s.customer_id
