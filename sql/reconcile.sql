-- Reconciliation on a hand-made book of business where every number is known:
-- every mode, filter, multiplier, group, adjustment, cycle, estimate and type.
\set SHOW_CONTEXT never
SET client_min_messages = notice;
SELECT billrecon.add_integration('cw', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}', is_default_psa => true) > 0 AS psa;
SELECT billrecon.add_integration('ninja', 'ninjaone', 'https://app.ninjarmm.com', '{"client_id":"a","client_secret":"b"}') > 0 AS ninja;
SELECT billrecon.add_integration('m365', 'msgraph', 'https://graph.microsoft.com',
  '{"tenant_id":"t","client_id":"a","client_secret":"b"}') > 0 AS m365;
SELECT billrecon.add_integration('pax8', 'pax8', 'https://api.pax8.com', '{"client_id":"a","client_secret":"b"}') > 0 AS pax8;
SELECT billrecon.add_integration('datto', 'dattormm', 'https://pinotage-api.centrastage.net', '{"api_key":"a","api_secret":"b"}') > 0 AS datto;

-- PSA: Harbor Dental (monthly), Smith & Jones (quarterly + monthly), Acme (not mapped anywhere), Old Co (cancelled).
INSERT INTO billrecon.psa_companies (integration_id, external_id, name, first_seen_at, last_seen_at)
SELECT i.id, v.ext, v.name, now(), now() FROM billrecon.integrations i,
  (VALUES ('100', 'Harbor Dental'), ('101', 'Smith & Jones Law'), ('102', 'Acme Corp'), ('103', 'Old Co')) v(ext, name)
 WHERE i.name = 'cw';
INSERT INTO billrecon.psa_agreements (integration_id, external_id, company_id, name, billing_cycle, start_date, prorate,
                                      cancelled, cancelled_date, first_seen_at, last_seen_at)
SELECT c.integration_id, v.ext, c.id, v.name, v.cycle, v.start::date, v.prorate, v.cancelled, v.cancelled_on::date, now(), now()
  FROM billrecon.psa_companies c
  JOIN (VALUES ('100', 'AG-100', 'Managed Services', 'monthly', '2025-01-01', true, false, NULL),
               ('101', 'AG-101', 'M365 NCE (quarterly)', 'quarterly', '2026-08-15', NULL, false, NULL),
               ('101', 'AG-101M', 'Managed Services', 'monthly', '2025-03-01', false, false, NULL),
               ('102', 'AG-102', 'Managed Services', 'monthly', '2024-01-01', true, false, NULL),
               ('103', 'AG-103', 'Managed Services', 'monthly', '2023-01-01', true, true, '2026-09-01'))
       v(company, ext, name, cycle, start, prorate, cancelled, cancelled_on) ON v.company = c.external_id;
INSERT INTO billrecon.psa_line_items (integration_id, external_id, agreement_id, company_id, product_code, product_name,
                                      quantity, unit_price, effective_date, cancel_date, first_seen_at, last_seen_at)
