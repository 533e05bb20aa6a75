#!/usr/bin/env bash
# Parallel background sync benchmark (issue 7): eight NinjaOne integrations
# whose mock answers every request after 50 ms, synced one at a time in the
# foreground and all at once by the background workers; prints min / median /
# max of 3 runs and the ratio to the slowest single integration (target
# <= 1.2). Never fails on time.
#
#   bash bench/run_parallel_sync_bench.sh [bench/parallel_sync.py options]
#
# Uses the test cluster when it is running (bash test/bin/run-tests with
# BILLRECON_KEEP=1, or the demo with --keep); otherwise builds, installs and
# starts a throwaway cluster (test/bin/lib.sh) and stops it afterwards.
set -euo pipefail

exec bash "$(dirname "${BASH_SOURCE[0]}")/with_cluster.sh" "$(dirname "${BASH_SOURCE[0]}")/parallel_sync.py" "$@"
