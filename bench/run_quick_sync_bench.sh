#!/usr/bin/env bash
# Quick sync benchmark (issue 9, item 3): requests of a ConnectWise quick sync
# after 1 % of the additions changed, beside the full sync's, counted at the
# mock (target <= 5 %), and NinjaOne's (no modified-since filter: quick runs
# as full). min / median / max of 3 runs. Never fails on the ratio.
#
#   bash bench/run_quick_sync_bench.sh [bench/quick_sync_bench.py options, e.g. --clients 500]
#
# Uses the running test cluster (or PGHOST/PGPORT/PGUSER with BILLRECON_BENCH_PG=env);
# otherwise builds, installs and starts a throwaway cluster and stops it afterwards.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_cluster.sh" "$(dirname "${BASH_SOURCE[0]}")/quick_sync_bench.py" "$@"
