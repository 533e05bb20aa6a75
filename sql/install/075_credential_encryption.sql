-- At-rest encryption of integration credentials (docs/security.md).
--
-- Opt-in: while billrecon.credential_key_file (a superuser's setting, reloaded
-- with pg_reload_conf) names a key file, every credential written to
-- billrecon.integration_credentials is encrypted by a trigger before it is
-- stored. The key is read from its file by billrecon's C code for each use;
-- it never appears in SQL, and no SQL function returns decrypted credentials.

CREATE FUNCTION billrecon._encrypt_credentials(integration_id integer, credentials jsonb)
RETURNS bytea
AS 'MODULE_PATHNAME', 'billrecon_encrypt_credentials'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION billrecon._encrypt_credentials(integer, jsonb) IS
  'Internal: the credentials of that integration encrypted with the key of billrecon.credential_key_file '
  '(AES-256-GCM envelope), or NULL when no key is configured; an error when the key file is unusable';

CREATE FUNCTION billrecon._encrypt_credentials_row()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $enc$
DECLARE
  v_envelope bytea;
BEGIN
  IF NEW.credentials IS NULL THEN
    RETURN NEW;   -- already encrypted (or re-encrypted by rotate_credential_key)
  END IF;
  -- pg_restore (or psql) loading a dump restores exactly what was dumped, as
  -- billrecon._audit_row() does; billrecon.encrypt_credentials() afterwards
  -- encrypts rows that were dumped in clear.
  IF current_query() ~* '^\s*COPY\s' AND current_query() ~* '\sFROM\s+stdin'
     AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
    RETURN NEW;
  END IF;
  v_envelope := billrecon._encrypt_credentials(NEW.integration_id, NEW.credentials);
  IF v_envelope IS NULL THEN
    -- No key configured: stored in clear, as given (and any old envelope goes).
    NEW.encrypted_credentials := NULL;
    NEW.credential_keys := NULL;
  ELSE
    NEW.credential_keys := ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(NEW.credentials) k ORDER BY k);
    NEW.encrypted_credentials := v_envelope;
    NEW.credentials := NULL;
  END IF;
  RETURN NEW;
END
$enc$;
COMMENT ON FUNCTION billrecon._encrypt_credentials_row() IS
  'Internal: trigger encrypting credentials written in clear to billrecon.integration_credentials while '
  'billrecon.credential_key_file names a key';

CREATE TRIGGER encrypt BEFORE INSERT OR UPDATE ON billrecon.integration_credentials
  FOR EACH ROW EXECUTE FUNCTION billrecon._encrypt_credentials_row();

CREATE FUNCTION billrecon.credential_key_status(OUT configured boolean, OUT key_file text, OUT key_id text,
                                                OUT problem text)
RETURNS record
AS 'MODULE_PATHNAME', 'billrecon_credential_key_status'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon.credential_key_status() IS
  'The credential key as this session sees it: configured (billrecon.credential_key_file is set), key_file, '
  'key_id (the fingerprint stored with every row it encrypted) and problem (why the file cannot be used: '
  'missing, group-readable, inside the data directory, not a 256-bit hex key; NULL when usable). Never the key. '
  'Admin only.';

CREATE VIEW billrecon.credential_encryption AS
SELECT i.name AS integration,
       i.kind,
       c.encrypted_credentials IS NOT NULL AS encrypted,
       c.credential_key_id AS key_id,
       CASE
         WHEN c.encrypted_credentials IS NULL AND NOT k.configured THEN 'clear'
         WHEN c.encrypted_credentials IS NULL THEN 'clear, to encrypt'
         WHEN NOT k.configured THEN 'encrypted, no key configured'
         WHEN k.problem IS NOT NULL THEN 'encrypted, key file unusable'
         WHEN c.credential_key_id OPERATOR(pg_catalog.=) k.key_id THEN 'encrypted'
         ELSE 'encrypted, other key'
       END AS status,
       coalesce(c.credential_keys,
                ARRAY(SELECT j FROM pg_catalog.jsonb_object_keys(c.credentials) j ORDER BY j)) AS credential_keys,
       c.updated_at
  FROM billrecon.integrations i
  JOIN billrecon.integration_credentials c ON c.integration_id = i.id
 CROSS JOIN billrecon.credential_key_status() k;
