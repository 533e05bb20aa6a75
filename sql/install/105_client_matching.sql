-- Suggested client matches and their confirmation.

CREATE FUNCTION billrecon.recommended_match_threshold()
RETURNS numeric
AS 'MODULE_PATHNAME', 'billrecon_recommended_match_threshold'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION billrecon.recommended_match_threshold() IS
  'The score from which billrecon.confirm_client_matches() confirms by default (0.9): on the labelled benchmark set '
  '(bench/run_match_bench.sh) no wrong pair scores that high, and about 99 % of right pairs do';

CREATE FUNCTION billrecon.suggest_client_matches()
RETURNS integer
AS 'MODULE_PATHNAME', 'billrecon_suggest_client_matches'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION billrecon.suggest_client_matches() IS
  'Suggests a PSA company for every unmapped vendor account of every enabled vendor integration, from normalized '
  'names (case, accents, punctuation, legal suffixes, & / and, abbreviations, typos), rare shared words and shared '
  'domains; one to one within an integration; rejected pairs are never suggested again. Replaces the earlier '
  'suggestions of unmapped accounts and returns how many were made; read them in billrecon.client_match_suggestions.';

CREATE FUNCTION billrecon.confirm_client_matches(min_score numeric DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $confirm$
DECLARE
  v_min numeric := coalesce(min_score, billrecon.recommended_match_threshold());
  v_n integer;
BEGIN
  IF v_min < 0 OR v_min > 1 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('invalid min_score %s', v_min),
      DETAIL = 'Scores are between 0 and 1.',
      HINT = format('Pass NULL for the recommended threshold (%s).', billrecon.recommended_match_threshold());
  END IF;
  WITH confirmed AS (
    INSERT INTO billrecon.client_mappings (vendor_account_id, psa_company_id, source, score, evidence)
    SELECT c.vendor_account_id, c.psa_company_id, 'suggestion', c.score, c.evidence
      FROM billrecon.client_match_candidates c
      JOIN billrecon.vendor_accounts va ON va.id = c.vendor_account_id AND va.removed_at IS NULL
      JOIN billrecon.psa_companies pc ON pc.id = c.psa_company_id AND pc.removed_at IS NULL
     WHERE c.score >= v_min
    ON CONFLICT ON CONSTRAINT client_mappings_pkey DO NOTHING
    RETURNING vendor_account_id
  )
  DELETE FROM billrecon.client_match_candidates c USING confirmed x WHERE c.vendor_account_id = x.vendor_account_id;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  RETURN v_n;
END
$confirm$;
COMMENT ON FUNCTION billrecon.confirm_client_matches(numeric) IS
  'Confirms every suggested client match scoring at least min_score (default: billrecon.recommended_match_threshold(), '
  '0.9) as a mapping; returns how many. Review the rest in billrecon.client_match_suggestions.';
