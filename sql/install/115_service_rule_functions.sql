-- Functions and views of service mapping.

-- The default PSA's current line item with that external id, or an error.
CREATE FUNCTION billrecon._psa_line_item(line_item_id text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $li$
DECLARE
  v_psa integer := billrecon._default_psa();
  v_id bigint;
BEGIN
  SELECT l.id INTO v_id FROM billrecon.psa_line_items l
   WHERE l.integration_id = v_psa AND l.external_id = line_item_id AND l.removed_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('line item "%s" does not exist', line_item_id),
      DETAIL = 'line_item_id is the id the default PSA uses (billrecon.psa_line_items.external_id) of a current line.',
      HINT = 'SELECT line_item_id, company, product FROM billrecon.service_mapping lists them.';
  END IF;
  RETURN v_id;
END
$li$;
COMMENT ON FUNCTION billrecon._psa_line_item(text) IS 'Internal: the default PSA''s current line item with that external id, or an error';

-- Checks a rule: the mode fits the integration's kind, the filters fit the mode.
CREATE FUNCTION billrecon._check_rule(p_integration integer, p_mode text, p_filters jsonb, p_multiplier numeric)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $chk$
DECLARE
  v_name text;
  v_kind text;
  v_kinds text[];
  v_allowed text[];
  v_key text;
  v_value jsonb;
  v_elem jsonb;
BEGIN
  SELECT i.name, i.kind INTO v_name, v_kind FROM billrecon.integrations i WHERE i.id = p_integration;
  IF p_mode IS NULL OR p_mode NOT IN ('asset', 'licence', 'user', 'subscription', 'manual', 'custom_sql') THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid rule mode "%s"', coalesce(p_mode, 'NULL')),
      DETAIL = 'Modes: asset, licence, user, subscription, manual, custom_sql.',
      HINT = 'asset counts devices, licence licence seats, user users, subscription subscription quantities.';
  END IF;
  v_kinds := CASE p_mode
    WHEN 'asset' THEN ARRAY['ninjaone', 'dattormm', 'csv']
    WHEN 'licence' THEN ARRAY['msgraph', 'csv']
    WHEN 'user' THEN ARRAY['msgraph', 'csv']
    WHEN 'subscription' THEN ARRAY['pax8', 'partnercenter', 'csv']
    ELSE NULL END;
  IF v_kinds IS NOT NULL AND NOT v_kind = ANY (v_kinds) THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('rule mode %s cannot count integration "%s"', p_mode, v_name),
      DETAIL = format('"%s" is a %s integration; %s rules count usage of %s integrations.', v_name, v_kind, p_mode,
                      array_to_string(v_kinds, ', ')),
      HINT = CASE v_kind
        WHEN 'ninjaone' THEN 'Devices are counted with mode ''asset''.'
        WHEN 'dattormm' THEN 'Devices are counted with mode ''asset''.'
        WHEN 'msgraph' THEN 'Microsoft 365 is counted with mode ''licence'' or ''user''.'
        WHEN 'pax8' THEN 'Pax8 is counted with mode ''subscription''.'
        WHEN 'partnercenter' THEN 'Partner Center is counted with mode ''subscription''.'
        ELSE 'Name a vendor integration that reports this kind of usage, or use mode ''manual''.' END;
  END IF;
  IF p_multiplier IS NULL OR p_multiplier <= 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid multiplier %s', coalesce(p_multiplier::text, 'NULL')),
      DETAIL = 'The multiplier is the number of counted units per billed unit and must be positive.',
      HINT = 'A line "BDR (2 servers)" has multiplier 2; most lines have 1.';
  END IF;
  IF p_filters IS NULL OR jsonb_typeof(p_filters) <> 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'rule filters must be a JSON object',
      DETAIL = format('Found %s.', coalesce(jsonb_typeof(p_filters), 'NULL')), HINT = 'Pass ''{}'' for no filter.';
  END IF;
  v_allowed := CASE p_mode
    WHEN 'asset' THEN ARRAY['device_class', 'os_name', 'device_name']
    WHEN 'licence' THEN ARRAY['skus', 'count']
    WHEN 'user' THEN ARRAY['users']
    WHEN 'subscription' THEN ARRAY['products']
    WHEN 'manual' THEN ARRAY['compare_with']
    ELSE ARRAY[]::text[] END;
  FOR v_key, v_value IN SELECT * FROM jsonb_each(p_filters) LOOP
    IF NOT v_key = ANY (v_allowed) THEN
      RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = format('unknown filter "%s" for rule mode %s', v_key, p_mode),
        DETAIL = format('%s rules take the filters: %s.', p_mode,
                        coalesce(nullif(array_to_string(v_allowed, ', '), ''), 'none')),
        HINT = 'See "Rule filters" in docs/sql-reference.md.';
    END IF;
    IF v_key IN ('device_class', 'skus', 'products') THEN
      IF jsonb_typeof(v_value) <> 'array' OR jsonb_array_length(v_value) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
          MESSAGE = format('filter "%s" must be a non-empty array of strings', v_key),
          DETAIL = format('Found %s.', v_value::text), HINT = format('For example {"%s": [...]}.', v_key);
      END IF;
      FOR v_elem IN SELECT * FROM jsonb_array_elements(v_value) LOOP
        IF jsonb_typeof(v_elem) <> 'string' OR v_elem #>> '{}' = '' THEN
          RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('filter "%s" must be a non-empty array of strings', v_key),
            DETAIL = format('Found the element %s.', v_elem::text), HINT = 'Quote every element.';
        END IF;
        IF v_key = 'device_class' AND NOT (v_elem #>> '{}') IN ('desktop', 'laptop', 'server', 'other') THEN
          RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('invalid device class %s', v_elem::text),
            DETAIL = 'Device classes: desktop, laptop, server, other.',
            HINT = 'A vendor that cannot tell desktop from laptop reports workstations as desktop.';
        END IF;
        IF v_key = 'products' THEN
          PERFORM billrecon._check_pattern(v_key, v_elem #>> '{}');
        END IF;
      END LOOP;
    ELSIF v_key IN ('os_name', 'device_name') THEN
      IF jsonb_typeof(v_value) <> 'string' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('filter "%s" must be a pattern string', v_key),
          DETAIL = format('Found %s.', v_value::text), HINT = 'Patterns are case-insensitive POSIX regular expressions.';
      END IF;
      PERFORM billrecon._check_pattern(v_key, v_value #>> '{}');
    ELSIF v_key = 'count' AND NOT v_value IN ('"assigned"'::jsonb, '"purchased"'::jsonb) THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'filter "count" must be "assigned" or "purchased"',
        DETAIL = format('Found %s.', v_value::text),
        HINT = 'assigned counts consumed licences (the default); purchased counts prepaid, enabled units.';
    ELSIF v_key = 'users' AND NOT v_value IN ('"licensed"'::jsonb, '"enabled"'::jsonb) THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'filter "users" must be "licensed" or "enabled"',
        DETAIL = format('Found %s.', v_value::text),
        HINT = 'licensed counts users holding a licence (the default); enabled counts every enabled user.';
    ELSIF v_key = 'compare_with' THEN
      IF jsonb_typeof(v_value) <> 'string' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'filter "compare_with" must be an integration name',
          DETAIL = format('Found %s.', v_value::text), HINT = 'Name the integration to show beside the manual line.';
      END IF;
      PERFORM billrecon._integration_id(v_value #>> '{}');
    END IF;
  END LOOP;
END
$chk$;
COMMENT ON FUNCTION billrecon._check_rule(integer, text, jsonb, numeric) IS
  'Internal: raises when a rule''s mode does not fit its integration''s kind or its filters do not fit the mode';

CREATE FUNCTION billrecon._check_pattern(filter text, pattern text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $pat$
BEGIN
  PERFORM '' ~* pattern;
EXCEPTION WHEN invalid_regular_expression THEN
  RAISE EXCEPTION USING ERRCODE = '22023',
    MESSAGE = format('invalid pattern in filter "%s"', filter),
    DETAIL = format('%s: %s', pattern, SQLERRM),
    HINT = 'Patterns are case-insensitive POSIX regular expressions, e.g. ''^HD-'' or ''server''.';
END
$pat$;
COMMENT ON FUNCTION billrecon._check_pattern(text, text) IS 'Internal: raises 22023 when pattern is not a valid regular expression';

CREATE FUNCTION billrecon.map_line_item(line_item_id text, integration text, mode text, filters jsonb DEFAULT '{}',
                                        multiplier numeric DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $mli$
DECLARE
  v_line bigint := billrecon._psa_line_item(line_item_id);
  v_integration integer := billrecon._integration_id(integration);
  v_rule bigint;
BEGIN
  PERFORM billrecon._check_rule(v_integration, mode, coalesce(filters, '{}'), multiplier);
  UPDATE billrecon.service_rules r
     SET integration_id = v_integration, mode = map_line_item.mode, filters = coalesce(map_line_item.filters, '{}'),
         multiplier = map_line_item.multiplier, source = 'manual', preset_id = NULL, updated_at = now()
   WHERE r.line_item_id = v_line
  RETURNING r.id INTO v_rule;
  IF NOT FOUND THEN
    INSERT INTO billrecon.service_rules (line_item_id, integration_id, mode, filters, multiplier)
    VALUES (v_line, v_integration, map_line_item.mode, coalesce(map_line_item.filters, '{}'), map_line_item.multiplier)
    RETURNING id INTO v_rule;
  END IF;
  DELETE FROM billrecon.ignored_line_items g WHERE g.line_item_id = v_line;
  RETURN v_rule;
END
$mli$;
COMMENT ON FUNCTION billrecon.map_line_item(text, text, text, jsonb, numeric) IS
  'Creates or replaces the rule of one line item of the default PSA (its external id): which integration''s usage it '
  'is compared with, the mode (asset, licence, user, subscription, manual, custom_sql), the filters and the '
  'multiplier. A line''s own rule wins over its product''s. Mapping an ignored line un-ignores it. Returns the rule id.';

CREATE FUNCTION billrecon.map_product(psa_product text, integration text, mode text, filters jsonb DEFAULT '{}',
                                      multiplier numeric DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $mp$
DECLARE
  v_integration integer := billrecon._integration_id(integration);
  v_rule bigint;
BEGIN
  IF psa_product IS NULL OR btrim(psa_product) = '' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'psa_product must name a PSA product',
      DETAIL = 'It is matched, case-insensitively, against the line items'' product code and name.',
      HINT = 'SELECT DISTINCT product_code, product_name FROM billrecon.psa_line_items lists them.';
  END IF;
  PERFORM billrecon._check_rule(v_integration, mode, coalesce(filters, '{}'), multiplier);
  UPDATE billrecon.service_rules r
     SET integration_id = v_integration, mode = map_product.mode, filters = coalesce(map_product.filters, '{}'),
         multiplier = map_product.multiplier, source = 'manual', preset_id = NULL, updated_at = now()
   WHERE lower(r.psa_product) = lower(map_product.psa_product)
  RETURNING r.id INTO v_rule;
  IF NOT FOUND THEN
    INSERT INTO billrecon.service_rules (psa_product, integration_id, mode, filters, multiplier)
    VALUES (map_product.psa_product, v_integration, map_product.mode, coalesce(map_product.filters, '{}'),
            map_product.multiplier)
    RETURNING id INTO v_rule;
  END IF;
  RETURN v_rule;
END
$mp$;
COMMENT ON FUNCTION billrecon.map_product(text, text, text, jsonb, numeric) IS
  'Creates or replaces the rule for every line item of a PSA product, named by its catalog code (e.g. the ConnectWise '
  'product identifier) or name, case-insensitively. A line''s own rule wins. Returns the rule id.';

CREATE FUNCTION billrecon.delete_rule(rule_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $del$
BEGIN
  DELETE FROM billrecon.service_rules r WHERE r.id = rule_id;
  RETURN FOUND;
END
$del$;
COMMENT ON FUNCTION billrecon.delete_rule(bigint) IS 'Deletes a service rule; returns false when there was none. Its lines then fall back to their product''s rule, or become unmapped.';

CREATE FUNCTION billrecon.ignore_line_item(line_item_id text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $ign$
DECLARE
  v_line bigint := billrecon._psa_line_item(line_item_id);
BEGIN
  INSERT INTO billrecon.ignored_line_items AS g (line_item_id, reason) VALUES (v_line, reason)
  ON CONFLICT ON CONSTRAINT ignored_line_items_pkey DO UPDATE
     SET reason = excluded.reason, ignored_by = current_user, ignored_at = now();
END
$ign$;
COMMENT ON FUNCTION billrecon.ignore_line_item(text, text) IS
  'Marks a line item of the default PSA as ignored: it is shown, never reconciled. Undo with billrecon.unignore_line_item().';

CREATE FUNCTION billrecon.unignore_line_item(line_item_id text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $uign$
BEGIN
  DELETE FROM billrecon.ignored_line_items g WHERE g.line_item_id = billrecon._psa_line_item(unignore_line_item.line_item_id);
  RETURN FOUND;
END
$uign$;
COMMENT ON FUNCTION billrecon.unignore_line_item(text) IS 'Reconciles an ignored line item again; returns false when it was not ignored';

CREATE FUNCTION billrecon.exclude_vendor_product(integration text, product text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $exc$
DECLARE
  v_integration integer := billrecon._integration_id(integration);
BEGIN
  IF product IS NULL OR btrim(product) = '' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'product must name a vendor product or SKU',
      DETAIL = 'It is matched, case-insensitively, against usage records'' product and product name.',
      HINT = 'SELECT DISTINCT product, product_name FROM billrecon.usage_records lists them.';
  END IF;
  DELETE FROM billrecon.excluded_vendor_products e
   WHERE e.integration_id = v_integration AND lower(e.product) = lower(exclude_vendor_product.product);
  INSERT INTO billrecon.excluded_vendor_products (integration_id, product, reason)
  VALUES (v_integration, exclude_vendor_product.product, reason);
END
$exc$;
COMMENT ON FUNCTION billrecon.exclude_vendor_product(text, text, text) IS
  'Excludes a vendor product or SKU of an integration (free, trial, internal): its usage is never counted nor reported as unaccounted';

CREATE FUNCTION billrecon.include_vendor_product(integration text, product text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $inc$
BEGIN
  DELETE FROM billrecon.excluded_vendor_products e
   WHERE e.integration_id = billrecon._integration_id(integration) AND lower(e.product) = lower(include_vendor_product.product);
  RETURN FOUND;
END
$inc$;
COMMENT ON FUNCTION billrecon.include_vendor_product(text, text) IS 'Counts an excluded vendor product again; returns false when it was not excluded';

CREATE FUNCTION billrecon.link_adjustment(line_item_id text, parent_line_item_id text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $lnk$
DECLARE
  v_line bigint := billrecon._psa_line_item(line_item_id);
  v_parent bigint := billrecon._psa_line_item(parent_line_item_id);
  v_line_agreement bigint;
  v_parent_agreement bigint;
BEGIN
  IF v_line = v_parent THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a line item cannot adjust itself',
      DETAIL = format('Both ids are "%s".', line_item_id), HINT = 'Name the line the adjustment or credit is for.';
  END IF;
  SELECT l.agreement_id INTO v_line_agreement FROM billrecon.psa_line_items l WHERE l.id = v_line;
  SELECT l.agreement_id INTO v_parent_agreement FROM billrecon.psa_line_items l WHERE l.id = v_parent;
  IF v_line_agreement <> v_parent_agreement THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an adjustment and its parent must be on one agreement',
      DETAIL = format('Line "%s" and line "%s" belong to different agreements.', line_item_id, parent_line_item_id),
      HINT = 'Link the adjustment to a line of its own agreement.';
  END IF;
  INSERT INTO billrecon.line_item_parents AS p (line_item_id, parent_line_item_id) VALUES (v_line, v_parent)
  ON CONFLICT ON CONSTRAINT line_item_parents_pkey DO UPDATE
     SET parent_line_item_id = excluded.parent_line_item_id, linked_by = current_user, linked_at = now();
END
$lnk$;
COMMENT ON FUNCTION billrecon.link_adjustment(text, text) IS
  'Links an adjustment or credit line to the line it adjusts (both external ids of the default PSA); it then nets against that line';

-- The rule that applies to a line item: its own, else its product's (the
-- product code's rule before the product name's).
CREATE FUNCTION billrecon._line_rule(l billrecon.psa_line_items)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(
    (SELECT r.id FROM billrecon.service_rules r WHERE r.line_item_id = l.id),
    (SELECT p.id FROM billrecon.service_rules p
      WHERE p.psa_product IS NOT NULL
        AND (lower(p.psa_product) = lower(l.product_code) OR lower(p.psa_product) = lower(l.product_name))
      ORDER BY lower(p.psa_product) = lower(l.product_code) DESC, p.id
      LIMIT 1));
COMMENT ON FUNCTION billrecon._line_rule(billrecon.psa_line_items) IS
  'Internal: id of the service rule that applies to the line item (its own, else its product''s), null when none';

-- Line items of the default PSA with the rule that applies to each.
CREATE VIEW billrecon.service_mapping AS
SELECT l.external_id AS line_item_id,
       c.external_id AS psa_company_id,
       c.name AS company,
       a.external_id AS agreement_id,
       a.name AS agreement,
       coalesce(l.product_code, l.product_name) AS product,
       l.product_name,
       l.quantity,
       l.unit_price,
       coalesce(r.id, pr.id) AS rule_id,
       CASE WHEN r.id IS NOT NULL THEN 'line' WHEN pr.id IS NOT NULL THEN 'product' END AS rule_scope,
       ri.name AS integration,
       coalesce(r.mode, pr.mode) AS mode,
       coalesce(r.filters, pr.filters) AS filters,
       coalesce(r.multiplier, pr.multiplier) AS multiplier,
       g.line_item_id IS NOT NULL AS ignored,
       g.reason AS ignore_reason,
       parent.external_id AS parent_line_item_id,
       CASE
         WHEN g.line_item_id IS NOT NULL THEN 'ignored'
         WHEN parent.id IS NOT NULL THEN 'adjustment'
         WHEN coalesce(r.id, pr.id) IS NULL THEN 'unmapped'
         ELSE 'mapped'
       END AS state
  FROM billrecon.psa_line_items l
  JOIN billrecon.integrations psa ON psa.id = l.integration_id AND psa.is_default_psa
  JOIN billrecon.psa_companies c ON c.id = l.company_id
  JOIN billrecon.psa_agreements a ON a.id = l.agreement_id
  LEFT JOIN billrecon.service_rules ar ON ar.id = billrecon._line_rule(l)
  LEFT JOIN billrecon.service_rules r ON r.id = ar.id AND r.line_item_id IS NOT NULL
  LEFT JOIN billrecon.service_rules pr ON pr.id = ar.id AND pr.line_item_id IS NULL
  LEFT JOIN billrecon.integrations ri ON ri.id = coalesce(r.integration_id, pr.integration_id)
  LEFT JOIN billrecon.ignored_line_items g ON g.line_item_id = l.id
  LEFT JOIN billrecon.line_item_parents lp ON lp.line_item_id = l.id
  LEFT JOIN billrecon.psa_line_items parent ON parent.id = coalesce(lp.parent_line_item_id, l.parent_line_item_id)
 WHERE l.removed_at IS NULL AND (l.cancel_date IS NULL OR l.cancel_date >= current_date);
COMMENT ON VIEW billrecon.service_mapping IS
  'Every current line item of the default PSA (not removed, not cancelled before today) with the rule that applies '
  '(its own, else its product''s), or why none does';
COMMENT ON COLUMN billrecon.service_mapping.line_item_id IS 'The PSA''s id of the line';
COMMENT ON COLUMN billrecon.service_mapping.psa_company_id IS 'The PSA''s id of the client';
COMMENT ON COLUMN billrecon.service_mapping.company IS 'Client name';
COMMENT ON COLUMN billrecon.service_mapping.agreement_id IS 'The PSA''s id of the agreement';
COMMENT ON COLUMN billrecon.service_mapping.agreement IS 'Agreement name';
COMMENT ON COLUMN billrecon.service_mapping.product IS 'Product code (or name when the line has no code)';
COMMENT ON COLUMN billrecon.service_mapping.product_name IS 'Product name';
COMMENT ON COLUMN billrecon.service_mapping.quantity IS 'Billed quantity';
COMMENT ON COLUMN billrecon.service_mapping.unit_price IS 'Unit price';
COMMENT ON COLUMN billrecon.service_mapping.rule_id IS 'The applying rule (billrecon.service_rules.id); null when unmapped';
COMMENT ON COLUMN billrecon.service_mapping.rule_scope IS 'line (the line''s own rule) or product (its product''s rule)';
COMMENT ON COLUMN billrecon.service_mapping.integration IS 'Integration whose usage is counted';
COMMENT ON COLUMN billrecon.service_mapping.mode IS 'Counting mode';
COMMENT ON COLUMN billrecon.service_mapping.filters IS 'Rule filters';
COMMENT ON COLUMN billrecon.service_mapping.multiplier IS 'Counted units per billed unit';
COMMENT ON COLUMN billrecon.service_mapping.ignored IS 'The line is ignored';
COMMENT ON COLUMN billrecon.service_mapping.ignore_reason IS 'Why it is ignored';
COMMENT ON COLUMN billrecon.service_mapping.parent_line_item_id IS 'For adjustments: the line they net against';
COMMENT ON COLUMN billrecon.service_mapping.state IS 'mapped, unmapped, ignored or adjustment';

CREATE VIEW billrecon.unmapped_line_items AS
SELECT m.line_item_id, m.psa_company_id, m.company, m.agreement_id, m.product, m.product_name, m.quantity,
       m.unit_price
  FROM billrecon.service_mapping m
 WHERE m.state = 'unmapped';
COMMENT ON VIEW billrecon.unmapped_line_items IS
  'Line items of the default PSA that no rule covers and that are neither ignored nor adjustments: map or ignore them before reconciling';
COMMENT ON COLUMN billrecon.unmapped_line_items.line_item_id IS 'The PSA''s id of the line';
COMMENT ON COLUMN billrecon.unmapped_line_items.psa_company_id IS 'The PSA''s id of the client';
COMMENT ON COLUMN billrecon.unmapped_line_items.company IS 'Client name';
COMMENT ON COLUMN billrecon.unmapped_line_items.agreement_id IS 'The PSA''s id of the agreement';
COMMENT ON COLUMN billrecon.unmapped_line_items.product IS 'Product code (or name)';
COMMENT ON COLUMN billrecon.unmapped_line_items.product_name IS 'Product name';
COMMENT ON COLUMN billrecon.unmapped_line_items.quantity IS 'Billed quantity';
COMMENT ON COLUMN billrecon.unmapped_line_items.unit_price IS 'Unit price';

CREATE FUNCTION billrecon.apply_presets(integration text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $pre$
DECLARE
  v_only integer := CASE WHEN integration IS NULL THEN NULL ELSE billrecon._integration_id(integration) END;
  v_created integer := 0;
  v_n integer;
  v_preset record;
BEGIN
  FOR v_preset IN
    SELECT p.*, i.id AS integration_id
      FROM billrecon.rule_presets p
      JOIN billrecon.integrations i ON i.kind = p.vendor_kind AND i.enabled
     WHERE v_only IS NULL OR i.id = v_only
     ORDER BY p.builtin, p.id, i.name   -- your own presets first, then the built-in ones
  LOOP
    INSERT INTO billrecon.service_rules (psa_product, integration_id, mode, filters, multiplier, source, preset_id)
    SELECT DISTINCT ON (lower(coalesce(m.product, '')))
           m.product, v_preset.integration_id, v_preset.mode, v_preset.filters, v_preset.multiplier, 'preset', v_preset.id
      FROM billrecon.service_mapping m
     WHERE m.state = 'unmapped' AND m.product IS NOT NULL
       AND (m.product ~* v_preset.psa_product_pattern OR coalesce(m.product_name, '') ~* v_preset.psa_product_pattern)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_created := v_created + v_n;
  END LOOP;
  RETURN v_created;
END
$pre$;
COMMENT ON FUNCTION billrecon.apply_presets(text) IS
  'Creates product rules from billrecon.rule_presets for unmapped PSA products whose code or name matches a preset of an '
  'integration''s kind (all enabled integrations, or only the one named). Existing rules are never changed. Returns the '
  'number of rules created.';
