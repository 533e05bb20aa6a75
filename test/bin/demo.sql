-- The billrecon demo, run by test/bin/demo in database billrecon_demo against
-- the loopback mock vendor APIs. The psql variable integrations_sql names the
-- file of add_integration calls test/bin/demo_integrations.py wrote for them.
\set ON_ERROR_STOP on
\pset pager off
\pset format aligned

\echo
\echo '==> CREATE EXTENSION billrecon'
CREATE EXTENSION billrecon;

-- The mocks speak plain http on 127.0.0.1; real vendors need https. The
-- database setting is for the background sync workers, which start their own
-- sessions.
SET billrecon.allow_http = on;
SELECT current_database() AS demo_db \gset
ALTER DATABASE :"demo_db" SET billrecon.allow_http = on;

\echo
\echo '==> integrations: ConnectWise (the default PSA), NinjaOne and Datto RMM (devices), Partner Center,'
\echo '    Microsoft 365 (its tenants are Partner Center''s customers) and Pax8'
\i :integrations_sql

\echo
\echo '==> full sync of every integration'
SELECT integration, status, mode, records, pages, requests, retries, warnings, error
  FROM billrecon.sync(NULL, 'full') ORDER BY integration;

\echo
\echo '==> a quick sync right after: ConnectWise asks only for what changed; APIs without a modified filter run full'
SELECT integration, status, mode, records, requests
  FROM billrecon.sync(NULL, 'quick') ORDER BY integration;

\echo
\echo '==> integration status'
SELECT integration, kind, status, status_reason, last_sync_mode, accounts, items, last_error
  FROM billrecon.integration_status ORDER BY integration;

\echo
\echo '==> what was synced'
SELECT 'PSA companies' AS what, count(*) AS current FROM billrecon.psa_companies WHERE removed_at IS NULL
UNION ALL SELECT 'PSA agreements', count(*) FROM billrecon.psa_agreements WHERE removed_at IS NULL
UNION ALL SELECT 'PSA line items', count(*) FROM billrecon.psa_line_items WHERE removed_at IS NULL
UNION ALL SELECT 'vendor accounts', count(*) FROM billrecon.vendor_accounts WHERE removed_at IS NULL
UNION ALL SELECT 'usage records', count(*) FROM billrecon.usage_records WHERE removed_at IS NULL;

\echo
\echo '==> devices per class, and how many have not been seen for 21 days'
SELECT device_class, count(*) AS devices,
       count(*) FILTER (WHERE last_active_at < now() - interval '21 days') AS inactive_21_days
  FROM billrecon.usage_records WHERE kind = 'device' AND removed_at IS NULL
 GROUP BY device_class ORDER BY device_class;

\echo
\echo '==> the ten largest clients by billed recurring amount'
SELECT c.name AS client, count(*) AS lines, sum(l.quantity * coalesce(l.unit_price, 0)) AS monthly_amount
  FROM billrecon.psa_line_items l JOIN billrecon.psa_companies c ON c.id = l.company_id
 WHERE l.removed_at IS NULL AND l.cancel_date IS NULL
 GROUP BY c.name ORDER BY monthly_amount DESC, client LIMIT 10;

\echo
\echo '==> service mapping: built-in presets turn recognised PSA products into rules'
SELECT billrecon.apply_presets() AS rules_created;
SELECT state, count(*) AS line_items FROM billrecon.service_mapping GROUP BY state ORDER BY state;
SELECT product, integration, mode, filters, count(*) AS line_items
  FROM billrecon.service_mapping WHERE state = 'mapped' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2;

\echo
\echo '==> client mapping: suggestions with their evidence, then the confident ones confirmed'
SELECT billrecon.suggest_client_matches() AS suggested;
SELECT integration, vendor_account_name, psa_company_name, score, evidence
  FROM billrecon.client_match_suggestions ORDER BY score DESC, integration, vendor_account_name LIMIT 12;
