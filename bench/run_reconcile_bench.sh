#!/usr/bin/env bash
# Reconcile benchmark (issues 5 and 9): 5,000 clients, 50,000 line items and
# 1,000,000 usage records built inside PostgreSQL; billrecon.reconcile()
# beside the plain SQL join that counts the same usage, min / median / max of
# 3 runs and the ratio (targets: < 1 s, <= 1.5 x the join). Never fails on time.
#
#   bash bench/run_reconcile_bench.sh [bench/reconcile_bench.py options, e.g. --clients 500]
#
# Uses the test cluster when it is running; otherwise builds, installs and
# starts a throwaway cluster (test/bin/lib.sh) and stops it afterwards.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_cluster.sh" "$(dirname "${BASH_SOURCE[0]}")/reconcile_bench.py" "$@"
