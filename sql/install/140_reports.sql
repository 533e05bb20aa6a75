-- Report views over reconcile runs (history) and over the current synced data.
-- Money columns are numeric rounded to cents; ids are the source systems' ids
-- as text; enums are text. Filter by run_id (billrecon.last_run_id() is the
-- newest run), psa_company_id, integration and type.

CREATE FUNCTION billrecon.last_run_id()
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $lr$
  SELECT r.id FROM billrecon.reconcile_runs r
   WHERE r.finished_at IS NOT NULL AND r.client_external_id IS NULL
   ORDER BY r.period_start DESC, r.id DESC
   LIMIT 1
$lr$;
COMMENT ON FUNCTION billrecon.last_run_id() IS
  'Id of the newest finished reconcile run of every client for the latest period reconciled (null before the first; '
  'runs of one client and re-runs of past months left out): WHERE run_id = billrecon.last_run_id()';

CREATE VIEW billrecon.reconciled_lines AS
SELECT t.run_id,
       r.period_start,
       t.company_external_id AS psa_company_id,
       t.company,
       t.agreement_external_id AS agreement_id,
       t.agreement,
       t.line_item_external_id AS line_item_id,
       t.product,
       t.product_name,
       t.integration,
       t.mode,
       t.state,
       t.type,
       t.invoiced_qty,
       t.adjustment_qty,
       t.multiplier,
       t.expected_qty,
       t.counted_qty,
       round(t.unit_price, 2)::numeric(14, 2) AS unit_price,
       t.variance,
       t.amount,
       t.monthly_amount,
       t.billing_cycle,
       t.cycle_start,
       t.cycle_end,
       t.invoiced_source,
       t.counted_source,
       t.price_source,
       t.cycle_source,
       t.estimate_basis,
       t.input_warning,
       t.explanation,
       t.row_kind,
       t.usage_kind,
       t.vendor_account_external_id AS vendor_account_id,
       t.vendor_account,
       t.group_line_item_id,
       t.group_size,
       t.id AS result_id
  FROM billrecon.reconcile_results t
  JOIN billrecon.reconcile_runs r ON r.id = t.run_id;
COMMENT ON VIEW billrecon.reconciled_lines IS
  'Every result row of every reconcile run, discrepancy or not: each PSA line item in force (reconciled, or shown as '
  'ignored / custom_sql / manual / adjustment / unmapped), each unmapped vendor account with usage, each unaccounted '
  'usage product. billrecon.discrepancies is the subset that needs attention.';

CREATE VIEW billrecon.discrepancies AS
SELECT l.run_id, l.psa_company_id, l.company, l.agreement_id, l.line_item_id, l.product, l.integration, l.mode,
       l.invoiced_qty, l.counted_qty, l.unit_price, l.variance, l.amount, l.type,
       l.monthly_amount, l.expected_qty, l.multiplier, l.agreement, l.product_name, l.billing_cycle,
       l.invoiced_source, l.counted_source, l.price_source, l.estimate_basis, l.input_warning, l.explanation,
       l.vendor_account_id, l.vendor_account, l.usage_kind, l.period_start, l.result_id
  FROM billrecon.reconciled_lines l
 WHERE billrecon._is_discrepancy(l.type, l.variance);
COMMENT ON VIEW billrecon.discrepancies IS
  'Discrepancies of every run, one row per line (or unmapped account, or unaccounted product): counted usage differs '
  'from billing (calculated / estimated), a mapping is missing (unmapped), or usage is billed by no line '
  '(unaccounted). amount > 0 is under-billed revenue, < 0 over-billed. Filter by run_id, psa_company_id, integration, '
  'type; order by abs(amount) DESC for the biggest first.';

-- Grouped views: by client account, by service (product), by contract.
CREATE VIEW billrecon.discrepancies_by_client AS
SELECT d.run_id, d.psa_company_id, d.company,
       count(*) AS discrepancy_count,
       sum(d.amount)::numeric(14, 2) AS amount,
       sum(abs(d.amount))::numeric(14, 2) AS absolute_amount,
       sum(d.monthly_amount)::numeric(14, 2) AS monthly_amount,
       count(*) FILTER (WHERE d.type = 'calculated') AS calculated,
       count(*) FILTER (WHERE d.type = 'estimated') AS estimated,
       count(*) FILTER (WHERE d.type = 'unmapped') AS unmapped,
       count(*) FILTER (WHERE d.type = 'unaccounted') AS unaccounted
  FROM billrecon.discrepancies d
 GROUP BY d.run_id, d.psa_company_id, d.company;