SELECT billrecon.confirm_client_matches() AS confirmed_at_recommended_threshold;
\echo '    left below the threshold, for a human to decide:'
SELECT integration, vendor_account_name, psa_company_name, score, evidence
  FROM billrecon.client_match_suggestions ORDER BY score DESC, integration, vendor_account_name;

\echo
\echo '==> a reviewer checks those: each is the client under another name ("& Co" for "Group"), so both are'
\echo '    mapped by hand with billrecon.map_client()'
SELECT s.integration, s.vendor_account_name, s.psa_company_name, s.score, 'mapped by hand' AS decision
  FROM billrecon.client_match_suggestions s
  CROSS JOIN LATERAL (SELECT billrecon.map_client(s.integration, s.vendor_account_id, s.psa_company_id)) m
 ORDER BY s.score DESC, s.integration, s.vendor_account_name;

\echo
\echo '==> still to clear before reconciling (billrecon.unmapped_counts): what a human must decide'
SELECT * FROM billrecon.unmapped_counts ORDER BY side DESC, integration;

-- ---------------------------------------------------------------- reconcile

-- Output helpers: a short client name, and a vendor product by its name
-- (Pax8 and Partner Center products have ids; Microsoft 365 SKUs are named
-- by their part number already).
\set client 'left(company, 30)'
\set what 'CASE WHEN usage_kind = ''subscription'' THEN left(coalesce(product_name, product), 30) ELSE product END'

\echo
\echo '==> spot checks: this billing team looks at every change of 5 units or more before approving it'
\echo '    (billrecon.spot_check_min_delta, default 10, beside 50 % of the line: billrecon.spot_check_ratio)'
SET billrecon.spot_check_min_delta = 5;
ALTER DATABASE :"demo_db" SET billrecon.spot_check_min_delta = 5;   -- for later sessions and runs too

\echo
\echo '==> reconcile the month: billrecon.reconcile() compares every PSA line in force with the usage its rule counts'
SELECT billrecon.reconcile() AS run_id \gset
SELECT id AS run_id, period_start, period_end, line_count AS result_rows, discrepancy_count, discrepancy_amount
  FROM billrecon.reconcile_runs WHERE id = :run_id;
\echo '    the discrepancies by type: calculated / estimated = billing differs from usage (estimated: an input was'
\echo '    inferred), unmapped = a mapping is missing, unaccounted = usage that no line bills'
SELECT type, count(*) AS discrepancies, sum(amount) AS amount, sum(monthly_amount) AS monthly_amount,
       count(*) - count(amount) AS without_amount
  FROM billrecon.discrepancies WHERE run_id = :run_id GROUP BY type ORDER BY type;

\echo
\echo '==> reconciled invoices: the ten clients with the most money in question (absolute amount)'
SELECT :client AS client, seat_count AS seats, service_count AS lines, discrepancy_count AS discrepancies,
       discrepancy_amount AS amount, absolute_amount, monthly_amount, billing_cycle, worst_integration_status AS health
  FROM billrecon.reconciled_invoices WHERE run_id = :run_id
 ORDER BY absolute_amount DESC, company LIMIT 10;

\echo
\echo '==> the biggest discrepancies (amount > 0: under-billed revenue; < 0: over-billed)'
SELECT :client AS client, line_item_id AS line, :what AS product, integration, invoiced_qty AS billed,
       expected_qty AS expected, counted_qty AS counted, unit_price, variance, amount, monthly_amount AS monthly, type
  FROM billrecon.discrepancies WHERE run_id = :run_id
 ORDER BY abs(amount) DESC NULLS LAST, company, line_item_id LIMIT 12;
\echo '    ... and why, in words (billrecon.discrepancies.explanation, with estimate_basis when an input was inferred):'
\pset format unaligned
\pset tuples_only on
SELECT format('  - %s, %s (%s): %s', company, coalesce('line ' || line_item_id, :what), type,
              explanation || coalesce(' [estimated: ' || nullif(estimate_basis, '') || ']', ''))
  FROM billrecon.discrepancies WHERE run_id = :run_id
 ORDER BY abs(amount) DESC NULLS LAST, company, line_item_id LIMIT 5;
