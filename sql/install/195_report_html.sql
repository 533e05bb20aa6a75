-- The monthly report as one self-contained HTML page, for the billing lead
-- who never opens psql: billrecon.report_html(run_id). No external assets
-- (inline CSS, inline SVG charts, no script), every text from the data
-- HTML-escaped, money with 2 decimals and thousands separators. It reads the
-- report views with the caller's rights, so billrecon_reader may run it.
-- The source stays ASCII (a database in another encoding must be able to
-- install it): non-ASCII characters of the page are numeric entities.

CREATE FUNCTION billrecon._html_escape(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN coalesce(
         replace(replace(replace(replace(replace(
           value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;'),
         '');
COMMENT ON FUNCTION billrecon._html_escape(text) IS
  'Internal: text made safe for HTML element content and quoted attributes (& < > " and '' as entities); '
  'null gives an empty string';

-- 1234567.5 -> '1,234,567.50' (signed: '+1,234,567.50'); null -> an en dash.
-- The pattern's "," and "." are literal, whatever lc_numeric says.
CREATE FUNCTION billrecon._report_money(amount numeric, signed boolean DEFAULT false)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
         WHEN amount IS NULL THEN '&#8211;'
         ELSE (CASE WHEN signed AND amount > 0 THEN '+' ELSE '' END)
              || to_char(round(amount, 2), 'FM999,999,999,999,990.00')
       END;
COMMENT ON FUNCTION billrecon._report_money(numeric, boolean) IS
  'Internal: money as report text, 2 decimals and thousands separators (1,234.50; signed adds + to positive '
  'amounts); null gives an en dash entity';

-- A horizontal bar chart as inline SVG: one row per label, the negative part
-- drawn left of a zero axis, the positive part right of it.
CREATE FUNCTION billrecon._report_bars(labels text[], positive numeric[], negative numeric[], notes text[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $rb$
DECLARE
  k_width   constant integer := 1000;
  k_plot_x  constant integer := 270;    -- labels end here
  k_plot_w  constant integer := 500;
  k_note_x  constant integer := 786;
  k_row_h   constant integer := 26;
  k_top     constant integer := 8;
  v_n       integer := coalesce(cardinality(labels), 0);
  v_pos_max numeric;
  v_neg_max numeric;
  v_scale   numeric;
  v_x0      numeric;
  v_height  integer;
  v_y       integer;
  v_w       numeric;
  v_label   text;
  v_svg     text;
BEGIN
  IF v_n = 0 THEN
    RETURN '<p class="empty">Nothing to chart.</p>';
  END IF;
  SELECT coalesce(max(p), 0) INTO v_pos_max FROM unnest(positive) AS u(p) WHERE p > 0;
  SELECT coalesce(max(-m), 0) INTO v_neg_max FROM unnest(negative) AS u(m) WHERE m < 0;
  v_pos_max := coalesce(v_pos_max, 0);
  v_neg_max := coalesce(v_neg_max, 0);
  IF v_pos_max + v_neg_max = 0 THEN
    v_scale := 0;
    v_x0 := k_plot_x + k_plot_w / 2;
  ELSE
    v_scale := k_plot_w / (v_pos_max + v_neg_max);
    v_x0 := k_plot_x + v_neg_max * v_scale;
  END IF;
  v_height := k_top + v_n * k_row_h + 8;
  v_svg := format(
    '<svg class="chart" viewBox="0 0 %s %s" width="100%%" preserveAspectRatio="xMinYMin meet" role="img">',
    k_width, v_height);
  FOR i IN 1 .. v_n LOOP
    v_y := k_top + (i - 1) * k_row_h;
    v_label := coalesce(labels[i], '');
    v_svg := v_svg || format('<g><title>%s: %s</title>', billrecon._html_escape(v_label),
                                        billrecon._html_escape(notes[i]));
    IF i % 2 = 0 THEN
      v_svg := v_svg || format('<rect class="stripe" x="0" y="%s" width="%s" height="%s"/>',
                                          v_y, k_width, k_row_h);
    END IF;
    v_svg := v_svg || format('<text class="lbl" x="%s" y="%s" text-anchor="end">%s</text>',
      k_plot_x - 8, v_y + 17,
      CASE WHEN length(v_label) > 36
           THEN billrecon._html_escape(left(v_label, 35)) || '&#8230;'
           ELSE billrecon._html_escape(v_label) END);
    IF negative[i] < 0 THEN
      v_w := greatest(-negative[i] * v_scale, 1);
      v_svg := v_svg || format('<rect class="neg" x="%s" y="%s" width="%s" height="%s"/>',
        round(v_x0 - v_w, 1), v_y + 5, round(v_w, 1), k_row_h - 10);
    END IF;
    IF positive[i] > 0 THEN
      v_w := greatest(positive[i] * v_scale, 1);
      v_svg := v_svg || format('<rect class="pos" x="%s" y="%s" width="%s" height="%s"/>',
        round(v_x0, 1), v_y + 5, round(v_w, 1), k_row_h - 10);
    END IF;
    v_svg := v_svg || format('<text class="val" x="%s" y="%s">%s</text></g>',
      k_note_x, v_y + 17, billrecon._html_escape(notes[i]));
  END LOOP;
  v_svg := v_svg || format('<line class="axis" x1="%s" y1="%s" x2="%s" y2="%s"/></svg>',
    round(v_x0, 1), k_top - 4, round(v_x0, 1), v_height - 4);
  RETURN v_svg;
END
$rb$;
COMMENT ON FUNCTION billrecon._report_bars(text[], numeric[], numeric[], text[]) IS
  'Internal: an inline SVG horizontal bar chart for billrecon.report_html(): per label, the negative amount '
  'drawn left of a zero axis (class neg), the positive one right of it (class pos), and a note; labels and notes '
  'are HTML-escaped';

CREATE FUNCTION billrecon.report_html(run_id bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $rh$
#variable_conflict use_column
DECLARE
  v_id        bigint := report_html.run_id;
  v_run       record;
  v_last      bigint;
  v_sum       record;
  v_clients   bigint;
  v_cards     record;
  v_inactive  record;
  v_labels    text[];
  v_pos       numeric[];
  v_neg       numeric[];
  v_notes     text[];
  v_rows      text;
  v_current   text;
  v_client    text;
  v_title     text;
  v_flags     text;
  v_section   text;
  h           text;
BEGIN
  v_last := billrecon.last_run_id();
  IF v_id IS NULL THEN
    v_id := v_last;
    IF v_id IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'there is no reconcile run to report on yet',
        DETAIL = 'billrecon.reconcile_runs holds no finished run of every client.',
        HINT = 'Reconcile first: SELECT billrecon.reconcile(); (as billrecon_operator), then '
               'SELECT billrecon.report_html(); or pass the id of a one-client run.';
    END IF;
  END IF;

  SELECT r.* INTO v_run FROM billrecon.reconcile_runs r WHERE r.id = v_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('reconcile run %s does not exist', v_id),
      DETAIL = format('billrecon.reconcile_runs has no run with id %s; the newest finished run is %s.',
                      v_id, coalesce(v_last::text, 'none')),
      HINT = 'SELECT id, period_start, finished_at FROM billrecon.reconcile_runs ORDER BY id DESC; lists the runs; '
             'billrecon.report_html() without an argument reports on the newest.';
  END IF;

  v_client := v_run.client_external_id;    -- a run of one client: its current data only
  v_title := format('Billing reconciliation %s, run %s', to_char(v_run.period_start, 'FMMonth YYYY'), v_id);
  v_current := CASE WHEN v_id IS DISTINCT FROM v_last
                    THEN ' <span class="note">(current data, not as of run ' || v_id || ')</span>' ELSE '' END;

  -- Head and style. Colours: under-billed (revenue to recover) blue, over-billed (credits owed) orange.
  h := '<!DOCTYPE html>' || E'\n'
    || '<html lang="en"><head><meta charset="utf-8">'
    || '<meta name="viewport" content="width=device-width, initial-scale=1">'
    || '<meta name="generator" content="' || billrecon._html_escape(billrecon.version()) || '">'
    || '<title>' || billrecon._html_escape(v_title) || '</title>' || E'\n'
    || '<style>' || E'\n'
    || ':root{--pos:#1f6fb2;--neg:#d9480f;--ink:#1f2933;--muted:#616e7c;--line:#d9dee3;--bg:#f5f7fa}' || E'\n'
    || '*{box-sizing:border-box}' || E'\n'
    || 'body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 "Segoe UI",Roboto,"Helvetica Neue",'
    || 'Arial,sans-serif}' || E'\n'
    || 'header,main,footer{max-width:1180px;margin:0 auto;padding:0 24px}' || E'\n'
    || 'header{padding-top:24px}h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 10px}' || E'\n'
    || 'h3{font-size:15px;margin:14px 0 6px}.sub{color:var(--muted);margin:0}' || E'\n'
    || 'section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;'
    || 'margin:16px 0}' || E'\n'
    || 'table{border-collapse:collapse;width:100%;font-size:13px}' || E'\n'
    || 'th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}' || E'\n'
    || 'th{background:#eef1f4;font-weight:600}td.num,th.num{text-align:right;white-space:nowrap;'
    || 'font-variant-numeric:tabular-nums}' || E'\n'
    || 'td.why{color:#3e4c59;min-width:340px;max-width:480px}table.narrow{width:auto;min-width:50%}' || E'\n'
    || '.small{font-size:12px;color:var(--muted)}' || E'\n'
    || '.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;'
    || 'margin-bottom:14px}' || E'\n'
    || '.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fafbfc}' || E'\n'
    || '.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.03em}' || E'\n'
    || '.card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}' || E'\n'
    || '.pos{color:var(--pos)}.neg{color:var(--neg)}.note{color:var(--muted);font-weight:400;font-size:13px}' || E'\n'
    || '.pill{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;'
    || 'color:#fff}' || E'\n'
    || '.green{background:#2f9e44}.yellow{background:#e8a200}.red{background:#c92a2a}' || E'\n'
    || '.flag{display:inline-block;padding:0 6px;border-radius:4px;background:#fff3bf;font-size:12px;'
    || 'margin-right:3px}' || E'\n'
    || '.warn{background:#fff8e1;border-left:4px solid #e8a200;padding:6px 10px;margin:4px 0;list-style:none}' || E'\n'
    || 'ul.notes{padding:0;margin:10px 0 0}.ok{color:#2f9e44;font-weight:600}.empty{color:var(--muted)}' || E'\n'
    || '.charts{display:grid;grid-template-columns:1fr;gap:8px}' || E'\n'
    || 'svg.chart{display:block;font-size:13px}svg.chart rect.pos{fill:var(--pos)}' || E'\n'
    || 'svg.chart rect.neg{fill:var(--neg)}' || E'\n'
    || 'svg.chart rect.stripe{fill:#f5f7fa}svg.chart .lbl{fill:var(--ink)}svg.chart .val{fill:var(--muted)}' || E'\n'
    || 'svg.chart line.axis{stroke:#7b8794;stroke-width:1}' || E'\n'
    || '.legend span{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;'
    || 'margin:0 4px 0 12px}.legend .lp{background:var(--pos)}.legend .ln{background:var(--neg)}' || E'\n'
    || 'footer{color:var(--muted);font-size:12.5px;padding-bottom:32px}' || E'\n'
    || 'footer dt{font-weight:600;color:var(--ink)}' || E'\n'
    || 'footer dd{margin:0 0 6px 0}' || E'\n'
    || '@media print{body{background:#fff}section{break-inside:avoid;border-color:#bbb}}' || E'\n'
    || '</style></head>' || E'\n' || '<body>' || E'\n';

  -- Title: the period, the run, the dates.
  h := h || format(
      '<header><h1>%s</h1><p class="sub">Run <b>%s</b> &#183; period %s to %s%s &#183; PSA %s &#183; '
      'reconciled %s by %s &#183; report of %s</p></header>' || E'\n' || '<main>' || E'\n',
      billrecon._html_escape(v_title), v_id, to_char(v_run.period_start, 'YYYY-MM-DD'),
      to_char(v_run.period_end, 'YYYY-MM-DD'),
      CASE WHEN v_run.client_external_id IS NOT NULL
           THEN ' &#183; one client only (PSA id ' || billrecon._html_escape(v_run.client_external_id) || ')'
           ELSE '' END,
      billrecon._html_escape(coalesce(v_run.psa_integration, 'none')),
      to_char(v_run.started_at, 'YYYY-MM-DD HH24:MI TZ'), billrecon._html_escape(v_run.run_by),
      to_char(now(), 'YYYY-MM-DD HH24:MI TZ'));

  -- Data health: the inputs the run used, and its notes.
  SELECT string_agg(format(
           '<tr><td>%s</td><td>%s</td><td>%s</td><td><span class="pill %s">%s</span></td><td>%s</td><td>%s</td></tr>',
           billrecon._html_escape(i.integration), billrecon._html_escape(i.kind), billrecon._html_escape(i.side),
           CASE WHEN i.status IN ('green', 'yellow', 'red') THEN i.status ELSE 'yellow' END,
           billrecon._html_escape(i.status),
           coalesce(to_char(i.last_success_at, 'YYYY-MM-DD HH24:MI TZ'), 'never'),
           billrecon._html_escape(i.last_error)),
           E'\n' ORDER BY i.side, i.integration)
    INTO v_rows
    FROM billrecon.reconcile_run_inputs i WHERE i.run_id = v_id;
  h := h || '<section id="health"><h2>Data health at the time of the run</h2>'
    || CASE WHEN v_rows IS NULL THEN '<p class="empty">The run recorded no integration.</p>'
            ELSE '<table><thead><tr><th>Integration</th><th>Kind</th><th>Side</th><th>Status</th>'
                 || '<th>Last successful sync</th><th>Last error</th></tr></thead><tbody>' || E'\n'
                 || v_rows || '</tbody></table>' END
    || CASE WHEN cardinality(v_run.notes) > 0
            THEN '<ul class="notes">'
                 || (SELECT string_agg('<li class="warn">' || billrecon._html_escape(n) || '</li>', '' ORDER BY o)
                       FROM unnest(v_run.notes) WITH ORDINALITY AS x(n, o))
                 || '</ul>'
            ELSE '<p class="ok">No warning: every input was green when the run was made.</p>' END
    || '</section>' || E'\n';

  -- Summary figures.
  SELECT count(*) AS n,
         count(d.amount) AS priced,
         coalesce(sum(d.amount) FILTER (WHERE d.amount > 0), 0) AS under,
         count(*) FILTER (WHERE d.amount > 0) AS n_under,
         coalesce(sum(d.amount) FILTER (WHERE d.amount < 0), 0) AS over,
         count(*) FILTER (WHERE d.amount < 0) AS n_over,
         coalesce(sum(d.amount), 0) AS net,
         coalesce(sum(abs(d.amount)), 0) AS absolute,
         coalesce(sum(d.monthly_amount), 0) AS monthly,
         count(DISTINCT d.psa_company_id) AS clients
    INTO v_sum
    FROM billrecon.discrepancies d WHERE d.run_id = v_id;
  SELECT count(*) INTO v_clients FROM billrecon.reconciled_invoices c WHERE c.run_id = v_id;

  h := h || '<section id="summary"><h2>Summary</h2><div class="cards">'
    || format('<div class="card"><div class="k">Under-billed</div><div class="v pos">%s</div>'
              '<div class="small">%s discrepancies: revenue to recover</div></div>',
              billrecon._report_money(v_sum.under), v_sum.n_under)
    || format('<div class="card"><div class="k">Over-billed</div><div class="v neg">%s</div>'
              '<div class="small">%s discrepancies: credits owed</div></div>',
              billrecon._report_money(v_sum.over), v_sum.n_over)
    || format('<div class="card"><div class="k">Net</div><div class="v %s">%s</div>'
              '<div class="small">%s a month</div></div>',
              CASE WHEN v_sum.net < 0 THEN 'neg' WHEN v_sum.net > 0 THEN 'pos' ELSE '' END,
              billrecon._report_money(v_sum.net, true),
              billrecon._report_money(v_sum.monthly, true))
    || format('<div class="card"><div class="k">Absolute</div><div class="v">%s</div>'
              '<div class="small">money in question either way</div></div>',
              billrecon._report_money(v_sum.absolute))
    || format('<div class="card"><div class="k">Discrepancies</div><div class="v">%s</div>'
              '<div class="small">%s with an amount</div></div>', v_sum.n, v_sum.priced)
    || format('<div class="card"><div class="k">Clients</div><div class="v">%s</div>'
              '<div class="small">with a discrepancy, of %s reconciled</div></div>',
              v_sum.clients, v_clients)
    || '</div>';
  SELECT string_agg(format(
           '<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td><td class="num pos">%s</td>'
           '<td class="num neg">%s</td><td class="num">%s</td></tr>',
           t.type, t.n, t.priced, billrecon._report_money(t.under), billrecon._report_money(t.over),
           billrecon._report_money(t.net, true)), E'\n' ORDER BY t.o)
    INTO v_rows
    FROM (SELECT k.type, k.o, count(d.run_id) AS n, count(d.amount) AS priced,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount > 0), 0) AS under,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount < 0), 0) AS over,
                 sum(d.amount) AS net
            FROM unnest(ARRAY['calculated', 'estimated', 'unmapped', 'unaccounted'])
                 WITH ORDINALITY AS k(type, o)
            LEFT JOIN billrecon.discrepancies d ON d.run_id = v_id AND d.type = k.type
           GROUP BY k.type, k.o) t;
  h := h || '<h3>By type</h3><table><thead><tr><th>Type</th><th class="num">Discrepancies</th>'
    || '<th class="num">With an amount</th><th class="num">Under-billed</th><th class="num">Over-billed</th>'
    || '<th class="num">Net</th></tr></thead><tbody>' || E'\n' || v_rows || '</tbody></table></section>' || E'\n';

  -- Charts: by client (top 15 by money in question) and by type.
  SELECT array_agg(c.company ORDER BY c.absolute DESC, c.company, c.psa_company_id),
         array_agg(c.under ORDER BY c.absolute DESC, c.company, c.psa_company_id),
         array_agg(c.over ORDER BY c.absolute DESC, c.company, c.psa_company_id),
         array_agg(format('net %s (%s rows)', billrecon._report_money(c.net, true), c.n)
                   ORDER BY c.absolute DESC, c.company, c.psa_company_id)
    INTO v_labels, v_pos, v_neg, v_notes
    FROM (SELECT d.psa_company_id, max(d.company) AS company, count(*) AS n,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount > 0), 0) AS under,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount < 0), 0) AS over,
                 coalesce(sum(d.amount), 0) AS net,
                 sum(abs(d.amount)) AS absolute
            FROM billrecon.discrepancies d
           WHERE d.run_id = v_id AND d.psa_company_id IS NOT NULL
           GROUP BY d.psa_company_id
          HAVING sum(abs(d.amount)) > 0
           ORDER BY absolute DESC, company, d.psa_company_id
           LIMIT 15) c;
  h := h || '<section id="charts"><h2>Where the money is</h2>'
    || '<p class="legend small">Bars: <span class="lp"></span>under-billed (amount &gt; 0) '
    || '<span class="ln"></span>over-billed (amount &lt; 0), per billing cycle; net = their sum.</p>'
    || '<div class="charts"><div><h3>By client (the 15 with the most money in question)</h3>'
    || billrecon._report_bars(v_labels, v_pos, v_neg, v_notes) || '</div>';
  SELECT array_agg(t.type ORDER BY t.o), array_agg(t.under ORDER BY t.o),
         array_agg(t.over ORDER BY t.o),
         array_agg(CASE WHEN t.priced = 0 THEN format('%s rows, no amount', t.n)
                        ELSE format('net %s (%s rows)', billrecon._report_money(t.net, true), t.n) END
                   ORDER BY t.o)
    INTO v_labels, v_pos, v_neg, v_notes
    FROM (SELECT k.type, k.o, count(d.run_id) AS n, count(d.amount) AS priced,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount > 0), 0) AS under,
                 coalesce(sum(d.amount) FILTER (WHERE d.amount < 0), 0) AS over,
                 coalesce(sum(d.amount), 0) AS net
            FROM unnest(ARRAY['calculated', 'estimated', 'unmapped', 'unaccounted'])
                 WITH ORDINALITY AS k(type, o)
            LEFT JOIN billrecon.discrepancies d ON d.run_id = v_id AND d.type = k.type
           GROUP BY k.type, k.o) t;
  h := h || '<div><h3>By type</h3>' || billrecon._report_bars(v_labels, v_pos, v_neg, v_notes)
    || '</div></div></section>' || E'\n';

  -- The top 20 discrepancies, with their explanation.
  SELECT string_agg(format(
           '<tr><td class="num">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%s</td>'
           '<td class="num">%s</td><td class="num">%s</td><td class="num %s">%s</td><td class="why">%s%s</td></tr>',
           x.n,
           CASE WHEN x.company IS NOT NULL THEN billrecon._html_escape(x.company)
                ELSE 'vendor account ' || billrecon._html_escape(x.vendor_account)
                     || ' <span class="small">(no client)</span>'
           END,
           CASE WHEN x.line_item_id IS NOT NULL
                THEN billrecon._html_escape(coalesce(x.product_name, x.product))
                     || ' <span class="small">line ' || billrecon._html_escape(x.line_item_id) || '</span>'
                ELSE billrecon._html_escape(coalesce(x.product_name, x.product, x.usage_kind)) END,
           billrecon._html_escape(x.integration), billrecon._html_escape(x.type),
           coalesce(trim_scale(x.invoiced_qty)::text, ''),
           coalesce(trim_scale(x.counted_qty)::text, ''),
           coalesce(trim_scale(x.variance)::text, ''),
           CASE WHEN x.amount < 0 THEN 'neg' WHEN x.amount > 0 THEN 'pos' ELSE '' END,
           billrecon._report_money(x.amount, true),
           billrecon._html_escape(x.explanation),
           CASE WHEN x.estimate_basis IS NOT NULL
                THEN '<br><span class="small">Estimated: ' || billrecon._html_escape(x.estimate_basis) || '</span>'
                ELSE '' END),
           E'\n' ORDER BY x.n)
    INTO v_rows
    FROM (SELECT d.*, row_number() OVER (ORDER BY abs(d.amount) DESC NULLS LAST, d.company, d.line_item_id,
                                                  d.result_id) AS n
            FROM billrecon.discrepancies d WHERE d.run_id = v_id
           ORDER BY abs(d.amount) DESC NULLS LAST, d.company, d.line_item_id, d.result_id
           LIMIT 20) x;
  h := h || '<section id="top"><h2>The 20 biggest discrepancies</h2>'
    || CASE WHEN v_rows IS NULL THEN '<p class="ok">No discrepancy: billing matches usage.</p>'
            ELSE '<table><thead><tr><th class="num">#</th><th>Client</th><th>Service</th><th>Integration</th>'
                 || '<th>Type</th><th class="num">Billed</th><th class="num">Counted</th><th class="num">Variance</th>'
                 || '<th class="num">Amount</th><th>Why</th></tr></thead><tbody>' || E'\n' || v_rows
                 || '</tbody></table>' END
    || '</section>' || E'\n';

  -- Change cards of this run (raised by it, or still found by it).
  SELECT count(*) FILTER (WHERE c.status = 'pending') AS pending,
         coalesce(sum(c.amount) FILTER (WHERE c.status = 'pending'), 0) AS pending_amount,
         count(*) FILTER (WHERE c.status = 'pending' AND cardinality(c.flags) > 0) AS flagged,
         coalesce(sum(c.amount) FILTER (WHERE c.status = 'pending' AND cardinality(c.flags) > 0), 0) AS flagged_amount,
         count(*) FILTER (WHERE c.status = 'pending' AND c.kind = 'new_revenue') AS new_revenue,
         count(*) FILTER (WHERE c.status = 'approved') AS approved,
         count(*) FILTER (WHERE c.status = 'pushed') AS pushed,
         count(*) FILTER (WHERE c.status = 'failed') AS failed,
         count(*) FILTER (WHERE c.status = 'dismissed') AS dismissed
    INTO v_cards
    FROM billrecon.change_cards c WHERE c.run_id = v_id OR c.last_run_id = v_id;
  SELECT string_agg(format(
           '<tr><td class="num">%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%s</td><td class="num">%s</td>'
           '<td class="num %s">%s</td><td>%s</td></tr>',
           x.card_id, billrecon._html_escape(x.company),
           billrecon._html_escape(coalesce(x.product_name, x.product))
             || CASE WHEN x.line_item_id IS NOT NULL
                     THEN ' <span class="small">line ' || billrecon._html_escape(x.line_item_id) || '</span>'
                     ELSE '' END,
           billrecon._html_escape(x.kind), trim_scale(x.current_qty), trim_scale(x.proposed_qty),
           CASE WHEN x.amount < 0 THEN 'neg' WHEN x.amount > 0 THEN 'pos' ELSE '' END,
           billrecon._report_money(x.amount, true),
           (SELECT string_agg('<span class="flag">' || billrecon._html_escape(f) || '</span>', '')
              FROM unnest(x.flags) AS f)),
           E'\n' ORDER BY abs(x.amount) DESC NULLS LAST, x.card_id)
    INTO v_rows
    FROM (SELECT c.* FROM billrecon.change_cards c
           WHERE (c.run_id = v_id OR c.last_run_id = v_id) AND c.status = 'pending'
           ORDER BY abs(c.amount) DESC NULLS LAST, c.card_id LIMIT 10) x;
  h := h || '<section id="cards"><h2>Change cards waiting for a decision</h2><div class="cards">'
    || format('<div class="card"><div class="k">Pending</div><div class="v">%s</div>'
              '<div class="small">%s of them new revenue</div></div>', v_cards.pending, v_cards.new_revenue)
    || format('<div class="card"><div class="k">Pending amount</div><div class="v">%s</div>'
              '<div class="small">per billing cycle</div></div>',
              billrecon._report_money(v_cards.pending_amount, true))
    || format('<div class="card"><div class="k">Flagged for a spot check</div><div class="v">%s</div>'
              '<div class="small">%s; approve with force</div></div>',
              v_cards.flagged, billrecon._report_money(v_cards.flagged_amount, true))
    || format('<div class="card"><div class="k">Decided</div><div class="v">%s</div>'
              '<div class="small">%s approved, %s pushed, %s failed, %s dismissed</div></div>',
              v_cards.approved + v_cards.pushed + v_cards.failed + v_cards.dismissed,
              v_cards.approved, v_cards.pushed, v_cards.failed, v_cards.dismissed)
    || '</div>'
    || CASE WHEN v_rows IS NULL THEN '<p class="ok">No card is pending.</p>'
            ELSE '<h3>The 10 biggest pending cards</h3><table><thead><tr><th class="num">Card</th><th>Client</th>'
                 || '<th>Service</th><th>Kind</th><th class="num">Now</th><th class="num">Proposed</th>'
                 || '<th class="num">Amount</th><th>Flags</th></tr></thead><tbody>' || E'\n' || v_rows
                 || '</tbody></table>' END
    || '</section>' || E'\n';

  -- Inactive seats (current data).
  SELECT count(*) AS n, count(s.psa_company_id) AS mapped, count(DISTINCT s.psa_company_id) AS clients,
         count(s.monthly_cost) AS billed, coalesce(sum(s.monthly_cost), 0) AS cost
    INTO v_inactive
    FROM billrecon.inactive_seats s WHERE v_client IS NULL OR s.psa_company_id = v_client;
  SELECT string_agg(format(
           '<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%s</td><td class="num">%s</td>'
           '<td>%s</td></tr>',
           CASE WHEN x.company IS NOT NULL THEN billrecon._html_escape(x.company)
                ELSE '<span class="small">no client (account ' || billrecon._html_escape(x.vendor_account_id)
                     || ')</span>' END,
           billrecon._html_escape(x.integration), billrecon._html_escape(x.seat),
           billrecon._html_escape(x.kind || coalesce(' (' || x.device_class || ')', '')),
           coalesce(to_char(x.last_active_at, 'YYYY-MM-DD'), ''), x.days_inactive,
           billrecon._report_money(x.monthly_cost), billrecon._html_escape(x.billed_on_line_item_id)),
           E'\n' ORDER BY x.o)
    INTO v_rows
    FROM (SELECT s.*, row_number() OVER (ORDER BY s.monthly_cost DESC NULLS LAST, s.days_inactive DESC,
                                                  s.company, s.seat, s.seat_id) AS o
            FROM billrecon.inactive_seats s WHERE v_client IS NULL OR s.psa_company_id = v_client
           ORDER BY s.monthly_cost DESC NULLS LAST, s.days_inactive DESC, s.company, s.seat, s.seat_id
           LIMIT 10) x;
  h := h || '<section id="inactive"><h2>Inactive seats' || v_current || '</h2>'
    || format('<p>%s devices and users with no activity for more than %s, %s of them at %s client(s); '
              '%s billed on a line, carrying <b>%s</b> a month.</p>',
              v_inactive.n,
              billrecon._html_escape(coalesce(
                nullif(current_setting('billrecon.inactive_after', true), ''), '21d')::interval::text),
              v_inactive.mapped, v_inactive.clients, v_inactive.billed, billrecon._report_money(v_inactive.cost))
    || CASE WHEN v_rows IS NULL THEN ''
            ELSE '<table><thead><tr><th>Client</th><th>Integration</th><th>Seat</th><th>Kind</th><th>Last active</th>'
                 || '<th class="num">Days inactive</th><th class="num">Monthly cost</th><th>Billed on line</th></tr>'
                 || '</thead><tbody>' || E'\n' || v_rows || '</tbody></table>' END
    || '</section>' || E'\n';

  -- Flagged services (current data).
  SELECT string_agg(format('<span class="flag">%s</span> %s', billrecon._html_escape(f.flag), f.n),
                               ' &#183; ' ORDER BY f.flag)
    INTO v_flags
    FROM (SELECT s.flag, count(*) AS n FROM billrecon.flagged_services s
           WHERE v_client IS NULL OR s.psa_company_id = v_client GROUP BY s.flag) f;
  SELECT string_agg(format(
           '<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="num">%s</td><td class="num">%s</td>'
           '<td><span class="flag">%s</span></td><td>%s</td></tr>',
           billrecon._html_escape(x.company), billrecon._html_escape(x.agreement_id),
           billrecon._html_escape(x.line_item_id), billrecon._html_escape(coalesce(x.product_name, x.product)),
           coalesce(trim_scale(x.quantity)::text, ''), billrecon._report_money(x.unit_price),
           billrecon._html_escape(x.flag), billrecon._html_escape(x.detail)),
           E'\n' ORDER BY x.company, x.agreement_id, x.line_item_id, x.flag)
    INTO v_rows
    FROM (SELECT s.* FROM billrecon.flagged_services s WHERE v_client IS NULL OR s.psa_company_id = v_client
           ORDER BY s.company, s.agreement_id, s.line_item_id, s.flag LIMIT 25) x;
  h := h || '<section id="flagged"><h2>Flagged services' || v_current || '</h2>'
    || CASE WHEN v_rows IS NULL THEN '<p class="ok">No PSA line looks wrong.</p>'
            ELSE '<p>PSA lines whose billing data itself looks wrong: ' || v_flags || '.</p>'
                 || '<table><thead><tr><th>Client</th><th>Agreement</th><th>Line</th><th>Product</th>'
                 || '<th class="num">Quantity</th><th class="num">Unit price</th><th>Flag</th><th>Detail</th></tr>'
                 || '</thead><tbody>' || E'\n' || v_rows || '</tbody></table>' END
    || '</section>' || E'\n';

  -- Duplicate seats (current data): one machine reported twice. A role that
  -- may not read the view still gets the rest of the report.
  BEGIN
    SELECT string_agg(format('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td></tr>',
                             billrecon._html_escape(g.detail), g.machines, g.extra),
                      E'\n' ORDER BY g.extra DESC, g.detail)
      INTO v_rows
      FROM (SELECT s.detail, count(*) AS machines, sum(s.extra_seats) AS extra
              FROM billrecon.duplicate_seats s WHERE v_client IS NULL OR s.psa_company_id = v_client
             GROUP BY s.detail) g;
    SELECT string_agg(format('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td></tr>',
                             CASE WHEN c.company IS NULL THEN '<span class="small">accounts mapped to no client</span>'
                                  ELSE billrecon._html_escape(c.company) END, c.machines, c.extra),
                      E'\n' ORDER BY c.extra DESC, c.company)
      INTO v_flags
      FROM (SELECT s.company, count(*) AS machines, sum(s.extra_seats) AS extra
              FROM billrecon.duplicate_seats s WHERE v_client IS NULL OR s.psa_company_id = v_client
             GROUP BY s.psa_company_id, s.company
             ORDER BY extra DESC, s.company LIMIT 5) c;
    v_section := CASE WHEN v_rows IS NULL THEN '<p class="ok">No device is reported twice.</p>'
                      ELSE '<table class="narrow"><thead><tr><th>What</th><th class="num">Machines</th>'
                           || '<th class="num">Extra seats</th></tr></thead><tbody>' || E'\n' || v_rows
                           || '</tbody></table><h3>Most affected clients</h3><table class="narrow"><thead><tr>'
                           || '<th>Client</th><th class="num">Machines</th><th class="num">Extra seats</th></tr>'
                           || '</thead><tbody>' || E'\n' || v_flags || '</tbody></table>' END;
  EXCEPTION WHEN insufficient_privilege THEN
    v_section := format('<p class="empty">Not shown: %s (role %s).</p>', billrecon._html_escape(SQLERRM),
                        billrecon._html_escape(current_user));
  END;
  h := h || '<section id="duplicates"><h2>Duplicate seats' || v_current || '</h2>' || v_section
    || '</section>' || E'\n' || '</main>' || E'\n';

  -- Footer: how to read the numbers.
  h := h || '<footer><h2>How to read this report</h2><dl>'
    || '<dt>Signs</dt><dd>An amount &gt; 0 is <span class="pos">under-billed</span>: the client uses more than '
    || 'it pays for (revenue to recover). An amount &lt; 0 is <span class="neg">over-billed</span>: the client '
    || 'pays for more than it uses (a credit waiting to happen). Amounts are per billing cycle of the line; '
    || '&#8220;a month&#8221; figures are normalized (quarterly / 3, annual / 12).</dd>'
    || '<dt>calculated</dt><dd>Every input is a hard value synced from the PSA and the vendors.</dd>'
    || '<dt>estimated</dt><dd>Some input was inferred (a missing unit price, an assumed billing cycle, a manual '
    || 'line compared with an integration); the row says what.</dd>'
    || '<dt>unmapped</dt><dd>Usage or billing that cannot be tied to its counterpart because a mapping is '
    || 'missing (a vendor account mapped to no client, a line with no service rule): no amount until it is '
    || 'mapped.</dd>'
    || '<dt>unaccounted</dt><dd>Usage of a client that no line bills: usually new revenue, priced at what '
    || 'similar lines charge.</dd>'
    || '<dt>Current data</dt><dd>Inactive seats, flagged services and duplicate seats describe the data as synced '
    || 'now; the rest is the run as it was made.</dd></dl>'
    || format('<p>Generated by %s with billrecon.report_html(%s). Details: billrecon.discrepancies, '
              'billrecon.reconciled_invoices and billrecon.change_cards WHERE run_id = %s.</p>',
              billrecon._html_escape(billrecon.version()), v_id, v_id)
    || '</footer>' || E'\n' || '</body></html>' || E'\n';
  RETURN h;
END
$rh$;
COMMENT ON FUNCTION billrecon.report_html(bigint) IS
  'The monthly report of a reconcile run (null = billrecon.last_run_id()) as one self-contained HTML page for the '
  'billing lead: data health, summary figures, charts by client and by type, the top 20 discrepancies with their '
  'explanation, pending change cards, inactive seats, flagged services and duplicate seats. No external asset or '
  'script. psql -At -c ''SELECT billrecon.report_html()'' > report.html';

GRANT EXECUTE ON FUNCTION billrecon.report_html(bigint), billrecon._html_escape(text),
                          billrecon._report_money(numeric, boolean),
                          billrecon._report_bars(text[], numeric[], numeric[], text[])
  TO billrecon_reader;