COMMENT ON VIEW billrecon.discrepancies_by_client IS
  'Discrepancies per run and client (account): count by type and amounts. Unmapped vendor accounts have no client '
  'and form one row with psa_company_id null.';

CREATE VIEW billrecon.discrepancies_by_service AS
SELECT d.run_id, d.product, max(d.product_name) AS product_name, d.integration,
       count(*) AS discrepancy_count,
       count(DISTINCT d.psa_company_id) AS clients,
       sum(d.variance) AS variance,
       sum(d.amount)::numeric(14, 2) AS amount,
       sum(abs(d.amount))::numeric(14, 2) AS absolute_amount,
       sum(d.monthly_amount)::numeric(14, 2) AS monthly_amount
  FROM billrecon.discrepancies d
 GROUP BY d.run_id, d.product, d.integration;
COMMENT ON VIEW billrecon.discrepancies_by_service IS
  'Discrepancies per run, service (PSA product, or vendor product for unaccounted usage) and integration';

CREATE VIEW billrecon.discrepancies_by_contract AS
SELECT d.run_id, d.psa_company_id, d.company, d.agreement_id, d.agreement, max(d.billing_cycle) AS billing_cycle,
       count(*) AS discrepancy_count,
       sum(d.amount)::numeric(14, 2) AS amount,
       sum(abs(d.amount))::numeric(14, 2) AS absolute_amount,
       sum(d.monthly_amount)::numeric(14, 2) AS monthly_amount
  FROM billrecon.discrepancies d
 WHERE d.agreement_id IS NOT NULL
 GROUP BY d.run_id, d.psa_company_id, d.company, d.agreement_id, d.agreement;
COMMENT ON VIEW billrecon.discrepancies_by_contract IS
  'Discrepancies of PSA lines per run and agreement (contract); unaccounted usage and unmapped accounts have no '
  'agreement and are not in this view';

CREATE VIEW billrecon.reconciled_invoices AS
WITH per_client AS (
  SELECT t.run_id, t.psa_company_id AS company_key, max(t.company_external_id) AS psa_company_id,
         max(t.company) AS company,
         count(*) FILTER (WHERE t.row_kind = 'line') AS service_count,
         count(*) FILTER (WHERE billrecon._is_discrepancy(t.type, t.variance)) AS discrepancy_count,
         coalesce(sum(t.amount) FILTER (WHERE billrecon._is_discrepancy(t.type, t.variance)), 0) AS discrepancy_amount,
         coalesce(sum(abs(t.amount)) FILTER (WHERE billrecon._is_discrepancy(t.type, t.variance)), 0) AS absolute_amount,
         coalesce(sum(t.monthly_amount) FILTER (WHERE billrecon._is_discrepancy(t.type, t.variance)), 0) AS monthly_amount,
         string_agg(DISTINCT t.billing_cycle, ', ' ORDER BY t.billing_cycle) FILTER (WHERE t.row_kind = 'line')
           AS billing_cycle,
         array_agg(DISTINCT t.integration ORDER BY t.integration) FILTER (WHERE t.integration IS NOT NULL) AS integrations
    FROM billrecon.reconcile_results t
   WHERE t.psa_company_id IS NOT NULL OR t.company_external_id IS NOT NULL
   GROUP BY t.run_id, t.psa_company_id
)
SELECT c.run_id, c.psa_company_id, c.company, coalesce(rc.seat_count, 0) AS seat_count, c.service_count, c.discrepancy_count,
       c.discrepancy_amount::numeric(14, 2) AS discrepancy_amount,
       c.absolute_amount::numeric(14, 2) AS absolute_amount,
       c.monthly_amount::numeric(14, 2) AS monthly_amount,
       c.billing_cycle,
       array_to_string(c.integrations, ', ') AS integrations,
       coalesce((SELECT CASE max(CASE i.status WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END)
                          WHEN 3 THEN 'red' WHEN 2 THEN 'yellow' ELSE 'green' END
                   FROM billrecon.reconcile_run_inputs i
                  WHERE i.run_id = c.run_id
                    AND (i.integration = ANY (c.integrations) OR i.integration = r.psa_integration)), 'green')
         AS worst_integration_status,
       r.period_start
  FROM per_client c
  JOIN billrecon.reconcile_runs r ON r.id = c.run_id
  LEFT JOIN billrecon.reconcile_run_clients rc ON rc.run_id = c.run_id AND rc.company_external_id = c.psa_company_id;