\echo '    the estimated ones, and one of each kind of missing mapping:'
(SELECT format('  - %s, line %s (%s): %s [estimated: %s]', company, line_item_id, type, explanation, estimate_basis)
   FROM billrecon.discrepancies WHERE run_id = :run_id AND type = 'estimated' ORDER BY abs(amount) DESC LIMIT 3)
UNION ALL
(SELECT DISTINCT ON (vendor_account IS NULL, integration IS NULL)
        format('  - %s (%s): %s', coalesce(company || ', line ' || line_item_id, 'vendor account ' || vendor_account),
               type, explanation)
   FROM billrecon.discrepancies WHERE run_id = :run_id AND type = 'unmapped'
  ORDER BY vendor_account IS NULL, integration IS NULL, abs(invoiced_qty * unit_price) DESC NULLS LAST, company,
           line_item_id);
\pset tuples_only off
\pset format aligned

\echo
\echo '==> flagged services: billing data that looks wrong in the PSA itself'
SELECT :client AS client, agreement_id, line_item_id, product, quantity, unit_price, flag, detail
  FROM billrecon.flagged_services ORDER BY company, agreement_id, line_item_id, flag LIMIT 10;

\echo
\echo '==> inactive seats: no activity for more than billrecon.inactive_after (21 days), with what each costs a month'
SELECT count(*) AS inactive_seats, count(monthly_cost) AS billed_on_a_line, sum(monthly_cost) AS monthly_cost
  FROM billrecon.inactive_seats;
SELECT :client AS client, integration, seat, kind, device_class, days_inactive, monthly_cost,
       billed_on_line_item_id AS billed_on
  FROM billrecon.inactive_seats
 ORDER BY monthly_cost DESC NULLS LAST, days_inactive DESC, seat LIMIT 10;

\echo
\echo '==> duplicate seats: one machine reported twice (in one RMM, or in NinjaOne and Datto RMM)'
SELECT :client AS client, detail, count(*) AS machines, sum(extra_seats) AS extra_seats
  FROM billrecon.duplicate_seats GROUP BY company, detail ORDER BY sum(extra_seats) DESC, company LIMIT 10;
SELECT :client AS client, match_on, match_value, integrations, devices, detail
  FROM billrecon.duplicate_seats ORDER BY match_on DESC, company, match_value LIMIT 6;

-- ---------------------------------------------------------------- act

\echo
\echo '==> change cards the run raised: one per line to change, one per unaccounted product (new revenue)'
SELECT kind, status, flags, count(*) AS cards, sum(amount) AS amount
  FROM billrecon.change_cards GROUP BY kind, status, flags ORDER BY kind DESC, flags;
SELECT card_id, :client AS client, line_item_id AS line, product, current_qty AS now, proposed_qty AS proposed, delta,
       amount, billing_cycle, type, flags
  FROM billrecon.change_cards WHERE status = 'pending' AND kind = 'quantity'
 ORDER BY abs(amount) DESC, card_id LIMIT 12;

\echo
\echo '==> approve every pending card in bulk, without force: the flagged ones are held back (NOTICE)'
SELECT billrecon.approve(array_agg(card_id ORDER BY card_id)) AS approved
  FROM billrecon.change_cards WHERE status = 'pending';
\echo '    held back, by reason:'
SELECT flags, count(*) AS cards, sum(amount) AS amount,
       string_agg(format('%s %s %s->%s', card_id, coalesce(line_item_id, product), trim_scale(current_qty),
                         trim_scale(proposed_qty)), ', ' ORDER BY card_id) FILTER (WHERE kind = 'quantity') AS quantity_cards
  FROM billrecon.change_cards WHERE status = 'pending' GROUP BY flags ORDER BY flags;

