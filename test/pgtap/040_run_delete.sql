-- Deleting reconcile runs: a run's result rows and clients carry no foreign
-- key to it (130_reconcile_tables.sql), nor does a card's last_run_id;
-- billrecon._cascade_deleted_runs does what ON DELETE CASCADE / SET NULL
-- did, and leaves the rows of the runs kept alone.
BEGIN;
SELECT plan(8);

INSERT INTO billrecon.reconcile_runs (id, period, period_start, period_end, run_by)
VALUES (-1, '2026-10-15', '2026-10-01', '2026-10-31', 'tap'), (-2, '2026-11-15', '2026-11-01', '2026-11-30', 'tap');
INSERT INTO billrecon.reconcile_results (run_id, row_kind, state)
SELECT r, 'line', 'unmapped' FROM unnest(ARRAY[-1, -1, -2]) AS r;
INSERT INTO billrecon.reconcile_run_clients (run_id, company_external_id, company, seat_count, devices, users,
                                             licences, subscriptions)
VALUES (-1, 'c1', 'Client 1', 0, 0, 0, 0, 0), (-2, 'c1', 'Client 1', 0, 0, 0, 0, 0);
INSERT INTO billrecon.proposed_changes (id, kind, run_id, last_run_id, current_qty, proposed_qty)
VALUES (-1, 'quantity', -1, -1, 1, 2), (-2, 'quantity', -1, -2, 1, 3);

DELETE FROM billrecon.reconcile_runs WHERE id = -1;
SELECT is((SELECT count(*) FROM billrecon.reconcile_results WHERE run_id = -1), 0::bigint,
          'a deleted run''s result rows go with it');
SELECT is((SELECT count(*) FROM billrecon.reconcile_results WHERE run_id = -2), 1::bigint, 'another run''s stay');
SELECT is((SELECT count(*) FROM billrecon.reconcile_run_clients WHERE run_id = -1), 0::bigint,
          'a deleted run''s clients go with it');
SELECT is((SELECT count(*) FROM billrecon.reconcile_run_clients WHERE run_id = -2), 1::bigint,
          'another run''s stay');
SELECT is((SELECT last_run_id FROM billrecon.proposed_changes WHERE id = -1), NULL::bigint,
          'a card forgets the deleted run it was last seen by');
SELECT is((SELECT last_run_id FROM billrecon.proposed_changes WHERE id = -2), -2::bigint,
          'a card seen by a kept run keeps it');
SELECT is((SELECT count(*) FROM billrecon.audit_log
            WHERE object = 'proposed_changes' AND object_id IN ('-1', '-2') AND action = 'update'
              AND NOT (changed <@ ARRAY['run_id'])), 0::bigint,
          'forgetting the run is not audited as a change to the cards');

SET LOCAL client_min_messages = warning;   -- (the cascade notices)
TRUNCATE billrecon.reconcile_runs CASCADE;
SELECT is((SELECT count(*) FROM billrecon.reconcile_results) + (SELECT count(*) FROM billrecon.reconcile_run_clients),
          0::bigint, 'truncating the runs truncates their rows and clients');

SELECT * FROM finish();
ROLLBACK;
