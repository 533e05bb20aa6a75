-- Client mapping: (integration, vendor account) -> PSA company.

CREATE TABLE billrecon.client_mappings (
  vendor_account_id bigint PRIMARY KEY REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  psa_company_id    bigint NOT NULL REFERENCES billrecon.psa_companies (id) ON DELETE CASCADE,
  source            text NOT NULL CHECK (source IN ('manual', 'suggestion')),
  score             numeric(4, 3) CHECK (score BETWEEN 0 AND 1),
  evidence          text,
  mapped_by         name NOT NULL DEFAULT current_user,
  mapped_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_mappings_company ON billrecon.client_mappings (psa_company_id);
COMMENT ON TABLE billrecon.client_mappings IS
  'Which PSA company each vendor account belongs to. Usage of an unmapped account cannot be reconciled (it shows as '
  'unmapped). Set by billrecon.map_client() or billrecon.confirm_client_matches().';
COMMENT ON COLUMN billrecon.client_mappings.vendor_account_id IS 'The vendor account (billrecon.vendor_accounts.id); one mapping each';
COMMENT ON COLUMN billrecon.client_mappings.psa_company_id IS 'The PSA company it belongs to (billrecon.psa_companies.id)';
COMMENT ON COLUMN billrecon.client_mappings.source IS 'manual (billrecon.map_client) or suggestion (confirmed from billrecon.client_match_suggestions)';
COMMENT ON COLUMN billrecon.client_mappings.score IS 'Score of the confirmed suggestion; null for manual mappings';
COMMENT ON COLUMN billrecon.client_mappings.evidence IS 'Why the suggestion was made; null for manual mappings';
COMMENT ON COLUMN billrecon.client_mappings.mapped_by IS 'Role that mapped or confirmed it';
COMMENT ON COLUMN billrecon.client_mappings.mapped_at IS 'When';

CREATE TABLE billrecon.client_match_candidates (
  vendor_account_id bigint PRIMARY KEY REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  psa_company_id    bigint NOT NULL REFERENCES billrecon.psa_companies (id) ON DELETE CASCADE,
  score             numeric(4, 3) NOT NULL CHECK (score BETWEEN 0 AND 1),
  evidence          text NOT NULL,
  suggested_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE billrecon.client_match_candidates IS
  'Suggested client matches waiting for confirmation, made by billrecon.suggest_client_matches(); read them through '
  'billrecon.client_match_suggestions';
COMMENT ON COLUMN billrecon.client_match_candidates.vendor_account_id IS 'The unmapped vendor account';
COMMENT ON COLUMN billrecon.client_match_candidates.psa_company_id IS 'The PSA company suggested for it';
COMMENT ON COLUMN billrecon.client_match_candidates.score IS 'Confidence from 0 to 1';
COMMENT ON COLUMN billrecon.client_match_candidates.evidence IS 'Why, in words: name and domain evidence, ambiguity';
COMMENT ON COLUMN billrecon.client_match_candidates.suggested_at IS 'When it was suggested';

CREATE TABLE billrecon.client_match_rejections (
  vendor_account_id bigint NOT NULL REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  psa_company_id    bigint NOT NULL REFERENCES billrecon.psa_companies (id) ON DELETE CASCADE,
  reason            text,
  rejected_by       name NOT NULL DEFAULT current_user,
  rejected_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (vendor_account_id, psa_company_id)
);
COMMENT ON TABLE billrecon.client_match_rejections IS 'Pairs a user rejected: never suggested again';
COMMENT ON COLUMN billrecon.client_match_rejections.vendor_account_id IS 'The vendor account';
COMMENT ON COLUMN billrecon.client_match_rejections.psa_company_id IS 'The PSA company it must not be matched to';
COMMENT ON COLUMN billrecon.client_match_rejections.reason IS 'Why, if given';
COMMENT ON COLUMN billrecon.client_match_rejections.rejected_by IS 'Role that rejected it';
COMMENT ON COLUMN billrecon.client_match_rejections.rejected_at IS 'When';

CREATE TABLE billrecon.ignored_vendor_accounts (
  vendor_account_id bigint PRIMARY KEY REFERENCES billrecon.vendor_accounts (id) ON DELETE CASCADE,
  reason            text,
  ignored_by        name NOT NULL DEFAULT current_user,
  ignored_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE billrecon.ignored_vendor_accounts IS
  'Vendor accounts that are no client (the MSP''s own tenant or organization, a lab, a "deleted devices" site): never '
  'suggested, never listed as unmapped, their usage never reported. Set by billrecon.ignore_vendor_account().';
COMMENT ON COLUMN billrecon.ignored_vendor_accounts.vendor_account_id IS 'The account (billrecon.vendor_accounts.id)';
COMMENT ON COLUMN billrecon.ignored_vendor_accounts.reason IS 'Why it is ignored';
COMMENT ON COLUMN billrecon.ignored_vendor_accounts.ignored_by IS 'Role that ignored it';
COMMENT ON COLUMN billrecon.ignored_vendor_accounts.ignored_at IS 'When';

CREATE VIEW billrecon.client_match_suggestions AS
SELECT i.name AS integration,
       va.external_id AS vendor_account_id,
       va.name AS vendor_account_name,
       pc.external_id AS psa_company_id,
       pc.name AS psa_company_name,
       c.score,
       c.evidence,
       c.suggested_at
  FROM billrecon.client_match_candidates c
  JOIN billrecon.vendor_accounts va ON va.id = c.vendor_account_id
  JOIN billrecon.integrations i ON i.id = va.integration_id
  JOIN billrecon.psa_companies pc ON pc.id = c.psa_company_id
 WHERE va.removed_at IS NULL AND pc.removed_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = c.vendor_account_id);
COMMENT ON VIEW billrecon.client_match_suggestions IS
  'Suggested matches of unmapped vendor accounts to PSA companies, best evidence first when ordered by score DESC. '
  'Confirm with billrecon.confirm_client_matches(min_score), fix with billrecon.map_client(), refuse with '
  'billrecon.reject_client_match().';
COMMENT ON COLUMN billrecon.client_match_suggestions.integration IS 'Vendor integration of the account';
COMMENT ON COLUMN billrecon.client_match_suggestions.vendor_account_id IS 'The vendor''s id of the account';
COMMENT ON COLUMN billrecon.client_match_suggestions.vendor_account_name IS 'The account''s name at the vendor';
COMMENT ON COLUMN billrecon.client_match_suggestions.psa_company_id IS 'The PSA''s id of the suggested company';
COMMENT ON COLUMN billrecon.client_match_suggestions.psa_company_name IS 'The suggested company''s name in the PSA';
COMMENT ON COLUMN billrecon.client_match_suggestions.score IS 'Confidence from 0 to 1; billrecon.recommended_match_threshold() is the documented default for confirming';
COMMENT ON COLUMN billrecon.client_match_suggestions.evidence IS 'Why the match was suggested, in words';
COMMENT ON COLUMN billrecon.client_match_suggestions.suggested_at IS 'When it was suggested';

-- Resolves (integration name, vendor account external id) to the account, or raises.
CREATE FUNCTION billrecon._vendor_account(integration text, vendor_account_id text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $va$
DECLARE
  v_integration integer := billrecon._integration_id(integration);
  v_id bigint;
BEGIN
  SELECT va.id INTO v_id FROM billrecon.vendor_accounts va
   WHERE va.integration_id = v_integration AND va.external_id = vendor_account_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('vendor account "%s" of integration "%s" does not exist', vendor_account_id, integration),
      DETAIL = 'vendor_account_id is the id the vendor uses (billrecon.vendor_accounts.external_id).',
      HINT = format('billrecon.unmapped_vendor_accounts lists the unmapped accounts of "%s"; sync it if the account is new.', integration);
  END IF;
  RETURN v_id;
END
$va$;
COMMENT ON FUNCTION billrecon._vendor_account(text, text) IS 'Internal: the vendor account with that external id in that integration, or an error';

-- The default PSA integration, or an error: clients and line items are its.
CREATE FUNCTION billrecon._default_psa()
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $dp$
DECLARE
  v_psa integer;
BEGIN
  SELECT i.id INTO v_psa FROM billrecon.integrations i WHERE i.is_default_psa;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = 'there is no default PSA',
      DETAIL = 'Clients and line items are those of the default PSA integration.',
      HINT = 'SELECT billrecon.set_default_psa(''name'') names it.';
  END IF;
  RETURN v_psa;
END
$dp$;
COMMENT ON FUNCTION billrecon._default_psa() IS 'Internal: the id of the default PSA integration, or an error';

-- Resolves a PSA company external id (in the default PSA) to its row, or raises.
CREATE FUNCTION billrecon._psa_company(psa_company_id text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $pc$
DECLARE
  v_psa integer := billrecon._default_psa();
  v_id bigint;
BEGIN
  SELECT c.id INTO v_id FROM billrecon.psa_companies c
   WHERE c.integration_id = v_psa AND c.external_id = psa_company_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('PSA company "%s" does not exist', psa_company_id),
      DETAIL = 'psa_company_id is the id the default PSA uses (billrecon.psa_companies.external_id).',
      HINT = 'SELECT external_id, name FROM billrecon.psa_companies lists them; sync the PSA if it is new.';
  END IF;
  RETURN v_id;
END
$pc$;
COMMENT ON FUNCTION billrecon._psa_company(text) IS 'Internal: the default PSA''s company with that external id, or an error';

CREATE FUNCTION billrecon.map_client(integration text, vendor_account_id text, psa_company_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $map$
DECLARE
  v_account bigint := billrecon._vendor_account(integration, vendor_account_id);
  v_company bigint := billrecon._psa_company(psa_company_id);
BEGIN
  INSERT INTO billrecon.client_mappings AS m (vendor_account_id, psa_company_id, source, score, evidence)
  VALUES (v_account, v_company, 'manual', NULL, NULL)
  ON CONFLICT ON CONSTRAINT client_mappings_pkey DO UPDATE
     SET psa_company_id = excluded.psa_company_id, source = 'manual', score = NULL, evidence = NULL,
         mapped_by = current_user, mapped_at = now();
  DELETE FROM billrecon.client_match_candidates c WHERE c.vendor_account_id = v_account;
  DELETE FROM billrecon.client_match_rejections r WHERE r.vendor_account_id = v_account AND r.psa_company_id = v_company;
END
$map$;
COMMENT ON FUNCTION billrecon.map_client(text, text, text) IS
  'Maps a vendor account (its integration''s name and the vendor''s id) to a PSA company (the default PSA''s id); '
  'replaces any mapping or suggestion of that account';

CREATE FUNCTION billrecon.unmap_client(integration text, vendor_account_id text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $unmap$
DECLARE
  v_account bigint := billrecon._vendor_account(integration, vendor_account_id);
BEGIN
  DELETE FROM billrecon.client_mappings m WHERE m.vendor_account_id = v_account;
  RETURN FOUND;
END
$unmap$;
COMMENT ON FUNCTION billrecon.unmap_client(text, text) IS
  'Removes the mapping of a vendor account; returns false when it had none. The next suggest_client_matches() may suggest it again.';

CREATE FUNCTION billrecon.reject_client_match(integration text, vendor_account_id text, psa_company_id text,
                                              reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $rej$
DECLARE
  v_account bigint := billrecon._vendor_account(integration, vendor_account_id);
  v_company bigint := billrecon._psa_company(psa_company_id);
BEGIN
  INSERT INTO billrecon.client_match_rejections (vendor_account_id, psa_company_id, reason)
  VALUES (v_account, v_company, reason)
  ON CONFLICT ON CONSTRAINT client_match_rejections_pkey DO UPDATE
     SET reason = excluded.reason, rejected_by = current_user, rejected_at = now();
  DELETE FROM billrecon.client_match_candidates c
   WHERE c.vendor_account_id = v_account AND c.psa_company_id = v_company;
  DELETE FROM billrecon.client_mappings m
   WHERE m.vendor_account_id = v_account AND m.psa_company_id = v_company AND m.source = 'suggestion';
END
$rej$;
COMMENT ON FUNCTION billrecon.reject_client_match(text, text, text, text) IS
  'Rejects a suggested (or confirmed) match: the pair is never suggested again, and a mapping confirmed from it is removed';

CREATE VIEW billrecon.unmapped_vendor_accounts AS
SELECT i.name AS integration, i.kind, va.external_id AS vendor_account_id, va.name AS vendor_account_name,
       count(u.id) AS usage_records,
       coalesce(sum(u.quantity), 0) AS usage_quantity,
       c.psa_company_id IS NOT NULL AS has_suggestion
  FROM billrecon.vendor_accounts va
  JOIN billrecon.integrations i ON i.id = va.integration_id
  LEFT JOIN billrecon.usage_records u ON u.account_id = va.id AND u.removed_at IS NULL
  LEFT JOIN billrecon.client_match_candidates c ON c.vendor_account_id = va.id
 WHERE va.removed_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = va.id)
   AND NOT EXISTS (SELECT 1 FROM billrecon.ignored_vendor_accounts g WHERE g.vendor_account_id = va.id)
 GROUP BY i.name, i.kind, va.id, va.external_id, va.name, c.psa_company_id;
COMMENT ON VIEW billrecon.unmapped_vendor_accounts IS
  'Vendor accounts not mapped to a PSA company (and not ignored), with the usage they carry: clear these first, their '
  'usage cannot be reconciled. Map them (billrecon.map_client) or, when they are no client, ignore them '
  '(billrecon.ignore_vendor_account).';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.integration IS 'Vendor integration';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.kind IS 'The integration''s kind (ninjaone, msgraph, pax8, ...)';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.vendor_account_id IS 'The vendor''s id of the account';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.vendor_account_name IS 'The account''s name at the vendor';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.usage_records IS 'Current usage records of the account';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.usage_quantity IS 'Their total quantity';
COMMENT ON COLUMN billrecon.unmapped_vendor_accounts.has_suggestion IS 'A suggested match waits in billrecon.client_match_suggestions';

CREATE FUNCTION billrecon.ignore_vendor_account(integration text, vendor_account_id text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $iva$
DECLARE
  v_account bigint := billrecon._vendor_account(integration, vendor_account_id);
BEGIN
  IF EXISTS (SELECT 1 FROM billrecon.client_mappings m WHERE m.vendor_account_id = v_account) THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('vendor account "%s" of integration "%s" is mapped to a client', vendor_account_id, integration),
      DETAIL = 'An ignored account is no client; this one is mapped to one.',
      HINT = format('SELECT billrecon.unmap_client(%L, %L) first if it really is no client.', integration, vendor_account_id);
  END IF;
  DELETE FROM billrecon.client_match_candidates c WHERE c.vendor_account_id = v_account;
  INSERT INTO billrecon.ignored_vendor_accounts AS g (vendor_account_id, reason)
  VALUES (v_account, reason)
  ON CONFLICT ON CONSTRAINT ignored_vendor_accounts_pkey DO UPDATE
     SET reason = excluded.reason, ignored_by = current_user, ignored_at = now();
END
$iva$;
COMMENT ON FUNCTION billrecon.ignore_vendor_account(text, text, text) IS
  'Marks a vendor account as no client (the MSP''s own, a lab, a deleted-devices site): it is never suggested, never '
  'listed as unmapped and its usage is never reported. A mapped account must be unmapped first.';

CREATE FUNCTION billrecon.unignore_vendor_account(integration text, vendor_account_id text)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $uva$
  WITH d AS (
    DELETE FROM billrecon.ignored_vendor_accounts g
     WHERE g.vendor_account_id = billrecon._vendor_account(unignore_vendor_account.integration,
                                                           unignore_vendor_account.vendor_account_id)
    RETURNING 1)
  SELECT count(*) > 0 FROM d
$uva$;
COMMENT ON FUNCTION billrecon.unignore_vendor_account(text, text) IS
  'Undoes billrecon.ignore_vendor_account(); returns false when the account was not ignored';
