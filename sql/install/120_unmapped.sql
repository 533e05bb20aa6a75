-- What no mapping covers yet, so "clear the unmapped count first" is one query.

-- A rule's filters in the form the hot loops want: patterns and SKU lists
-- taken out of the jsonb once per rule, so the per-record test below has no
-- subquery and the planner inlines it.
CREATE TYPE billrecon.rule_filter AS (
  device_classes   jsonb,    -- asset: ["desktop", ...] or null
  os_pattern       text,     -- asset: POSIX regex, case-insensitive, or null
  name_pattern     text,     -- asset: POSIX regex on the device name, or null
  skus             text[],   -- licence: SKU part numbers / ids, upper case, or null
  products_pattern text,     -- subscription: the patterns as one alternation, or null
  users            text,     -- user: licensed (default) or enabled
  count_purchased  boolean   -- licence: count purchased (prepaid) units instead of assigned
);
COMMENT ON TYPE billrecon.rule_filter IS 'Internal: a service rule''s filters, unpacked for counting';
COMMENT ON COLUMN billrecon.rule_filter.device_classes IS 'asset: the device classes counted, or null for all';
COMMENT ON COLUMN billrecon.rule_filter.os_pattern IS 'asset: case-insensitive pattern on the OS name, or null';
COMMENT ON COLUMN billrecon.rule_filter.name_pattern IS 'asset: case-insensitive pattern on the device name, or null';
COMMENT ON COLUMN billrecon.rule_filter.skus IS 'licence: SKU part numbers or ids, upper case, or null for all';
COMMENT ON COLUMN billrecon.rule_filter.products_pattern IS 'subscription: the product patterns as one alternation, or null';
COMMENT ON COLUMN billrecon.rule_filter.users IS 'user: licensed (the default) or enabled';
COMMENT ON COLUMN billrecon.rule_filter.count_purchased IS 'licence: count purchased (prepaid) units instead of assigned ones';

CREATE FUNCTION billrecon._rule_filter(filters jsonb)
RETURNS billrecon.rule_filter
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ROW(filters->'device_class', filters->>'os_name', filters->>'device_name',
           (SELECT array_agg(upper(s)) FROM jsonb_array_elements_text(filters->'skus') s),
           (SELECT string_agg('(' || p || ')', '|') FROM jsonb_array_elements_text(filters->'products') p),
           coalesce(filters->>'users', 'licensed'),
           coalesce(filters->>'count', 'assigned') = 'purchased')::billrecon.rule_filter;
COMMENT ON FUNCTION billrecon._rule_filter(jsonb) IS 'Internal: unpacks a rule''s filters (billrecon.rule_filter)';

