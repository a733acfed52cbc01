-- Paid revenue per organization and month.
with org_customers as (
    select distinct org_id, stripe_customer_id as customer_id
    from {{ ref('stg_app_users') }}
    where stripe_customer_id is not null
),

paid_invoices as (
    select
        customer_id,
        amount_paid_cents,
        cast(invoice_created_at as timestamp) as invoiced_at
    from {{ ref('stg_stripe_invoices') }}
    where invoice_status = 'paid'
)

select
    c.org_id,
    cast(date_trunc('month', i.invoiced_at) as date) as revenue_month,
    count(*) as paid_invoice_count,
    sum(i.amount_paid_cents) as paid_revenue_cents
from org_customers as c
inner join paid_invoices as i on i.customer_id = c.customer_id
group by 1, 2
