#!/usr/bin/env bash
# Ingest benchmark (issue 9, items 1 and 6): 1,000,000 NinjaOne detailed
# devices (about 500 MB of JSON) in pages of 1,000 from bench/ninja_pages.py
# (pre-rendered, the real API's OAuth2 and after=<id> paging) -> billrecon's
# full sync into billrecon.usage_records, beside (a) page bodies into a text
# column expanded with jsonb_to_recordset, (b) COPY of the same rows as CSV,
# (c) a bare keep-alive curl download of the same pages. Prints min / median /
# max of 3 runs, the floor max(b, c), the ratios (targets: <= 1.5 x floor,
# >= 6 x faster than (a)) and the syncing backend's peak RSS (VmHWM, target
# <= 200 MB). Never fails on time. Needs about 3 GB of RAM and curl.
#
#   bash bench/run_ingest_bench.sh [--records N] [--runs N] [--page-size N] [--orgs N] [--no-resync]
#
# Uses the running test cluster (or PGHOST/PGPORT/PGUSER with BILLRECON_BENCH_PG=env);
# otherwise builds, installs and starts a throwaway cluster and stops it afterwards.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_cluster.sh" "$(dirname "${BASH_SOURCE[0]}")/ingest_bench.py" "$@"
