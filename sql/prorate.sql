-- Proration and billing cycles: billrecon.prorate(), billrecon.billing_cycle(),
-- billrecon.monthly_amount(). Expected amounts are worked out by hand in the
-- comments (docs/proration.md has the rules).
\set SHOW_CONTEXT never
\set VERBOSITY default
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS billrecon;
RESET client_min_messages;
SET datestyle = 'ISO, YMD';

-- The three functions: pure, immutable, parallel safe, commented, and the
-- stable argument names.
SELECT p.oid::regprocedure AS function, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS returns, p.provolatile, p.proisstrict, p.proparallel,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc p
 WHERE p.pronamespace = 'billrecon'::regnamespace AND p.proname IN ('prorate', 'billing_cycle', 'monthly_amount')
 ORDER BY 1;

-- Every billrecon role may call them (operator and admin through reader).
SELECT r.rolname,
       has_function_privilege(r.rolname, 'billrecon.prorate(numeric,numeric,date,date,date)', 'EXECUTE') AS prorate,
       has_function_privilege(r.rolname, 'billrecon.billing_cycle(text,date,date)', 'EXECUTE') AS billing_cycle,
       has_function_privilege(r.rolname, 'billrecon.monthly_amount(numeric,text)', 'EXECUTE') AS monthly_amount
  FROM pg_roles r WHERE r.rolname LIKE 'billrecon\_%' ORDER BY 1;
SELECT p.proname, p.proacl::text ~ '(^|[{,])=X' AS public_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'billrecon'::regnamespace AND p.proname IN ('prorate', 'billing_cycle', 'monthly_amount')
 ORDER BY 1;

-- ---- prorate ------------------------------------------------------------------

-- Hand cases; every amount has exactly two decimals.
SELECT c.label, billrecon.prorate(c.unit_price, c.qty_delta, c.effective_date, c.cycle_start, c.cycle_end) AS amount,
       billrecon.prorate(c.unit_price, c.qty_delta, c.effective_date, c.cycle_start, c.cycle_end) = c.expected AS ok,
       scale(billrecon.prorate(c.unit_price, c.qty_delta, c.effective_date, c.cycle_start, c.cycle_end)) AS scale
  FROM (VALUES
    -- March 2026, 31 days. Start: 45.00 x 3 = 135.00.
    (1, 'start of cycle', 45.00, 3, date '2026-03-01', date '2026-03-01', date '2026-03-31', 135.00),
    -- 135 x 16 (Mar 16..31) / 31 = 2160 / 31 = 69.677... -> 69.68
    (2, 'mid cycle', 45.00, 3, '2026-03-16', '2026-03-01', '2026-03-31', 69.68),
    -- 135 x 1 / 31 = 4.354... -> 4.35
    (3, 'last day', 45.00, 3, '2026-03-31', '2026-03-01', '2026-03-31', 4.35),
    -- April, 30 days: 22 x 2 x 10 (Apr 21..30) / 30 = 14.666... -> 14.67
    (4, '30-day month', 22.00, 2, '2026-04-21', '2026-04-01', '2026-04-30', 14.67),
    -- Feb 2027, 28 days: 29.99 x 9 (Feb 20..28) / 28 = 269.91 / 28 = 9.639... -> 9.64
    (5, 'February 2027 (28 days)', 29.99, 1, '2027-02-20', '2027-02-01', '2027-02-28', 9.64),
    -- Feb 2028, 29 days: 29.99 x 10 (Feb 20..29) / 29 = 299.90 / 29 = 10.341... -> 10.34
    (6, 'February 2028 (29 days)', 29.99, 1, '2028-02-20', '2028-02-01', '2028-02-29', 10.34),
    -- Quarterly from Feb 15: 89 days; Apr 1..May 14 = 44: 600 x 44 / 89 = 26400 / 89 = 296.629... -> 296.63
    (7, 'quarterly', 300.00, 2, '2026-04-01', '2026-02-15', '2026-05-14', 296.63),
    -- 2026, 365 days; Jul 1..Dec 31 = 184: 1200 x 184 / 365 = 604.931... -> 604.93
    (8, 'annual', 1200, 1, '2026-07-01', '2026-01-01', '2026-12-31', 604.93),
    -- 2028, 366 days: 220800 / 366 = 603.278... -> 603.28
    (9, 'annual, leap year', 1200, 1, '2028-07-01', '2028-01-01', '2028-12-31', 603.28),
    -- A credit: -135 x 16 / 31 = -69.677... -> -69.68
    (10, 'negative delta', 45.00, -3, '2026-03-16', '2026-03-01', '2026-03-31', -69.68),
    -- 0.15 x 1 / 30 = 0.005 exactly: away from zero -> 0.01 (half-even: 0.00)
    (11, 'tie, positive', 0.15, 1, '2026-04-30', '2026-04-01', '2026-04-30', 0.01),
    (12, 'tie, negative', 0.15, -1, '2026-04-30', '2026-04-01', '2026-04-30', -0.01),
    -- 1.65 x 15 (Apr 16..30) / 30 = 0.825 exactly -> 0.83 / -0.83
    (13, 'tie mid cycle, positive', 1.65, 1, '2026-04-16', '2026-04-01', '2026-04-30', 0.83),
    (14, 'tie mid cycle, negative', 1.65, -1, '2026-04-16', '2026-04-01', '2026-04-30', -0.83),
    -- 12.3456789 x 7 x 22 (Mar 10..31) / 31 = 1901.2345506 / 31 = 61.330... -> 61.33
    (15, 'many decimals', 12.3456789, 7, '2026-03-10', '2026-03-01', '2026-03-31', 61.33),
    -- 0.333333 x 3 = 0.999999 -> 1.00: multiplied first, rounded once
    (16, 'rounded once', 0.333333, 3, '2026-03-01', '2026-03-01', '2026-03-31', 1.00),
    -- 4.995 x 0.5 = 2.4975 -> 2.50: fractional quantity
    (17, 'fractional quantity', 4.995, 0.5, '2026-03-01', '2026-03-01', '2026-03-31', 2.50),
    -- 19.99 x 1,000,000 x 16 / 31 = 319,840,000 / 31 = 10,317,419.354... -> 10,317,419.35
    (18, 'large quantity', 19.99, 1000000, '2026-03-16', '2026-03-01', '2026-03-31', 10317419.35),
    -- 0.01 x 123456789012345678901 x 15 / 30 = 617283945061728394.505 -> .51
    (19, 'beyond double precision', 0.01, 123456789012345678901, '2026-04-16', '2026-04-01', '2026-04-30',
         617283945061728394.51),
    (20, 'zero delta', 45.00, 0, '2026-03-16', '2026-03-01', '2026-03-31', 0.00),
    -- One-day cycle: the full 9.99 x 3 = 29.97
    (21, 'one-day cycle', 9.99, 3, '2026-03-16', '2026-03-16', '2026-03-16', 29.97)
  ) c(n, label, unit_price, qty_delta, effective_date, cycle_start, cycle_end, expected)
 ORDER BY c.n;