-- Which usage records a rule addresses: asset rules devices of their classes
-- and name patterns, licence rules their SKUs, user rules users, subscription
-- rules the products their patterns match. The one definition of it: the
-- unmapped views and billrecon.reconcile() both use it.
CREATE FUNCTION billrecon._filter_captures(mode text, f billrecon.rule_filter, u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(CASE mode
           WHEN 'asset' THEN u.kind = 'device'
             AND (f.device_classes IS NULL OR f.device_classes ? u.device_class)
             AND (f.os_pattern IS NULL OR coalesce(u.os_name, '') ~* f.os_pattern)
             AND (f.name_pattern IS NULL OR coalesce(u.device_name, '') ~* f.name_pattern)
           WHEN 'licence' THEN u.kind = 'licence'
             AND (f.skus IS NULL OR upper(coalesce(u.product, '')) = ANY (f.skus)
                  OR upper(coalesce(u.product_name, '')) = ANY (f.skus))
           WHEN 'user' THEN u.kind = 'user'
           WHEN 'subscription' THEN u.kind = 'subscription'
             AND (f.products_pattern IS NULL OR coalesce(u.product, '') ~* f.products_pattern
                  OR coalesce(u.product_name, '') ~* f.products_pattern)
           ELSE false
         END, false);   -- a device without a class, a null SKU: not captured (never null)
COMMENT ON FUNCTION billrecon._filter_captures(text, billrecon.rule_filter, billrecon.usage_records) IS
  'Internal: whether a rule of this mode and these (unpacked) filters addresses the usage record';

-- How much of the record a rule counts: user rules count enabled users (only
-- licensed ones unless {"users": "enabled"}), licence rules assigned units or,
-- with {"count": "purchased"}, prepaid enabled units. Zero when not captured.
CREATE FUNCTION billrecon._filter_quantity(mode text, f billrecon.rule_filter, u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
           WHEN NOT billrecon._filter_captures(mode, f, u) THEN 0
           WHEN mode = 'user' THEN
             CASE WHEN coalesce(u.enabled, true) AND (f.users = 'enabled' OR coalesce(u.licensed, true))
                  THEN u.quantity ELSE 0 END
           WHEN mode = 'licence' AND f.count_purchased THEN coalesce(u.purchased_quantity, 0)
           ELSE u.quantity
         END;
COMMENT ON FUNCTION billrecon._filter_quantity(text, billrecon.rule_filter, billrecon.usage_records) IS
  'Internal: the quantity a rule of this mode and these (unpacked) filters counts for the usage record (0 when it '
  'does not capture it; disabled users and, by default, unlicensed users count 0; a user whose licence state the '
  'vendor does not report counts as licensed)';

CREATE FUNCTION billrecon._rule_captures(mode text, filters jsonb, u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN billrecon._filter_captures(mode, billrecon._rule_filter(filters), u);
COMMENT ON FUNCTION billrecon._rule_captures(text, jsonb, billrecon.usage_records) IS
  'Internal: billrecon._filter_captures with the rule''s filters as stored';

CREATE FUNCTION billrecon._rule_quantity(mode text, filters jsonb, u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN billrecon._filter_quantity(mode, billrecon._rule_filter(filters), u);
COMMENT ON FUNCTION billrecon._rule_quantity(text, jsonb, billrecon.usage_records) IS
  'Internal: billrecon._filter_quantity with the rule''s filters as stored';

-- A usage record is excluded when its product (id or name) is an excluded
-- vendor product of its integration.
CREATE FUNCTION billrecon._usage_excluded(u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
    SELECT 1 FROM billrecon.excluded_vendor_products e
     WHERE e.integration_id = u.integration_id
       AND lower(e.product) IN (lower(coalesce(u.product, '')), lower(coalesce(u.product_name, ''))));
COMMENT ON FUNCTION billrecon._usage_excluded(billrecon.usage_records) IS
  'Internal: whether the record''s product is excluded (billrecon.exclude_vendor_product) on its integration';

-- A usage record is captured when a rule on its integration addresses it.
CREATE FUNCTION billrecon._usage_captured(u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
    SELECT 1 FROM billrecon.service_rules r
     WHERE r.integration_id = u.integration_id
       AND billrecon._rule_captures(r.mode, r.filters, u));
COMMENT ON FUNCTION billrecon._usage_captured(billrecon.usage_records) IS
  'Internal: whether any service rule on the record''s integration would count it';

CREATE VIEW billrecon.uncaptured_vendor_products AS
SELECT i.name AS integration,
       u.kind,
       CASE u.kind
         WHEN 'user' THEN CASE WHEN u.licensed THEN 'licensed users' ELSE 'unlicensed users' END
         ELSE coalesce(u.product, CASE WHEN u.kind = 'device' THEN u.device_class END, '')
       END AS product,
       max(CASE WHEN u.kind <> 'user' THEN u.product_name END) AS product_name,
       count(*) AS usage_records,
       sum(u.quantity) AS quantity,
       count(DISTINCT u.account_id) AS accounts
  FROM billrecon.usage_records u
  JOIN billrecon.integrations i ON i.id = u.integration_id
 WHERE u.removed_at IS NULL
   AND NOT billrecon._usage_excluded(u)
   AND NOT billrecon._usage_captured(u)
 GROUP BY i.name, u.kind, 3;
COMMENT ON VIEW billrecon.uncaptured_vendor_products IS
  'Vendor products (SKUs, subscriptions, device kinds, users) that no service rule counts and that are not excluded: '
  'map them (billrecon.map_product / map_line_item) or exclude them (billrecon.exclude_vendor_product)';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.integration IS 'Vendor integration';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.kind IS 'device, licence, user or subscription';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.product IS 'Product or SKU (devices without one: their class; users: licensed users or unlicensed users)';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.product_name IS 'Its name, where the vendor gives one';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.usage_records IS 'Current usage records of it';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.quantity IS 'Their total quantity';
COMMENT ON COLUMN billrecon.uncaptured_vendor_products.accounts IS 'Vendor accounts using it';

CREATE VIEW billrecon.unmapped_counts AS
SELECT i.name AS integration,
       i.kind,
       i.side,
       CASE WHEN i.side = 'vendor' THEN
         (SELECT count(*) FROM billrecon.unmapped_vendor_accounts v WHERE v.integration = i.name) END
         AS unmapped_accounts,
       CASE WHEN i.is_default_psa THEN
         (SELECT count(*) FROM billrecon.unmapped_line_items) END AS unmapped_line_items,
       CASE WHEN i.side = 'vendor' THEN
         (SELECT count(*) FROM billrecon.uncaptured_vendor_products p WHERE p.integration = i.name) END
         AS uncaptured_products,
       CASE WHEN i.side = 'vendor' THEN
         (SELECT count(*) FROM billrecon.client_match_suggestions s WHERE s.integration = i.name) END
         AS pending_suggestions
  FROM billrecon.integrations i
 WHERE i.enabled AND (i.side = 'vendor' OR i.is_default_psa);
COMMENT ON VIEW billrecon.unmapped_counts IS
  'Per integration, what is left to map before reconciling: vendor accounts without a client, line items of the '
  'default PSA without a rule, vendor products no rule counts, suggestions waiting for a decision. All zero = ready.';
COMMENT ON COLUMN billrecon.unmapped_counts.integration IS 'Integration';
COMMENT ON COLUMN billrecon.unmapped_counts.kind IS 'The integration''s kind (connectwise, ninjaone, msgraph, ...)';
COMMENT ON COLUMN billrecon.unmapped_counts.side IS 'psa or vendor';
COMMENT ON COLUMN billrecon.unmapped_counts.unmapped_accounts IS 'Vendor accounts without a PSA client (billrecon.unmapped_vendor_accounts)';
COMMENT ON COLUMN billrecon.unmapped_counts.unmapped_line_items IS 'Default PSA only: line items no rule covers (billrecon.unmapped_line_items)';
COMMENT ON COLUMN billrecon.unmapped_counts.uncaptured_products IS 'Vendor products no rule counts and not excluded (billrecon.uncaptured_vendor_products)';
COMMENT ON COLUMN billrecon.unmapped_counts.pending_suggestions IS 'Suggested client matches waiting (billrecon.client_match_suggestions)';
