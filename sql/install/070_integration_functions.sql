-- Managing integrations.

CREATE FUNCTION billrecon._validate_integration(kind text, base_url text, credentials jsonb, options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'billrecon_validate_integration'
LANGUAGE C STABLE;
COMMENT ON FUNCTION billrecon._validate_integration(text, text, jsonb, jsonb) IS
  'Internal: raises a descriptive error when kind, base URL, credentials or options are unusable for that kind';

CREATE FUNCTION billrecon.add_integration(name text, kind text, base_url text, credentials jsonb,
                                          options jsonb DEFAULT '{}', is_default_psa boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $add$
DECLARE
  v_id integer;
  v_other text;
BEGIN
  IF add_integration.name IS NULL OR add_integration.name !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid integration name "%s"', add_integration.name),
      DETAIL = 'Names are 1 to 63 characters: letters, digits, "_", "." and "-", starting with a letter or digit.',
      HINT = 'Use a short name such as ''connectwise'' or ''ninja-eu''; functions take it to name the integration.';
  END IF;
  PERFORM billrecon._validate_integration(add_integration.kind, add_integration.base_url,
                                          coalesce(add_integration.credentials, 'null'::jsonb),
                                          coalesce(add_integration.options, '{}'::jsonb));
  IF EXISTS (SELECT 1 FROM billrecon.integrations i WHERE i.name = add_integration.name) THEN
    RAISE EXCEPTION USING ERRCODE = '23505',
      MESSAGE = format('integration "%s" already exists', add_integration.name),
      DETAIL = 'Integration names are unique.',
      HINT = 'Choose another name, or change the existing one with billrecon.update_integration().';
  END IF;
  IF coalesce(add_integration.is_default_psa, false) THEN
    IF add_integration.kind NOT IN ('connectwise', 'halopsa', 'autotask') THEN
      RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = format('a %s integration cannot be the default PSA', add_integration.kind),
        DETAIL = 'Only connectwise, halopsa and autotask integrations are PSAs.',
        HINT = 'Pass is_default_psa => false for vendor integrations.';
    END IF;
    SELECT i.name INTO v_other FROM billrecon.integrations i WHERE i.is_default_psa;
    IF FOUND THEN
      RAISE EXCEPTION USING ERRCODE = '23505',
        MESSAGE = 'there is already a default PSA',
        DETAIL = format('Integration "%s" is the default PSA; there can be only one.', v_other),
        HINT = format('Add this integration with is_default_psa => false, then run SELECT billrecon.set_default_psa(%L).', add_integration.name);
    END IF;
  END IF;

  INSERT INTO billrecon.integrations (name, kind, base_url, options, is_default_psa)
  VALUES (add_integration.name, add_integration.kind, pg_catalog.rtrim(add_integration.base_url, '/'),
          coalesce(add_integration.options, '{}'::jsonb), coalesce(add_integration.is_default_psa, false))
  RETURNING id INTO v_id;
  INSERT INTO billrecon.integration_credentials (integration_id, credentials)
  VALUES (v_id, coalesce(add_integration.credentials, '{}'::jsonb));
  RETURN v_id;
END
$add$;
COMMENT ON FUNCTION billrecon.add_integration(text, text, text, jsonb, jsonb, boolean) IS
  'Adds an integration and returns its id. kind: connectwise, halopsa or autotask (PSAs); msgraph, partnercenter, '
  'pax8, ninjaone, dattormm or csv (vendors); base_url: the API root (empty for csv); credentials: the keys the kind '
  'needs (docs/connectors/<kind>.md); options: per-integration settings; is_default_psa: the PSA that is reconciled. '
  'Everything is validated first; nothing is stored on error. Admin only.';

CREATE FUNCTION billrecon._integration_id(integration text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $id$
DECLARE
  v_id integer;
BEGIN
  SELECT i.id INTO v_id FROM billrecon.integrations i WHERE i.name = integration;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('integration "%s" does not exist', integration),
      DETAIL = format('No row of billrecon.integrations has name "%s".', integration),
      HINT = 'SELECT name FROM billrecon.integrations lists the integrations; billrecon.add_integration() adds one.';
  END IF;
  RETURN v_id;
END
$id$;
COMMENT ON FUNCTION billrecon._integration_id(text) IS 'Internal: the id of the integration with that name, or an error';

CREATE FUNCTION billrecon.update_integration(integration text, base_url text DEFAULT NULL,
                                             credentials jsonb DEFAULT NULL, options jsonb DEFAULT NULL,
                                             enabled boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $upd$
DECLARE
  v_id integer := billrecon._integration_id(integration);
  v_row billrecon.integrations;
  v_creds jsonb;
BEGIN
  SELECT * INTO v_row FROM billrecon.integrations i WHERE i.id = v_id FOR UPDATE;
  -- Encrypted credentials are not decrypted here: they were validated when
  -- set, so only their names are checked again (a stand-in value each).
  SELECT coalesce(c.credentials,
                  (SELECT pg_catalog.jsonb_object_agg(k, 'stored') FROM pg_catalog.unnest(c.credential_keys) k))
    INTO v_creds FROM billrecon.integration_credentials c WHERE c.integration_id = v_id;
  -- Re-validate only when something validated changes: enabling or disabling
  -- an integration must work even if, say, billrecon.allow_http changed since.
  IF update_integration.base_url IS NOT NULL OR update_integration.credentials IS NOT NULL
     OR update_integration.options IS NOT NULL THEN
    PERFORM billrecon._validate_integration(v_row.kind, coalesce(update_integration.base_url, v_row.base_url),
                                            coalesce(update_integration.credentials, v_creds, '{}'::jsonb),
                                            coalesce(update_integration.options, v_row.options));
  END IF;
  UPDATE billrecon.integrations i
     SET base_url = pg_catalog.rtrim(coalesce(update_integration.base_url, i.base_url), '/'),
         options = coalesce(update_integration.options, i.options),
         enabled = coalesce(update_integration.enabled, i.enabled),
         updated_at = now()
   WHERE i.id = v_id;
  IF update_integration.credentials IS NOT NULL THEN
    UPDATE billrecon.integration_credentials c
       SET credentials = update_integration.credentials, updated_at = now()
     WHERE c.integration_id = v_id;
  END IF;
END
$upd$;
COMMENT ON FUNCTION billrecon.update_integration(text, text, jsonb, jsonb, boolean) IS
  'Changes an integration''s base URL, credentials (replaced whole), options (replaced whole) or enabled flag; '
  'null leaves a value as it is. Validated like add_integration. Admin only.';

CREATE FUNCTION billrecon.set_default_psa(integration text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $def$
DECLARE
  v_id integer := billrecon._integration_id(integration);
  v_kind text;
BEGIN
  SELECT i.kind INTO v_kind FROM billrecon.integrations i WHERE i.id = v_id;
  IF v_kind NOT IN ('connectwise', 'halopsa', 'autotask') THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('integration "%s" is not a PSA', integration),
      DETAIL = format('Its kind is %s; only connectwise, halopsa and autotask integrations are PSAs.', v_kind),
      HINT = 'Name a PSA integration.';
  END IF;
  UPDATE billrecon.integrations i SET is_default_psa = false, updated_at = now() WHERE i.is_default_psa AND i.id <> v_id;
  UPDATE billrecon.integrations i SET is_default_psa = true, updated_at = now() WHERE i.id = v_id AND NOT i.is_default_psa;
END
$def$;
COMMENT ON FUNCTION billrecon.set_default_psa(text) IS 'Makes this PSA integration the default PSA (the one reconciled); admin only';

CREATE FUNCTION billrecon.drop_integration(integration text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $drop$
BEGIN
  DELETE FROM billrecon.integrations i WHERE i.id = billrecon._integration_id(integration);
END
$drop$;
COMMENT ON FUNCTION billrecon.drop_integration(text) IS
  'Removes an integration with its credentials, sync history and synced data; admin only. To keep the data, '
  'disable it instead: billrecon.update_integration(name, enabled => false).';