SELECT a.integration_id, v.ext, a.id, a.company_id, v.code, v.name, v.qty, v.price, v.eff::date, v.cancel::date, now(), now()
  FROM billrecon.psa_agreements a
  JOIN (VALUES ('AG-100', 'L1', 'MS-WKS', 'Managed Workstation', 10, 45.00, '2025-01-01', NULL),
               ('AG-100', 'L2', 'MS-WKS', 'Managed Workstation (added)', 3, 48.00, '2026-06-01', NULL),
               ('AG-100', 'L3', 'MS-SRV', 'Managed Server', 2, 150.00, '2025-01-01', NULL),
               ('AG-100', 'L4', 'BDR', 'Backup appliance (2 servers)', 1, 200.00, '2025-01-01', NULL),
               ('AG-100', 'L5', 'M365-BP', 'Microsoft 365 Business Premium', 14, NULL, '2025-01-01', NULL),
               ('AG-100', 'L6', 'M365-BP', 'Business Premium correction', -2, NULL, '2025-01-01', NULL),
               ('AG-100', 'L7', 'ONBOARD', 'Onboarding fee', 1, 500.00, '2025-01-01', NULL),
               ('AG-100', 'L8', 'HELPDESK', 'Helpdesk per user', 20, 10.00, '2025-01-01', NULL),
               ('AG-100', 'L9', 'SAT', 'Security awareness training', 16, 3.00, '2025-01-01', NULL),
               ('AG-100', 'L10', 'NET-MON', 'Network monitoring', 15, 2.00, '2025-01-01', NULL),
               ('AG-100', 'L11', 'MS-SRV', 'Managed Server (from November)', 1, 150.00, '2026-11-01', NULL),
               ('AG-100', 'L12', 'AV-OLD', 'Legacy antivirus', 13, 4.00, '2025-01-01', '2026-09-30'),
               ('AG-100', 'L13', 'DISCOUNT', 'Loyalty discount', 1, -50.00, '2025-01-01', NULL),
               ('AG-100', 'L14', 'UNKNOWN', 'Something nobody mapped', 1, 10.00, '2025-01-01', NULL),
               ('AG-100', 'L15', 'CREDIT', 'Goodwill credit', 1, -25.00, '2025-01-01', NULL),
               ('AG-100', 'L16', 'NET-FW', 'Firewall', 1, 30.00, '2025-01-01', NULL),
               ('AG-100', 'L17', 'NET-FW', 'Firewall', 1, 30.00, '2025-01-01', NULL),
               ('AG-101', 'L20', 'M365-BP', 'Microsoft 365 Business Premium (quarterly)', 5, 66.00, '2026-08-15', NULL),
               ('AG-101M', 'L21', 'USERS', 'Per-user support', 7, 5.00, '2025-03-01', NULL),
               ('AG-101M', 'L22', 'PAX-BP', 'Business Premium via Pax8', 4, 20.00, '2025-03-01', NULL),
               ('AG-101M', 'L23', 'MS-SRV', 'Managed Server', 2, 150.00, '2025-03-01', NULL),
               ('AG-101M', 'L24', 'MS-SRV', 'Managed Server (added)', 0, 150.00, '2026-09-01', NULL),
               ('AG-102', 'L30', 'MS-WKS', 'Managed Workstation', 5, 40.00, '2024-01-01', NULL),
               ('AG-102', 'L31', 'M365-BP', 'Microsoft 365 Business Premium', 3, 22.00, '2024-01-01', NULL),
               ('AG-102', 'L32', 'MS-WKS', 'Workstation return', -1, 40.00, '2024-01-01', NULL),
               ('AG-103', 'L40', 'MS-WKS', 'Managed Workstation', 9, 40.00, '2023-01-01', NULL))
       v(agr, ext, code, name, qty, price, eff, cancel) ON v.agr = a.external_id;

-- Vendors: accounts and usage as syncs would have stored them.
INSERT INTO billrecon.vendor_accounts (integration_id, external_id, name, first_seen_at, last_seen_at)
SELECT i.id, v.ext, v.name, now(), now() FROM billrecon.integrations i
  JOIN (VALUES ('ninja', 'N1', 'Harbor Dental'), ('ninja', 'N2', 'Smith and Jones'), ('ninja', 'N9', 'Mystery Org'),
               ('m365', 'T1', 'harbordental.onmicrosoft.com'), ('m365', 'T2', 'smithjones.onmicrosoft.com'),
               ('pax8', 'P2', 'Smith & Jones Law'), ('datto', 'D1', 'Harbor Dental Group')) v(integ, ext, name)
    ON v.integ = i.name;
INSERT INTO billrecon.usage_records (integration_id, external_id, account_id, kind, product, product_name, quantity,
                                     purchased_quantity, device_class, os_name, device_name, serial_number, licensed,
                                     enabled, last_active_at, unit_cost, first_seen_at, last_seen_at)
