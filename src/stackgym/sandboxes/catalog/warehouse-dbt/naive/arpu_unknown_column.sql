-- Naive: uses the raw column name `id`, which staging renamed to user_id.
select round(sum(i.amount_paid_cents) / count(distinct u.id)) as value
from {{ ref('stg_app_users') }} as u
inner join {{ ref('stg_stripe_invoices') }} as i on i.customer_id = u.stripe_customer_id
where i.invoice_status = 'paid'