\echo
\echo '==> effective date: approval sets the 1st of next month; the demo starts the changes today instead, so they are due'
SELECT billrecon.set_effective_date(array_agg(card_id), current_date) AS dated
  FROM billrecon.change_cards WHERE status = 'approved';

\echo
\echo '==> proration preview (billrecon.change_card_proration): what the rest of the current cycle costs or credits'
SELECT card_id, :client AS client, product, billing_cycle AS cycle, effective_date, cycle_start, cycle_end, unit_price,
       delta, proration_supported AS prorates, prorated_amount, basis
  FROM billrecon.change_card_proration ORDER BY abs(prorated_amount) DESC, card_id LIMIT 10;
SELECT count(*) AS approved_cards, count(*) FILTER (WHERE proration_supported) AS prorated,
       sum(prorated_amount) AS prorated_total
  FROM billrecon.change_card_proration;

\echo
\echo '==> write back to the mock ConnectWise: billrecon.push_changes()'
\echo '    (ConnectWise keeps history: the old addition ends yesterday, a new one carries the quantity from today)'
SELECT r.card_id, :client AS client, c.line_item_id AS line, c.product, r.status, r.quantity_before AS before,
       r.quantity_after AS after, coalesce(r.error, r.note) AS result
  FROM billrecon.push_changes() r JOIN billrecon.change_cards c USING (card_id)
 ORDER BY abs(c.amount) DESC, r.card_id;
\echo '    pushing again sends nothing: no approved card is left'
SELECT count(*) AS pushed_again FROM billrecon.push_changes();

\echo
\echo '==> a fresh full sync of ConnectWise'
SELECT integration, status, mode, records, requests, error FROM billrecon.sync('connectwise', 'full');

\echo
\echo '==> the pushed lines as ConnectWise has them now'
SELECT c.card_id, left(c.company, 30) AS client, c.product, c.line_item_id AS old_line, o.quantity AS old_qty,
       o.cancel_date AS old_ends, p.push_reference AS new_line, n.quantity AS new_qty, n.effective_date AS new_from
  FROM billrecon.change_cards c
  JOIN billrecon.proposed_changes p ON p.id = c.card_id
  JOIN billrecon.psa_line_items o ON o.id = p.line_item_id
  LEFT JOIN billrecon.psa_line_items n ON n.integration_id = o.integration_id AND n.external_id = p.push_reference
       AND n.removed_at IS NULL
 WHERE c.status = 'pushed'
 ORDER BY abs(c.amount) DESC, c.card_id;

\echo
\echo '==> reconcile again: the pushed lines now match the usage (variance 0)'
SELECT billrecon.reconcile() AS run2 \gset
SELECT left(l.company, 30) AS client, l.line_item_id AS line, l.product, l.expected_qty AS expected,
       l.counted_qty AS counted,
       l.variance, l.amount
  FROM billrecon.proposed_changes p
  JOIN billrecon.reconciled_lines l ON l.run_id = :run2 AND l.line_item_id = p.push_reference
 WHERE p.status = 'pushed'
 ORDER BY abs(p.amount) DESC, p.id;
SELECT r.id AS run_id, r.discrepancy_count,
       count(*) FILTER (WHERE d.type IN ('calculated', 'estimated')) AS billing_differs,
       sum(d.amount) FILTER (WHERE d.type IN ('calculated', 'estimated')) AS amount_billing_differs,
       count(*) FILTER (WHERE d.type IN ('unmapped', 'unaccounted')) AS to_map_or_bill
  FROM billrecon.reconcile_runs r JOIN billrecon.discrepancies d ON d.run_id = r.id
 WHERE r.id IN (:run_id, :run2)
 GROUP BY r.id, r.discrepancy_count ORDER BY r.id;
