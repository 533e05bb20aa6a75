-- What no mapping covers yet, so "clear the unmapped count first" is one query.

-- A usage record is captured when a rule on its integration would count it:
-- asset rules devices of their classes and name patterns, licence rules their
-- SKUs, user rules users, subscription rules the products their patterns match.
CREATE FUNCTION billrecon._usage_captured(u billrecon.usage_records)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $cap$
  SELECT EXISTS (
    SELECT 1 FROM billrecon.service_rules r
     WHERE r.integration_id = u.integration_id
       AND CASE r.mode
             WHEN 'asset' THEN u.kind = 'device'
               AND (NOT r.filters ? 'device_class' OR r.filters->'device_class' ? u.device_class)
               AND (NOT r.filters ? 'os_name' OR coalesce(u.os_name, '') ~* (r.filters->>'os_name'))
               AND (NOT r.filters ? 'device_name' OR coalesce(u.device_name, '') ~* (r.filters->>'device_name'))
             WHEN 'licence' THEN u.kind = 'licence'
               AND (NOT r.filters ? 'skus' OR EXISTS (
                     SELECT 1 FROM jsonb_array_elements_text(r.filters->'skus') s(sku)
                      WHERE lower(s.sku) IN (lower(coalesce(u.product, '')), lower(coalesce(u.product_name, '')))))
             WHEN 'user' THEN u.kind = 'user'
             WHEN 'subscription' THEN u.kind = 'subscription'
               AND (NOT r.filters ? 'products' OR EXISTS (
                     SELECT 1 FROM jsonb_array_elements_text(r.filters->'products') p(pattern)
                      WHERE coalesce(u.product, '') ~* p.pattern OR coalesce(u.product_name, '') ~* p.pattern))
             ELSE false
           END)
$cap$;
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
   AND NOT EXISTS (SELECT 1 FROM billrecon.excluded_vendor_products e
                    WHERE e.integration_id = u.integration_id
                      AND lower(e.product) IN (lower(coalesce(u.product, '')), lower(coalesce(u.product_name, ''))))
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