COMMENT ON VIEW billrecon.credential_encryption IS
  'Whether each integration''s credentials are encrypted at rest, and whether the configured key opens them. '
  'Names of credentials only, never values. Admin only.';
COMMENT ON COLUMN billrecon.credential_encryption.integration IS 'Integration name';
COMMENT ON COLUMN billrecon.credential_encryption.kind IS 'Integration kind';
COMMENT ON COLUMN billrecon.credential_encryption.encrypted IS 'True when the credentials are stored encrypted';
COMMENT ON COLUMN billrecon.credential_encryption.key_id IS 'Id of the key they are encrypted with; NULL in clear';
COMMENT ON COLUMN billrecon.credential_encryption.status IS
  'clear (no key configured); clear, to encrypt (a key is configured: run billrecon.encrypt_credentials()); '
  'encrypted (the configured key opens them); encrypted, no key configured / encrypted, key file unusable / '
  'encrypted, other key (syncs of this integration fail: see billrecon.credential_key_status())';
COMMENT ON COLUMN billrecon.credential_encryption.credential_keys IS 'Names of the credentials (never values)';
COMMENT ON COLUMN billrecon.credential_encryption.updated_at IS 'When the credentials were last set';

CREATE FUNCTION billrecon.encrypt_credentials()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $encall$
DECLARE
  v_key record;
  v_count integer;
BEGIN
  SELECT * INTO v_key FROM billrecon.credential_key_status();
  IF NOT v_key.configured THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = 'no credential key is configured',
      DETAIL = 'billrecon.credential_key_file is empty, so there is no key to encrypt the credentials with.',
      HINT = 'Make a key file outside the data directory (openssl rand -hex 32, owned by the server''s OS user, '
             'mode 0600), then: ALTER SYSTEM SET billrecon.credential_key_file = ''/path/to/key''; '
             'SELECT pg_reload_conf();';
  END IF;
  IF v_key.problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'F0000',
      MESSAGE = 'the credential key file cannot be used',
      DETAIL = v_key.problem,
      HINT = 'Fix the file or billrecon.credential_key_file as the DETAIL says, reload, and run this again.';
  END IF;
  -- Rewriting a row in clear is enough: the trigger encrypts it.
  UPDATE billrecon.integration_credentials c SET credentials = c.credentials WHERE c.credentials IS NOT NULL;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$encall$;
COMMENT ON FUNCTION billrecon.encrypt_credentials() IS
  'Encrypts every credential still stored in clear with the key of billrecon.credential_key_file and returns '
  'how many rows it encrypted (0 when all are encrypted already). Audited (key names only). Admin only.';

CREATE FUNCTION billrecon.rotate_credential_key(old_key_file text)
RETURNS integer
AS 'MODULE_PATHNAME', 'billrecon_rotate_credential_key'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon.rotate_credential_key(text) IS
  'Re-encrypts with the configured key (billrecon.credential_key_file, the new one) every credential encrypted '
  'with the key in old_key_file, and returns how many; rows already under the new key are left alone, rows under '
  'a third key too (with a NOTICE naming them). One transaction. Reads a file named in the call: superusers and '
  'members of pg_read_server_files only (EXECUTE is the admin''s).';

CREATE FUNCTION billrecon.decrypt_credentials(key_file text)
RETURNS integer
AS 'MODULE_PATHNAME', 'billrecon_decrypt_credentials'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon.decrypt_credentials(text) IS
  'Turns encryption off: stores every encrypted credential in clear again, decrypted with the key in key_file, '
  'and returns how many. billrecon.credential_key_file must be empty first. Reads a file named in the call: '
  'superusers and members of pg_read_server_files only (EXECUTE is the admin''s).';
