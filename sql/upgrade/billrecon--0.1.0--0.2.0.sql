-- billrecon 0.1.0 -> 0.2.0, run by ALTER EXTENSION billrecon UPDATE.
-- Every schema change between the frozen 0.1.0 script (billrecon--0.1.0.sql,
-- tag v0.1.0) and sql/install/*.sql goes here as well, so that an updated
-- database ends exactly where a fresh CREATE EXTENSION does; test/e2e/
-- test_upgrade.py compares the two (test/bin/schema-fingerprint.sql) and
-- prints every difference. docs/upgrading.md: how to write this file.
\echo Use "ALTER EXTENSION billrecon UPDATE TO '0.2.0'" to load this file. \quit

-- (no schema change yet)