-- Named arguments (the stable SQL surface).
SELECT billrecon.prorate(unit_price => 45.00, qty_delta => 3, effective_date => '2026-03-16',
                         cycle_start => '2026-03-01', cycle_end => '2026-03-31');

-- With the cycle from billrecon.billing_cycle(): a quarterly agreement that
-- started 2026-02-15, two more seats from 2026-04-01 (the example above).
SELECT cy.cycle_start, cy.cycle_end,
       billrecon.prorate(300.00, 2, '2026-04-01', cy.cycle_start, cy.cycle_end) AS amount
  FROM billrecon.billing_cycle('quarterly', '2026-04-01', '2026-02-15') cy;

-- NULL in, NULL out (STRICT).
SELECT billrecon.prorate(NULL, 3, '2026-03-16', '2026-03-01', '2026-03-31') IS NULL AS null_price,
       billrecon.prorate(45, NULL, '2026-03-16', '2026-03-01', '2026-03-31') IS NULL AS null_delta,
       billrecon.prorate(45, 3, NULL, '2026-03-01', '2026-03-31') IS NULL AS null_effective,
       billrecon.prorate(45, 3, '2026-03-16', NULL, '2026-03-31') IS NULL AS null_start,
       billrecon.prorate(45, 3, '2026-03-16', '2026-03-01', NULL) IS NULL AS null_end;

-- Errors.
SELECT billrecon.prorate(45.00, 3, '2026-02-28', '2026-03-01', '2026-03-31');
SELECT billrecon.prorate(45.00, 3, '2026-04-01', '2026-03-01', '2026-03-31');
SELECT billrecon.prorate(45.00, 3, '2026-03-15', '2026-03-31', '2026-03-01');
SELECT billrecon.prorate(10, 1, '0002-12-31 BC', '0001-12-01 BC', '0001-12-31 BC');
SELECT billrecon.prorate('NaN', 3, '2026-03-15', '2026-03-01', '2026-03-31');
SELECT billrecon.prorate(45.00, 'Infinity', '2026-03-15', '2026-03-01', '2026-03-31');
SELECT billrecon.prorate(45.00, 3, '2026-03-15', '2026-03-01', 'infinity');
-- The error carries its SQLSTATE (for PL/pgSQL handlers).
DO $$
BEGIN
  PERFORM billrecon.prorate(45.00, 3, '2026-04-01', '2026-03-01', '2026-03-31');