SELECT va.integration_id, v.ext, va.id, v.kind, v.product, v.pname, v.qty, v.purchased, v.class, v.os, v.dev, v.serial,
       v.licensed, v.enabled, now() - make_interval(days => v.idle_days), v.cost, now(), now()
  FROM billrecon.vendor_accounts va
  JOIN (VALUES
    -- Harbor in NinjaOne: 11 desktops (one enrolled twice), 3 laptops, 3 servers
    ('N1', 'd1', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 11 Pro', 'HD-01', 'SER-1', NULL, NULL, 1, NULL),
    ('N1', 'd2', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 11 Pro', 'HD-01-OLD', 'SER-1', NULL, NULL, 2, NULL),
    ('N1', 'd3', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 11 Pro', 'HD-03', 'SER-3', NULL, NULL, 1, NULL),
    ('N1', 'd4', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 11 Pro', 'HD-04', 'SER-4', NULL, NULL, 1, NULL),
    ('N1', 'd5', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 11 Pro', 'HD-05', 'SER-5', NULL, NULL, 1, NULL),
    ('N1', 'd6', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 10 Pro', 'HD-06', 'SER-6', NULL, NULL, 1, NULL),
    ('N1', 'd7', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 10 Pro', 'HD-07', 'SER-7', NULL, NULL, 1, NULL),
    ('N1', 'd8', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 10 Pro', 'HD-08', 'SER-8', NULL, NULL, 1, NULL),
    ('N1', 'd9', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 10 Pro', 'HD-09', 'SER-9', NULL, NULL, 1, NULL),
    ('N1', 'd10', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 10 Pro', 'HD-10', 'SER-10', NULL, NULL, 1, NULL),
    ('N1', 'd11', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 10 Pro', 'HD-11', 'To Be Filled By O.E.M.', NULL, NULL, 1, NULL),
    ('N1', 'l1', 'device', NULL, NULL, 1, NULL, 'laptop', 'Windows 11 Pro', 'HD-L1', 'LAP-1', NULL, NULL, 40, NULL),
    ('N1', 'l2', 'device', NULL, NULL, 1, NULL, 'laptop', 'Windows 11 Pro', 'HD-L2', 'LAP-2', NULL, NULL, 1, NULL),
    ('N1', 'l3', 'device', NULL, NULL, 1, NULL, 'laptop', 'Windows 11 Pro', 'HD-L3', 'LAP-3', NULL, NULL, 1, NULL),
    ('N1', 's1', 'device', NULL, NULL, 1, NULL, 'server', 'Windows Server 2022', 'HD-DC01', 'SRV-1', NULL, NULL, 1, NULL),
    ('N1', 's2', 'device', NULL, NULL, 1, NULL, 'server', 'Windows Server 2022', 'HD-FS01', 'SRV-2', NULL, NULL, 1, NULL),
    ('N1', 's3', 'device', NULL, NULL, 1, NULL, 'server', 'Windows Server 2019', 'HD-APP01', 'SRV-3', NULL, NULL, 1, NULL),
    -- Smith & Jones in NinjaOne: 2 laptops no line bills (one reported twice, no serial)
    ('N2', 'sj1', 'device', NULL, NULL, 1, NULL, 'laptop', 'macOS 14', 'SJ-01', NULL, NULL, NULL, 1, NULL),
    ('N2', 'sj2', 'device', NULL, NULL, 1, NULL, 'laptop', 'macOS 14', 'sj-01.local', NULL, NULL, NULL, 1, NULL),
    -- Harbor's Datto RMM: HD-03 again (no serial: the same machine by host name) and a new desktop
    ('D1', 'dd1', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 11 Pro', 'hd-03.harbor.local', NULL, NULL, NULL, 1, NULL),
    ('D1', 'dd2', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 11 Pro', 'HD-99', NULL, NULL, NULL, 1, NULL),
    -- An account mapped to nobody
    ('N9', 'x1', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 10', 'X-01', 'X1', NULL, NULL, 1, NULL),
    ('N9', 'x2', 'device', NULL, NULL, 1, NULL, 'desktop', 'Windows 10', 'X-02', 'X2', NULL, NULL, 1, NULL),
    -- Harbor's Microsoft 365: licences and users
    ('T1', 'T1-SPB', 'licence', 'SPB', 'Microsoft 365 Business Premium', 13, 15, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    ('T1', 'T1-FLOW', 'licence', 'FLOW_FREE', 'Power Automate Free', 10, 10000, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    ('T1', 'T1-BB', 'licence', 'O365_BUSINESS_ESSENTIALS', 'Microsoft 365 Business Basic', 2, 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    ('T1', 'u1', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, true, true, 1, NULL),
    ('T1', 'u2', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, false, true, 1, NULL),
    -- Smith's Microsoft 365: 6 licensed users, 1 unlicensed, 1 disabled
    ('T2', 'T2-SPB', 'licence', 'SPB', 'Microsoft 365 Business Premium', 6, 8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    ('T2', 'v1', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, true, true, 30, NULL),
    ('T2', 'v2', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, true, true, 1, NULL),
    ('T2', 'v3', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, true, true, 1, NULL),
    ('T2', 'v4', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, true, true, 1, NULL),
    ('T2', 'v5', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, true, true, 1, NULL),
    ('T2', 'v6', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, true, true, 1, NULL),
    ('T2', 'v7', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, false, true, 1, NULL),
    ('T2', 'v8', 'user', NULL, NULL, 1, NULL, NULL, NULL, NULL, NULL, true, false, 90, NULL),
    -- Smith's Pax8 subscriptions
    ('P2', 'sub1', 'subscription', 'BP-NCE', 'Microsoft 365 Business Premium', 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 18.50),
    ('P2', 'sub2', 'subscription', 'EXO-P1', 'Exchange Online (Plan 1)', 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 3.20))
    v(acct, ext, kind, product, pname, qty, purchased, class, os, dev, serial, licensed, enabled, idle_days, cost)
    ON v.acct = va.external_id;
UPDATE billrecon.usage_records SET user_name = external_id || '@example.com' WHERE kind = 'user';

-- Mappings and rules.
SELECT billrecon.map_client('ninja', 'N1', '100'), billrecon.map_client('ninja', 'N2', '101'),
       billrecon.map_client('m365', 'T1', '100'), billrecon.map_client('m365', 'T2', '101'),
       billrecon.map_client('pax8', 'P2', '101'), billrecon.map_client('datto', 'D1', '100');
SELECT billrecon.map_product('MS-WKS', 'ninja', 'asset', '{"device_class": ["desktop", "laptop"]}') > 0 AS wks,
       billrecon.map_product('MS-SRV', 'ninja', 'asset', '{"device_class": ["server"]}') > 0 AS srv,
       billrecon.map_line_item('L4', 'ninja', 'asset', '{"device_class": ["server"]}', 2) > 0 AS bdr,
       billrecon.map_product('M365-BP', 'm365', 'licence', '{"skus": ["SPB"]}') > 0 AS bp,
       billrecon.map_line_item('L20', 'm365', 'licence', '{"skus": ["spb"], "count": "purchased"}') > 0 AS bp_purchased,
       billrecon.map_line_item('L21', 'm365', 'user', '{"users": "licensed"}') > 0 AS users,
       billrecon.map_line_item('L22', 'pax8', 'subscription', '{"products": ["business premium"]}') > 0 AS pax,
       billrecon.map_line_item('L8', 'pax8', 'custom_sql') > 0 AS custom,
       billrecon.map_line_item('L9', 'm365', 'manual') > 0 AS manual,
       billrecon.map_line_item('L10', 'ninja', 'manual', '{"compare_with": "ninja"}') > 0 AS manual_compared;
SELECT billrecon.ignore_line_item('L7', 'one-off onboarding fee');
SELECT billrecon.link_adjustment('L6', 'L5'), billrecon.link_adjustment('L13', 'L1');
SELECT billrecon.exclude_vendor_product('m365', 'FLOW_FREE', 'free SKU');

-- An account that is no client: ignored, it is neither unmapped nor reported (a mapped one must be unmapped first).
SELECT billrecon.add_integration('lab', 'ninjaone', 'https://eu.ninjarmm.com', '{"client_id":"a","client_secret":"b"}') > 0 AS lab;
INSERT INTO billrecon.vendor_accounts (integration_id, external_id, name, first_seen_at, last_seen_at)
SELECT i.id, 'LAB', 'Bluewave IT - Internal', now(), now() FROM billrecon.integrations i WHERE i.name = 'lab';
INSERT INTO billrecon.usage_records (integration_id, external_id, account_id, kind, quantity, device_class, device_name,
                                     first_seen_at, last_seen_at)
SELECT va.integration_id, 'lab1', va.id, 'device', 1, 'server', 'LAB-01', now(), now()
  FROM billrecon.vendor_accounts va WHERE va.external_id = 'LAB';
SELECT billrecon.ignore_vendor_account('ninja', 'N1', 'ours');
SELECT billrecon.ignore_vendor_account('lab', 'LAB', 'our own lab');
SELECT vendor_account_id FROM billrecon.unmapped_vendor_accounts ORDER BY 1;

-- Errors first.
SELECT billrecon.reconcile(NULL);

-- October 2026: lines in force on October 31. Spot checks flag a change of 3 or more (and half the quantity).
SET billrecon.spot_check_min_delta = 3;
SELECT billrecon.reconcile('2026-10-15') AS run \gset
SELECT period, period_start, period_end, psa_integration, run_by = current_user AS run_by_me, line_count,
       discrepancy_count, discrepancy_amount, settings ? 'billrecon.inactive_after' AS settings_kept
  FROM billrecon.reconcile_runs WHERE id = :run;
SELECT integration, kind, side, status FROM billrecon.reconcile_run_inputs WHERE run_id = :run ORDER BY integration;

-- Every line, every state and type.
SELECT line_item_id, product, state, type, integration, mode, invoiced_qty AS billed, adjustment_qty AS adj,
       expected_qty AS expected, counted_qty AS counted, unit_price, variance, amount, monthly_amount AS monthly,
       group_line_item_id AS grp, price_source AS price
  FROM billrecon.reconciled_lines WHERE run_id = :run AND row_kind = 'line'
 ORDER BY length(line_item_id), line_item_id;
SELECT line_item_id, cycle_start, cycle_end, billing_cycle, estimate_basis FROM billrecon.reconciled_lines
 WHERE run_id = :run AND (estimate_basis IS NOT NULL OR billing_cycle <> 'monthly') ORDER BY 1, 5;
SELECT line_item_id, explanation FROM billrecon.reconciled_lines WHERE run_id = :run AND row_kind = 'line'
 ORDER BY length(line_item_id), line_item_id;

-- Unmapped accounts and unaccounted usage.
SELECT row_kind, company, integration, vendor_account_id, usage_kind, product, counted_qty, unit_price, amount, type
  FROM billrecon.reconciled_lines WHERE run_id = :run AND row_kind <> 'line' ORDER BY row_kind, company, integration, product;
SELECT product, explanation, estimate_basis FROM billrecon.reconciled_lines
 WHERE run_id = :run AND row_kind <> 'line' ORDER BY row_kind, company, product;

-- The report views.
SELECT psa_company_id, company, line_item_id, product, integration, mode, invoiced_qty, counted_qty, unit_price, variance,
       amount, type
  FROM billrecon.discrepancies WHERE run_id = :run ORDER BY abs(amount) DESC NULLS LAST, company, line_item_id, product;
SELECT psa_company_id, company, seat_count, service_count, discrepancy_count, discrepancy_amount, absolute_amount,
       monthly_amount, billing_cycle, integrations, worst_integration_status
  FROM billrecon.reconciled_invoices WHERE run_id = :run ORDER BY absolute_amount DESC;
SELECT company, discrepancy_count, amount, absolute_amount, calculated, estimated, unmapped, unaccounted
  FROM billrecon.discrepancies_by_client WHERE run_id = :run ORDER BY company NULLS LAST;
SELECT product, integration, discrepancy_count, clients, variance, amount FROM billrecon.discrepancies_by_service
 WHERE run_id = :run ORDER BY product, integration;
SELECT company, agreement_id, billing_cycle, discrepancy_count, amount FROM billrecon.discrepancies_by_contract
 WHERE run_id = :run ORDER BY agreement_id;
SELECT psa_company_id, agreement_id, line_item_id, product, flag, detail FROM billrecon.flagged_services
 ORDER BY length(line_item_id), line_item_id, flag;
SELECT integration, vendor_account_id, psa_company_id, seat, kind, days_inactive, monthly_cost, billed_on_line_item_id
  FROM billrecon.inactive_seats ORDER BY integration, seat;
SET billrecon.inactive_after = '35d';
SELECT seat, days_inactive FROM billrecon.inactive_seats ORDER BY seat;
RESET billrecon.inactive_after;
SELECT psa_company_id, match_on, match_value, seats, extra_seats, integrations, devices, detail
  FROM billrecon.duplicate_seats ORDER BY psa_company_id, match_on;
SELECT psa_company_id, line_item_id, product, integration, unit_price, vendor_unit_cost, vendor_units, margin_per_unit,
       margin, margin_percent, at_or_below_cost
  FROM billrecon.margin ORDER BY line_item_id;
SELECT company, integration, vendor_account_id, seats FROM billrecon.client_integrations ORDER BY company, integration;
SELECT company, kind, count(*) AS seats, count(*) FILTER (WHERE excluded) AS excluded
  FROM billrecon.client_seats GROUP BY company, kind ORDER BY company, kind;
SELECT company, line_item_id, product, billing_cycle, state FROM billrecon.client_services
 WHERE psa_company_id = '101' ORDER BY line_item_id;

-- Change cards raised by the run.
SELECT card_id AS first_card FROM billrecon.change_cards ORDER BY card_id LIMIT 1 \gset
SELECT card_id - :first_card AS card, kind, psa_company_id, line_item_id, product, current_qty, proposed_qty, delta,
       amount, status, flags, effective_date = billrecon._default_effective_date() AS next_month
  FROM billrecon.change_cards ORDER BY card_id;

-- Decisions: bad input, bulk approval holds flagged cards back, force, dismiss, dates.
SELECT billrecon.approve(NULL);
SELECT billrecon.approve(ARRAY[:first_card, 999999]);
SELECT billrecon.dismiss(ARRAY[:first_card], '');
SELECT billrecon.set_effective_date(ARRAY[:first_card], NULL);
SELECT billrecon.approve(array_agg(card_id ORDER BY card_id)) AS approved FROM billrecon.change_cards
 WHERE status = 'pending' AND psa_company_id = '100';
SELECT line_item_id, product, status, flags FROM billrecon.change_cards WHERE psa_company_id = '100' ORDER BY card_id;
SELECT billrecon.approve(ARRAY(SELECT card_id FROM billrecon.change_cards WHERE line_item_id = 'L20'),
                         effective_date => '2026-10-16', force => true) AS forced;
SELECT billrecon.dismiss(ARRAY(SELECT card_id FROM billrecon.change_cards WHERE line_item_id = 'L21'),
                         'two users leave next week') AS dismissed;
SELECT billrecon.set_effective_date(ARRAY(SELECT card_id FROM billrecon.change_cards WHERE line_item_id = 'L3'),
                                    '2026-10-16') AS dated;
SELECT billrecon.approve(ARRAY(SELECT card_id FROM billrecon.change_cards WHERE line_item_id IN ('L3', 'L20'))) AS again;
SELECT billrecon.note_card(ARRAY(SELECT card_id FROM billrecon.change_cards WHERE line_item_id = 'L4'),
                           'checked with the client', ARRAY['bdr']) AS noted;
SELECT billrecon.note_line_item('L21', 'headcount shrinks in November', ARRAY['watch']);
SELECT line_item_id, status, effective_date, dismiss_reason, decided_by = current_user AS decided_by_me, note, tags
  FROM billrecon.change_cards WHERE kind = 'quantity' ORDER BY card_id;

-- Proration preview of approved cards.
SELECT line_item_id, effective_date, cycle_start, cycle_end, unit_price, delta, proration_supported, prorated_amount, basis
  FROM billrecon.change_card_proration ORDER BY line_item_id;

-- The next run: decided cards are not raised again, a dismissed one stays dismissed while its numbers hold.
SELECT billrecon.reconcile('2026-10-20') AS run2 \gset
SELECT line_item_id, product, status, count(*) AS cards FROM billrecon.change_cards
 GROUP BY line_item_id, product, status ORDER BY line_item_id NULLS LAST, product;
-- One more user leaves: the dismissed card's numbers change, so it comes back.
UPDATE billrecon.usage_records SET enabled = false WHERE external_id = 'v6';
SELECT billrecon.reconcile('2026-10-21') AS run3 \gset
SELECT line_item_id, current_qty, proposed_qty, status, note FROM billrecon.change_cards WHERE line_item_id = 'L21'
 ORDER BY card_id;
SELECT psa_company_id, company, last_run_id = :run3 AS last_is_run3, previous_run_id = :run2 AS previous_is_run2,
       last_discrepancy_amount, previous_discrepancy_amount, amount_change, seat_change
  FROM billrecon.reconcile_run_comparison ORDER BY psa_company_id;

-- One client again, quickly: the same numbers for it, nothing of the others, last_run_id() still the full run.
SELECT billrecon.reconcile('2026-10-21', '101') AS one \gset
SELECT client_external_id, line_count FROM billrecon.reconcile_runs WHERE id = :one;
SELECT count(*) AS same_rows FROM billrecon.reconcile_results a JOIN billrecon.reconcile_results b
    ON b.run_id = :run3 AND b.line_item_external_id = a.line_item_external_id
   AND b.variance IS NOT DISTINCT FROM a.variance AND b.amount IS NOT DISTINCT FROM a.amount
 WHERE a.run_id = :one;
SELECT DISTINCT company FROM billrecon.reconcile_results WHERE run_id = :one;
SELECT billrecon.last_run_id() = :run3 AS last_full_run;
SELECT billrecon.reconcile('2026-10-21', '999');

-- Runs of other months: November adds L11 (a server from November 1).
SELECT billrecon.reconcile('2026-11-03') AS nov \gset
SELECT line_item_id, expected_qty, counted_qty, variance, amount FROM billrecon.reconciled_lines
 WHERE run_id = :nov AND product = 'MS-SRV' ORDER BY line_item_id;

-- Audit: decisions with role, before and after.
SELECT object, action, count(*) FROM billrecon.audit_log GROUP BY object, action ORDER BY object, action;
SELECT role = current_user AS by_me, changed, before->>'status' AS before, after->>'status' AS after
  FROM billrecon.audit_log WHERE object = 'proposed_changes' AND action = 'update' AND 'status' = ANY (changed)
 ORDER BY id LIMIT 3;

-- Roles: a reader reads reports and cannot decide; an operator decides but cannot alter the audit.
SET ROLE billrecon_reader;
SELECT count(*) > 0 AS reader_reads FROM billrecon.discrepancies;
SELECT count(*) > 0 AS reader_reads_cards FROM billrecon.change_cards;
SELECT billrecon.approve(ARRAY[:first_card]);
SELECT billrecon.reconcile();
RESET ROLE;
SET ROLE billrecon_operator;
SELECT billrecon.dismiss(ARRAY(SELECT card_id FROM billrecon.change_cards WHERE line_item_id = 'L3'), 'operator says no');
SELECT role, changed FROM billrecon.audit_log ORDER BY id DESC LIMIT 1;
DELETE FROM billrecon.audit_log;
UPDATE billrecon.proposed_changes SET status = 'approved';
RESET ROLE;

SELECT billrecon.unignore_vendor_account('lab', 'LAB') AS unignored, billrecon.unignore_vendor_account('lab', 'LAB') AS again;
SELECT count(billrecon.drop_integration(name)::text) AS dropped FROM billrecon.integrations;
SELECT count(*) AS runs_kept FROM billrecon.reconcile_runs;
SELECT count(*) AS results_kept, count(line_item_id) AS still_linked FROM billrecon.reconcile_results;
