-- Writing a quantity back to the PSA (the building block of the change workflow).

CREATE FUNCTION billrecon._write_back_quantity_c(integration text, line_item_id text, quantity text,
                                                 effective_date text, check_first boolean)
RETURNS TABLE (quantity_before text, quantity_after text, reference text, note text, requests bigint)
AS 'MODULE_PATHNAME', 'billrecon_write_back_quantity'
LANGUAGE C STRICT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION billrecon._write_back_quantity_c(text, text, text, text, boolean) IS
  'Internal: the C side of billrecon._write_back_quantity()';

CREATE FUNCTION billrecon._write_back_quantity(integration text, line_item_id text, quantity numeric,
                                               effective_date date DEFAULT NULL, check_first boolean DEFAULT true)
RETURNS TABLE (quantity_before numeric, quantity_after numeric, reference text, note text, requests bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $wb$
BEGIN
  IF quantity IS NULL OR quantity < 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid quantity %s', coalesce(quantity::text, 'NULL')),
      DETAIL = 'A line item''s quantity is a number of zero or more.',
      HINT = 'Pass the quantity the line should bill from the effective date on.';
  END IF;
  -- Quantities cross the C boundary as exact decimal text.
  RETURN QUERY SELECT c.quantity_before::numeric, c.quantity_after::numeric, c.reference, c.note, c.requests
    FROM billrecon._write_back_quantity_c(
      integration, line_item_id, quantity::text,
      to_char(coalesce(effective_date, (date_trunc('month', current_date) + interval '1 month')::date), 'YYYY-MM-DD'),
      coalesce(check_first, true)) AS c;
END
$wb$;
COMMENT ON FUNCTION billrecon._write_back_quantity(text, text, numeric, date, boolean) IS
  'Internal (admin): writes one line item''s quantity to the PSA the way its API does it (ConnectWise: cancel the '
  'addition the day before and add a dated one; HaloPSA: post the recurring invoice; Autotask: a contract service '
  'adjustment). effective_date defaults to the first day of next month. With check_first it reads the PSA''s '
  'quantity and sends nothing when it already matches. billrecon.push_changes() uses it for approved cards.';
