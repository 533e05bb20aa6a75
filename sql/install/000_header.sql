-- billrecon install script, assembled by the Makefile from sql/install/*.sql
-- in name order. Do not edit the assembled file; edit the fragments.
\echo Use "CREATE EXTENSION billrecon" to load this file. \quit

COMMENT ON SCHEMA billrecon IS
  'billrecon: MSP billing reconciliation. PSA agreements and line items, vendor accounts and usage, '
  'the mapping between them, reconciliation runs and their change cards. See docs/sql-reference.md.';