COMMENT ON VIEW billrecon.reconciled_invoices IS
  'One row per client per reconcile run: what its invoice looks like against usage. Sort by absolute_amount DESC to '
  'see where the money is.';

CREATE VIEW billrecon.reconcile_run_comparison AS
WITH ranked AS (
  SELECT i.*, row_number() OVER (PARTITION BY i.psa_company_id ORDER BY i.run_id DESC) AS n
    FROM billrecon.reconciled_invoices i
)
SELECT cur.psa_company_id, cur.company,
       cur.run_id AS last_run_id, prev.run_id AS previous_run_id,
       cur.period_start AS last_period, prev.period_start AS previous_period,
       cur.discrepancy_count AS last_discrepancy_count, prev.discrepancy_count AS previous_discrepancy_count,
       cur.discrepancy_amount AS last_discrepancy_amount, prev.discrepancy_amount AS previous_discrepancy_amount,
       (cur.discrepancy_amount - coalesce(prev.discrepancy_amount, 0))::numeric(14, 2) AS amount_change,
       cur.seat_count AS last_seat_count, prev.seat_count AS previous_seat_count,
       cur.seat_count - coalesce(prev.seat_count, 0) AS seat_change
  FROM ranked cur
  LEFT JOIN ranked prev ON prev.psa_company_id = cur.psa_company_id AND prev.n = 2
 WHERE cur.n = 1;
COMMENT ON VIEW billrecon.reconcile_run_comparison IS
  'Each client''s last reconcile run beside its previous one: discrepancies, amounts and seats, and how they changed';

-- Per-client tabs over the current data.
CREATE VIEW billrecon.client_integrations AS
SELECT c.external_id AS psa_company_id, c.name AS company, i.name AS integration, i.kind,
       va.external_id AS vendor_account_id, va.name AS vendor_account, m.source AS mapped_by,
       (SELECT count(*) FROM billrecon.usage_records u WHERE u.account_id = va.id AND u.removed_at IS NULL) AS seats,
       s.status, s.last_success_at
  FROM billrecon.client_mappings m
  JOIN billrecon.psa_companies c ON c.id = m.psa_company_id
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL
  JOIN billrecon.integrations i ON i.id = va.integration_id
  LEFT JOIN billrecon._integration_health s ON s.integration_id = i.id;
COMMENT ON VIEW billrecon.client_integrations IS
  'Per client: the vendor accounts mapped to it, the integration each comes from, its seats and the integration''s health';

CREATE VIEW billrecon.client_seats AS
SELECT c.external_id AS psa_company_id, c.name AS company, i.name AS integration,
       va.external_id AS vendor_account_id, u.external_id AS seat_id,
       coalesce(u.device_name, u.user_name, u.product_name, u.product, u.external_id) AS seat,
       u.kind, u.product, u.product_name, u.quantity, u.device_class, u.os_name, u.serial_number,
       u.licensed, u.enabled, u.last_active_at,
       billrecon._usage_excluded(u) AS excluded
  FROM billrecon.client_mappings m
  JOIN billrecon.psa_companies c ON c.id = m.psa_company_id
  JOIN billrecon.vendor_accounts va ON va.id = m.vendor_account_id AND va.removed_at IS NULL
  JOIN billrecon.integrations i ON i.id = va.integration_id
  JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL;
COMMENT ON VIEW billrecon.client_seats IS
  'Per client: every seat (device, licence, user, subscription) its mapped vendor accounts report';

