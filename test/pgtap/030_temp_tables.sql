-- reconcile() (SECURITY DEFINER) works in temporary tables of the session:
-- a table of the same name the caller created beforehand (its triggers,
-- defaults or rules would run with the definer's rights) is refused with
-- 42P07, never written to.
BEGIN;
SELECT plan(6);

SELECT billrecon.add_integration('tap_cw', 'connectwise', 'https://api-na.myconnectwise.net/v4_6_release/apis/3.0',
  '{"company_id":"a","public_key":"b","private_key":"c","client_id":"d"}', is_default_psa => true);
CREATE ROLE tap_temp_operator;
GRANT billrecon_operator TO tap_temp_operator;
SET ROLE tap_temp_operator;
SET client_min_messages = error;

CREATE TEMP TABLE billrecon_replaced_lines (old_id bigint, new_id bigint);
SELECT throws_ok($$SELECT billrecon.reconcile('2026-10-01')$$, '42P07',
  'a temporary relation "billrecon_replaced_lines" that billrecon did not create exists in this session',
  'a caller''s billrecon_replaced_lines is refused');
DROP TABLE pg_temp.billrecon_replaced_lines;

CREATE TEMP TABLE billrecon_run_rows (id bigint);
SELECT throws_ok($$SELECT billrecon.reconcile('2026-10-01')$$, '42P07',
  'a temporary relation "billrecon_run_rows" that billrecon did not create exists in this session',
  'a caller''s billrecon_run_rows is refused');
DROP TABLE pg_temp.billrecon_run_rows;

CREATE TEMP TABLE billrecon_group_counts (psa_company_id bigint);
SELECT throws_ok($$SELECT billrecon.reconcile('2026-10-01')$$, '42P07',
  'a temporary relation "billrecon_group_counts" that billrecon did not create exists in this session',
  'a caller''s billrecon_group_counts is refused (the C++ counting pass)');
DROP TABLE pg_temp.billrecon_group_counts;

CREATE TEMP TABLE billrecon_card_candidates (result_id bigint);
SELECT throws_ok($$SELECT billrecon.reconcile('2026-10-01')$$, '42P07',
  'a temporary relation "billrecon_card_candidates" that billrecon did not create exists in this session',
  'a caller''s billrecon_card_candidates is refused');
DROP TABLE pg_temp.billrecon_card_candidates;

SELECT lives_ok($$SELECT billrecon.reconcile('2026-10-01')$$, 'reconcile runs once they are gone');
SELECT lives_ok($$SELECT billrecon.reconcile('2026-10-01')$$, 'and again, reusing its own working tables');

RESET ROLE;
SELECT * FROM finish();
ROLLBACK;