EXCEPTION WHEN invalid_parameter_value THEN
  RAISE NOTICE 'caught %', SQLSTATE;
END
$$;

-- ---- billing_cycle --------------------------------------------------------------

SELECT c.label, cy.cycle_start, cy.cycle_end, cy.cycle_end - cy.cycle_start + 1 AS days
  FROM (VALUES
    (1, 'quarterly from Feb 15, on the anchor', 'quarterly', date '2026-02-15', date '2026-02-15'),
    (2, 'quarterly from Feb 15, last day', 'quarterly', '2026-05-14', '2026-02-15'),
    (3, 'quarterly from Feb 15, next cycle', 'quarterly', '2026-05-15', '2026-02-15'),
    (4, 'quarterly from Feb 15, across the year', 'quarterly', '2026-12-01', '2026-02-15'),
    (5, 'quarterly from Feb 15, before the anchor', 'quarterly', '2026-01-01', '2026-02-15'),
    (6, 'monthly from Jan 31, in February', 'monthly', '2026-02-10', '2026-01-31'),
    (7, 'monthly from Jan 31, Feb 28 starts', 'monthly', '2026-02-28', '2026-01-31'),
    (8, 'monthly from Jan 31, Mar 31 starts', 'monthly', '2026-03-31', '2026-01-31'),
    (9, 'monthly from Jan 31, leap February', 'monthly', '2028-02-29', '2028-01-31'),
    (10, 'annual from Feb 29 2024, in 2025', 'annual', '2025-03-01', '2024-02-29'),
    (11, 'annual from Jul 1, leap day inside', 'annual', '2027-12-25', '2026-07-01'),
    (12, 'calendar month, Feb 2027', 'monthly', '2027-02-10', NULL),
    (13, 'calendar month, Feb 2028', 'monthly', '2028-02-10', NULL),
    (14, 'calendar quarter', 'quarterly', '2026-05-20', NULL),
    (15, 'calendar year', 'annual', '2028-06-15', NULL),
    (16, 'other: calendar month, anchor ignored', 'other', '2026-05-20', '2026-02-15'),
    (17, 'unknown: calendar month', 'unknown', '2027-02-10', NULL),
    (18, 'case ignored', 'Quarterly', '2026-05-20', NULL)
  ) c(n, label, kind, on_date, anchor)
  CROSS JOIN LATERAL billrecon.billing_cycle(c.kind, c.on_date, c.anchor) cy
 ORDER BY c.n;

-- Default anchor, named arguments, NULL handling.
SELECT * FROM billrecon.billing_cycle('quarterly', '2026-12-31');
SELECT * FROM billrecon.billing_cycle(billing_cycle => 'monthly', on_date => '2026-03-15', anchor => '2026-01-31');
SELECT cycle_start IS NULL AND cycle_end IS NULL AS all_null FROM billrecon.billing_cycle(NULL, '2026-03-15');
SELECT cycle_start IS NULL AND cycle_end IS NULL AS all_null FROM billrecon.billing_cycle('monthly', NULL);
SELECT billrecon.billing_cycle('monthly', '2026-03-15') AS as_record;

-- Errors.
SELECT * FROM billrecon.billing_cycle('weekly', '2026-03-15');
SELECT * FROM billrecon.billing_cycle('monthly', '-infinity');
SELECT * FROM billrecon.billing_cycle('monthly', '2026-03-15', 'infinity');
SELECT * FROM billrecon.billing_cycle('annual', '5874897-12-31', '5874897-12-31');

-- ---- monthly_amount -------------------------------------------------------------

SELECT c.amount, c.kind, billrecon.monthly_amount(c.amount, c.kind) AS monthly,
       billrecon.monthly_amount(c.amount, c.kind) = c.expected AS ok
  FROM (VALUES
    (1, 135.00, 'monthly', 135.00),
    (2, 12.345, 'monthly', 12.35),         -- tie
    (3, 300.00, 'quarterly', 100.00),
    (4, 200, 'quarterly', 66.67),          -- 66.666...
    (5, -200, 'quarterly', -66.67),
    (6, 0.015, 'quarterly', 0.01),         -- 0.005: tie
    (7, -0.015, 'quarterly', -0.01),
    (8, 1000, 'annual', 83.33),            -- 83.333...
    (9, 0.06, 'annual', 0.01),             -- 0.005: tie
    (10, 1234.56, 'other', 1234.56),
    (11, 1234.56, 'unknown', 1234.56)
  ) c(n, amount, kind, expected)
 ORDER BY c.n;
SELECT billrecon.monthly_amount(NULL, 'annual') IS NULL AS null_amount,
       billrecon.monthly_amount(100, NULL) IS NULL AS null_cycle;
SELECT billrecon.monthly_amount(100, 'biweekly');
SELECT billrecon.monthly_amount('-Infinity', 'annual');