\echo '    what is left to decide: the cards held back for a spot check (approve them with force => true, or dismiss'
\echo '    them with a reason), and any difference without a card'
SELECT left(d.company, 30) AS client, d.line_item_id AS line, d.product, d.expected_qty AS expected,
       d.counted_qty AS counted, d.variance, d.amount, c.card_id, coalesce(c.status, 'no card') AS card, c.flags
  FROM billrecon.discrepancies d
  LEFT JOIN billrecon.change_cards c ON c.kind = 'quantity' AND c.line_item_id = d.line_item_id
       AND c.status IN ('pending', 'approved', 'failed')
 WHERE d.run_id = :run2 AND d.type IN ('calculated', 'estimated')
 ORDER BY abs(d.amount) DESC, d.line_item_id;

\echo
\echo '==> keep it fresh: an hourly quick sync through pg_cron, and one sync queued now for the background workers'
\echo '    pg_cron lives in database "postgres" on this cluster (cron.database_name): from this database'
\echo '    billrecon.schedule_sync() answers with the exact statement to run there'
DO $sched$
DECLARE
  v_msg text;
  v_hint text;
BEGIN
  PERFORM billrecon.schedule_sync('0 * * * *', NULL, 'quick');
  RAISE NOTICE 'scheduled from this database';
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  GET STACKED DIAGNOSTICS v_msg = MESSAGE_TEXT, v_hint = PG_EXCEPTION_HINT;
  RAISE NOTICE '%', v_msg USING HINT = v_hint;
END
$sched$;
\c postgres
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
RESET client_min_messages;
SELECT cron.schedule_in_database('billrecon sync all quick in ' || :'demo_db', '0 * * * *',
                                 $$SELECT billrecon.sync_async(NULL, 'quick')$$, :'demo_db') > 0 AS scheduled;
SELECT jobname, schedule, command, database FROM cron.job WHERE jobname LIKE 'billrecon sync%';
\c :demo_db
SELECT billrecon.sync_async(NULL, 'full') AS job \gset
SELECT set_config('demo.job', :'job', false) IS NOT NULL AS noted \gset
\echo '    queued job' :job '- its progress, as the workers fill it in (billrecon.sync_jobs):'
SELECT pg_sleep(0.3);
SELECT job_id, integration, status, phase, pages, records, round(extract(epoch FROM elapsed)::numeric, 2) AS seconds
  FROM billrecon.sync_jobs WHERE job_id = :job ORDER BY task_id;
SELECT pg_sleep(1.5);
SELECT job_id, integration, status, phase, pages, records, round(extract(epoch FROM elapsed)::numeric, 2) AS seconds
  FROM billrecon.sync_jobs WHERE job_id = :job ORDER BY task_id;
DO $wait$
BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN NOT EXISTS (SELECT 1 FROM billrecon.sync_jobs j WHERE j.job_id = current_setting('demo.job')::bigint
                                                               AND j.status IN ('queued', 'running'));
    PERFORM pg_sleep(0.1);
  END LOOP;
END
$wait$;
SELECT job_id, integration, status, pages, records, round(extract(epoch FROM elapsed)::numeric, 2) AS seconds, error
  FROM billrecon.sync_jobs WHERE job_id = :job ORDER BY task_id;

\echo
\echo '==> this month, after the changes: the clients with the most money in question, and the detail of the first'
SELECT billrecon.reconcile() AS run3 \gset
SELECT left(company, 30) AS client, seat_count AS seats, discrepancy_count AS discrepancies, discrepancy_amount AS amount,
       absolute_amount, worst_integration_status AS health
  FROM billrecon.reconciled_invoices WHERE run_id = :run3 ORDER BY absolute_amount DESC, company LIMIT 5;
SELECT psa_company_id AS top_client FROM billrecon.reconciled_invoices WHERE run_id = :run3
 ORDER BY absolute_amount DESC, company LIMIT 1 \gset
SELECT coalesce(line_item_id, '-') AS line, :what AS product, type, invoiced_qty AS billed, counted_qty AS counted,
       variance, amount, explanation
  FROM billrecon.discrepancies WHERE run_id = :run3 AND psa_company_id = :'top_client'
 ORDER BY abs(amount) DESC NULLS LAST, line_item_id;
