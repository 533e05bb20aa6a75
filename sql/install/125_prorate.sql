-- Proration and billing-cycle arithmetic (src/reconcile, docs/proration.md):
-- pure functions, exact decimals, rounded half away from zero to cents.
-- No SET search_path: C functions that look up no object by name.

CREATE FUNCTION billrecon.prorate(unit_price numeric, qty_delta numeric, effective_date date,
                                  cycle_start date, cycle_end date)
RETURNS numeric
AS 'MODULE_PATHNAME', 'billrecon_prorate'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.prorate(numeric, numeric, date, date, date) IS
  'The prorated charge (credit when negative) of a quantity change from effective_date to the end of its billing '
  'cycle: unit_price x qty_delta x (days from effective_date to cycle_end, both included) / (days from cycle_start '
  'to cycle_end, both included), computed exactly and rounded half away from zero to 2 decimals. Effective on '
  'cycle_start: the full unit_price x qty_delta. An effective date outside the cycle, or cycle_end before '
  'cycle_start, is an error (22023). billrecon.billing_cycle() gives the cycle. See docs/proration.md.';

CREATE FUNCTION billrecon.billing_cycle(billing_cycle text, on_date date, anchor date DEFAULT NULL,
                                        OUT cycle_start date, OUT cycle_end date)
RETURNS record
AS 'MODULE_PATHNAME', 'billrecon_billing_cycle'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.billing_cycle(text, date, date) IS
  'The billing cycle (first and last day, both included) that contains on_date. billing_cycle: monthly, quarterly or '
  'annual; with an anchor (the agreement''s start date) cycles start every 1, 3 or 12 months on the anchor''s day '
  'of month, or on the month''s last day when it is shorter (anchor Jan 31: Feb 28, Mar 31, Apr 30, ...), and '
  'continue backwards before the anchor; without one they are calendar months, quarters and years. other and '
  'unknown (cycles billrecon cannot normalize) give the calendar month containing on_date, anchor ignored: the '
  'caller should mark what it derives from them as estimated. NULL billing_cycle or on_date: NULL. '
  'See docs/proration.md.';

CREATE FUNCTION billrecon.monthly_amount(amount numeric, billing_cycle text)
RETURNS numeric
AS 'MODULE_PATHNAME', 'billrecon_monthly_amount'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.monthly_amount(numeric, text) IS
  'A billing cycle''s amount for one month: amount (monthly), amount / 3 (quarterly), amount / 12 (annual), '
  'rounded half away from zero to 2 decimals. other and unknown count as monthly (amount unchanged, rounded): '
  'the caller should mark the result as estimated. See docs/proration.md.';

-- Pure functions: every billrecon role may call them (operators and admins
-- through billrecon_reader); PUBLIC may not, as for every billrecon function.
REVOKE ALL ON FUNCTION billrecon.prorate(numeric, numeric, date, date, date),
                       billrecon.billing_cycle(text, date, date),
                       billrecon.monthly_amount(numeric, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION billrecon.prorate(numeric, numeric, date, date, date),
                          billrecon.billing_cycle(text, date, date),
                          billrecon.monthly_amount(numeric, text)
  TO billrecon_reader;
