-- Oracle: mean over organizations (with at least one user) of the sum over
-- their users of the user's Stripe customer's paid invoices. A customer
-- shared by two users of one organization counts twice.
with paid_per_customer as (
    select customer_id, sum(amount_paid_cents) as paid_cents
    from {{ ref('stg_stripe_invoices') }}
    where invoice_status = 'paid'
    group by customer_id
),

org_users as (
    select u.org_id, u.stripe_customer_id
    from {{ ref('stg_app_users') }} as u
    inner join {{ ref('stg_app_organizations') }} as o on o.org_id = u.org_id
),

org_ltv as (
    select u.org_id, coalesce(sum(p.paid_cents), 0) as ltv_cents
    from org_users as u
    left join paid_per_customer as p on p.customer_id = u.stripe_customer_id
    group by u.org_id
)

select round(avg(ltv_cents)) as value
from org_ltv
