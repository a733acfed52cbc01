-- Naive: averages fct_org_revenue per organization. The mart counts a shared
-- customer once per organization and has no rows for organizations without
-- paid invoices, so both the sums and the denominator are off.
with org_totals as (
    select org_id, sum(paid_revenue_cents) as ltv_cents
    from {{ ref('fct_org_revenue') }}
    group by org_id
)

select round(avg(ltv_cents)) as value
from org_totals
