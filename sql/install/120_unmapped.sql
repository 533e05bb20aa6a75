-- What no mapping covers yet, so "clear the unmapped count first" is one query.

-- Which usage records a rule addresses: asset rules devices of their classes
-- and name patterns, licence rules their SKUs, user rules users, subscription
-- rules the products their patterns match. The one definition of it: the
-- unmapped views and billrecon.reconcile() both use it.
CREATE FUNCTION billrecon._rule_captures(mode text, filters jsonb, u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE mode
           WHEN 'asset' THEN u.kind = 'device'
             AND (NOT filters ? 'device_class' OR filters->'device_class' ? u.device_class)
             AND (NOT filters ? 'os_name' OR coalesce(u.os_name, '') ~* (filters->>'os_name'))
             AND (NOT filters ? 'device_name' OR coalesce(u.device_name, '') ~* (filters->>'device_name'))
           WHEN 'licence' THEN u.kind = 'licence'
             AND (NOT filters ? 'skus' OR EXISTS (
                   SELECT 1 FROM jsonb_array_elements_text(filters->'skus') s(sku)
                    WHERE lower(s.sku) IN (lower(coalesce(u.product, '')), lower(coalesce(u.product_name, '')))))
           WHEN 'user' THEN u.kind = 'user'
           WHEN 'subscription' THEN u.kind = 'subscription'
             AND (NOT filters ? 'products' OR EXISTS (
                   SELECT 1 FROM jsonb_array_elements_text(filters->'products') p(pattern)
                    WHERE coalesce(u.product, '') ~* p.pattern OR coalesce(u.product_name, '') ~* p.pattern))
           ELSE false
         END;
COMMENT ON FUNCTION billrecon._rule_captures(text, jsonb, billrecon.usage_records) IS
  'Internal: whether a rule of this mode and these filters addresses the usage record (what it counts is '
  'billrecon._rule_quantity)';

-- How much of the record a rule counts: user rules count enabled users (only
-- licensed ones unless {"users": "enabled"}), licence rules assigned units or,
-- with {"count": "purchased"}, prepaid enabled units. Zero when not captured.
CREATE FUNCTION billrecon._rule_quantity(mode text, filters jsonb, u billrecon.usage_records)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
           WHEN NOT billrecon._rule_captures(mode, filters, u) THEN 0
           WHEN mode = 'user' THEN
             CASE WHEN coalesce(u.enabled, true)
                   AND (coalesce(filters->>'users', 'licensed') = 'enabled' OR coalesce(u.licensed, true))
                  THEN u.quantity ELSE 0 END
           WHEN mode = 'licence' AND filters->>'count' = 'purchased' THEN coalesce(u.purchased_quantity, 0)
           ELSE u.quantity
         END;
COMMENT ON FUNCTION billrecon._rule_quantity(text, jsonb, billrecon.usage_records) IS
  'Internal: the quantity a rule of this mode and these filters counts for the usage record (0 when it does not '
  'capture it; disabled users and, by default, unlicensed users count 0; a user whose licence state the vendor does not report counts as licensed)';

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
COMMENT ON COLUMN billrecon.unmapped_counts.kind IS 'Its kind';
COMMENT ON COLUMN billrecon.unmapped_counts.side IS 'psa or vendor';
COMMENT ON COLUMN billrecon.unmapped_counts.unmapped_accounts IS 'Vendor accounts without a PSA client (billrecon.unmapped_vendor_accounts)';
COMMENT ON COLUMN billrecon.unmapped_counts.unmapped_line_items IS 'Default PSA only: line items no rule covers (billrecon.unmapped_line_items)';
COMMENT ON COLUMN billrecon.unmapped_counts.uncaptured_products IS 'Vendor products no rule counts and not excluded (billrecon.uncaptured_vendor_products)';
COMMENT ON COLUMN billrecon.unmapped_counts.pending_suggestions IS 'Suggested client matches waiting (billrecon.client_match_suggestions)';