CREATE VIEW billrecon.client_services AS
SELECT m.psa_company_id, m.company, m.agreement_id, m.agreement, a.billing_cycle, m.line_item_id, m.product,
       m.product_name, m.quantity, round(m.unit_price, 2)::numeric(14, 2) AS unit_price, m.integration, m.mode, m.multiplier, m.state
  FROM billrecon.service_mapping m
  JOIN billrecon.integrations psa ON psa.is_default_psa
  JOIN billrecon.psa_agreements a ON a.integration_id = psa.id AND a.external_id = m.agreement_id;
COMMENT ON VIEW billrecon.client_services IS
  'Per client: the PSA line items (services) it is billed for, with the rule that counts each';

-- Services whose billing data itself looks wrong.
CREATE VIEW billrecon.flagged_services AS
WITH lines AS (
  SELECT l.*, c.external_id AS company_ext, c.name AS company, a.external_id AS agreement_ext,
         coalesce(l.product_code, l.product_name) AS product,
         (lp.line_item_id IS NOT NULL OR l.parent_line_item_id IS NOT NULL) AS linked,
         (lp.line_item_id IS NOT NULL OR l.parent_line_item_id IS NOT NULL OR l.unit_price < 0) AS adjustment
    FROM billrecon.psa_line_items l
    JOIN billrecon.integrations psa ON psa.id = l.integration_id AND psa.is_default_psa
    JOIN billrecon.psa_agreements a ON a.id = l.agreement_id AND a.removed_at IS NULL AND NOT a.cancelled
    JOIN billrecon.psa_companies c ON c.id = l.company_id
    LEFT JOIN billrecon.line_item_parents lp ON lp.line_item_id = l.id
   WHERE l.removed_at IS NULL
     AND (l.cancel_date IS NULL OR l.cancel_date > current_date)
), flags AS (
  SELECT x.id, 'missing_unit_price' AS flag, 'the line has no unit price: amounts are estimated' AS detail
    FROM lines x WHERE x.unit_price IS NULL AND NOT x.adjustment
  UNION ALL
  SELECT x.id, 'inconsistent_price',
         format('%s lines of %s on this agreement have %s different unit prices (%s)', p.n, x.product, p.prices, p.list)
    FROM lines x
    JOIN (SELECT y.agreement_id, y.product, count(*) AS n, count(DISTINCT y.unit_price) AS prices,
                 string_agg(DISTINCT trim_scale(y.unit_price)::text, ', ') AS list
            FROM lines y WHERE NOT y.adjustment AND y.unit_price IS NOT NULL
           GROUP BY y.agreement_id, y.product HAVING count(DISTINCT y.unit_price) > 1) p
      ON p.agreement_id = x.agreement_id AND p.product = x.product
   WHERE NOT x.adjustment AND x.unit_price IS NOT NULL
  UNION ALL
  SELECT x.id, 'negative_quantity', format('quantity %s on a line that is not an adjustment', trim_scale(x.quantity))
    FROM lines x WHERE x.quantity < 0 AND NOT x.adjustment
  UNION ALL
  SELECT x.id, 'orphan_adjustment',
         format('credit line (unit price %s) linked to no parent: link it with billrecon.link_adjustment()',
                trim_scale(x.unit_price))
    FROM lines x WHERE x.unit_price < 0 AND NOT x.linked
  UNION ALL
  SELECT x.id, 'duplicate_line', format('%s identical lines (product, quantity, price, description) on this agreement', d.n)
    FROM lines x
    JOIN (SELECT y.agreement_id, y.product, y.quantity, y.unit_price, y.description, y.effective_date, count(*) AS n
            FROM lines y
           GROUP BY y.agreement_id, y.product, y.quantity, y.unit_price, y.description, y.effective_date
          HAVING count(*) > 1) d
      ON d.agreement_id = x.agreement_id AND d.product IS NOT DISTINCT FROM x.product AND d.quantity = x.quantity
     AND d.unit_price IS NOT DISTINCT FROM x.unit_price AND d.description IS NOT DISTINCT FROM x.description
     AND d.effective_date IS NOT DISTINCT FROM x.effective_date
)
SELECT x.company_ext AS psa_company_id, x.agreement_ext AS agreement_id, x.external_id AS line_item_id, x.product,
       f.flag, x.company, x.product_name, x.quantity, round(x.unit_price, 2)::numeric(14, 2) AS unit_price, f.detail
  FROM flags f
  JOIN lines x ON x.id = f.id;
COMMENT ON VIEW billrecon.flagged_services IS
  'Current PSA lines whose billing data looks wrong: missing_unit_price, inconsistent_price (one product at several '
  'prices on one agreement), negative_quantity (outside adjustments), orphan_adjustment (a credit linked to no '
  'line), duplicate_line. A line can carry several flags.';

-- Seats without activity for longer than billrecon.inactive_after.
CREATE VIEW billrecon.inactive_seats AS
WITH s AS (
  SELECT coalesce(nullif(current_setting('billrecon.inactive_after', true), ''), '21d')::interval AS inactive_after
)
SELECT i.name AS integration, va.external_id AS vendor_account_id, c.external_id AS psa_company_id,
       coalesce(u.device_name, u.user_name, u.product_name, u.product, u.external_id) AS seat,
       u.kind, u.last_active_at,
       (current_date - u.last_active_at::date) AS days_inactive,
       c.name AS company, u.product, u.device_class, u.external_id AS seat_id,
       p.monthly_cost, p.line_item_id AS billed_on_line_item_id
  FROM billrecon.usage_records u
  CROSS JOIN s
  JOIN billrecon.vendor_accounts va ON va.id = u.account_id AND va.removed_at IS NULL
  JOIN billrecon.integrations i ON i.id = u.integration_id
  LEFT JOIN billrecon.client_mappings m ON m.vendor_account_id = va.id
  LEFT JOIN billrecon.psa_companies c ON c.id = m.psa_company_id
  LEFT JOIN LATERAL (
    SELECT billrecon.monthly_amount(x.unit_price / x.multiplier,
             CASE WHEN x.billing_cycle IN ('quarterly', 'annual') THEN x.billing_cycle ELSE 'monthly' END)::numeric(14, 2)
             AS monthly_cost,
           x.line_item_external_id AS line_item_id
      FROM billrecon.reconcile_results x
     WHERE x.run_id = billrecon.last_run_id() AND x.psa_company_id = c.id AND x.integration_id = u.integration_id
       AND x.state = 'reconciled' AND x.unit_price IS NOT NULL AND x.mode <> 'manual'
       AND billrecon._rule_quantity(x.mode, x.filters, u) > 0
     ORDER BY x.effective_date DESC NULLS LAST, x.id DESC
     LIMIT 1) p ON true
 WHERE u.removed_at IS NULL AND u.kind IN ('device', 'user')
   AND u.last_active_at < now() - s.inactive_after
   AND NOT (u.kind = 'user' AND NOT coalesce(u.enabled, true));
COMMENT ON VIEW billrecon.inactive_seats IS
  'Devices and enabled users with no activity for longer than billrecon.inactive_after (default 21 days), with the '
  'monthly cost each carries (the monthly unit price of the line that bills it in the last reconcile run)';

-- The same machine reported twice: by serial number, else by host name.
CREATE VIEW billrecon.duplicate_seats AS
WITH d AS (
  SELECT u.*, m.psa_company_id,
         billrecon._serial_key(u.serial_number) AS serial_key,
         billrecon._host_key(u.device_name) AS host_key,
         coalesce(m.psa_company_id::text, 'account:' || u.account_id) AS owner
    FROM billrecon.usage_records u
    LEFT JOIN billrecon.client_mappings m ON m.vendor_account_id = u.account_id
   WHERE u.removed_at IS NULL AND u.kind = 'device'
), keyed AS (
  SELECT d.*, 'serial' AS match_on, d.serial_key AS match_value FROM d WHERE d.serial_key IS NOT NULL
  UNION ALL
  SELECT d.*, 'hostname', d.host_key FROM d WHERE d.host_key IS NOT NULL
), groups AS (
  SELECT k.owner, k.match_on, k.match_value, count(*) AS seats,
         count(DISTINCT k.integration_id) AS integrations_count,
         count(DISTINCT k.serial_key) AS serials, count(k.serial_key) AS with_serial,
         array_agg(k.id ORDER BY k.id) AS ids
    FROM keyed k
   GROUP BY k.owner, k.match_on, k.match_value
  HAVING count(*) > 1
)
SELECT c.external_id AS psa_company_id, c.name AS company, g.match_on, g.match_value, g.seats,
       g.seats - 1 AS extra_seats,
       (SELECT string_agg(DISTINCT i.name, ', ') FROM billrecon.usage_records u
          JOIN billrecon.integrations i ON i.id = u.integration_id WHERE u.id = ANY (g.ids)) AS integrations,
       (SELECT string_agg(coalesce(u.device_name, u.external_id), ', ' ORDER BY u.id) FROM billrecon.usage_records u
         WHERE u.id = ANY (g.ids)) AS devices,
       (SELECT array_agg(u.external_id ORDER BY u.id) FROM billrecon.usage_records u WHERE u.id = ANY (g.ids))
         AS seat_ids,
       CASE WHEN g.integrations_count > 1 THEN 'reported by several RMMs' ELSE 'reported twice by one RMM' END AS detail
  FROM groups g
  LEFT JOIN billrecon.psa_companies c ON g.owner = c.id::text
 -- A shared host name is evidence only where serials do not tell the
 -- machines apart (none, or one serial beside records without any).
 WHERE g.match_on = 'serial' OR g.serials = 0 OR (g.serials = 1 AND g.with_serial < g.seats);
COMMENT ON VIEW billrecon.duplicate_seats IS
  'One device reported more than once for one client (or one unmapped account), in one RMM or in two: same serial '
  'number, or same host name where serials do not already explain it. extra_seats is what would be billed twice.';

-- Vendor cost beside PSA price.
CREATE VIEW billrecon.margin AS
SELECT m.psa_company_id, m.company, m.agreement_id, m.line_item_id, m.product, m.integration,
       m.quantity, m.multiplier, round(m.unit_price, 2)::numeric(14, 2) AS unit_price,
       round(l.unit_cost, 2)::numeric(14, 2) AS psa_unit_cost,
       round(k.cost / k.units, 4) AS vendor_unit_cost,
       k.units AS vendor_units,
       round(m.unit_price - m.multiplier * k.cost / k.units, 2)::numeric(14, 2) AS margin_per_unit,
       round(m.quantity * (m.unit_price - m.multiplier * k.cost / k.units), 2)::numeric(14, 2) AS margin,
       CASE WHEN m.unit_price <> 0
            THEN round(100 * (m.unit_price - m.multiplier * k.cost / k.units) / m.unit_price, 1) END AS margin_percent,
       m.unit_price <= m.multiplier * k.cost / k.units AS at_or_below_cost
  FROM billrecon.service_mapping m
  JOIN billrecon.integrations psa ON psa.is_default_psa
  JOIN billrecon.psa_line_items l ON l.integration_id = psa.id AND l.external_id = m.line_item_id
  JOIN billrecon.service_rules r ON r.id = m.rule_id
  CROSS JOIN LATERAL (
    SELECT sum(u.unit_cost * billrecon._rule_quantity(r.mode, r.filters, u)) AS cost,
           sum(billrecon._rule_quantity(r.mode, r.filters, u)) AS units
      FROM billrecon.client_mappings cm
      JOIN billrecon.vendor_accounts va ON va.id = cm.vendor_account_id AND va.integration_id = r.integration_id
           AND va.removed_at IS NULL
      JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL AND u.unit_cost IS NOT NULL
     WHERE cm.psa_company_id = l.company_id) k
 WHERE m.state = 'mapped' AND m.unit_price IS NOT NULL AND k.units > 0;
COMMENT ON VIEW billrecon.margin IS
  'Lines whose usage comes with a vendor cost (Pax8 partner cost, Partner Center price): the PSA unit price beside the '
  'vendor''s cost per billed unit (unit cost x multiplier), the margin, and whether the line is sold at or below cost';
