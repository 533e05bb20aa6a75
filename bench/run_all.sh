#!/usr/bin/env bash
# Every benchmark of issue 9, one after the other, each printing its figures
# beside its reference from the same run (min / median / max and the ratio):
#
#   bash bench/run_all.sh            the issue's sizes: about 25 minutes, ~3 GB of RAM (the 1M ingest)
#   bash bench/run_all.sh --small    small sizes, about a minute (what CI's `bench` part runs)
#
# 1. ingest of NinjaOne devices (billrecon vs jsonb_to_recordset, COPY, curl; peak RSS)
# 2. parallel background sync (8 integrations, 50 ms page latency)
# 3. quick sync after 1 % changed (requests vs a full sync)
# 4. reconcile (5,000 clients / 50,000 lines / 1,000,000 records vs the plain join; one client),
#    and its C++ counting core alone (bench/run_counter_bench.sh)
# 5. client matching (5,000 x 5,000)
#
# Uses the test cluster when it is running, else starts a throwaway one
# (test/bin/lib.sh) and stops it at the end; BILLRECON_BENCH_PG=env uses the
# cluster libpq's environment names instead (a superuser on this machine). Never fails on time: the exit
# status is non-zero only when a benchmark could not run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/bin/lib.sh
source "$here/../test/bin/lib.sh"

small=0
case "${1:-}" in
--small) small=1 ;;
"") ;;
-h | --help)
	sed -n '2,16p' "${BASH_SOURCE[0]}"
	exit 0
	;;
*)
	br_die "usage: bash bench/run_all.sh [--small]"
	;;
esac

started=0
if [[ "${BILLRECON_BENCH_PG:-}" != env ]]; then # env: libpq's PGHOST/PGPORT/PGUSER name the cluster
	br_prepare_run_dir
	if ! br_postmaster_alive; then
		br_install_packages
		br_build "$BR_RUN_DIR" || exit 1
		br_cluster_start
		started=1
	fi
fi
trap '[[ $started -eq 1 ]] && br_cluster_stop' EXIT

failed=()
run() {
	local name="$1"
	shift
	printf '\n==> bench %s: %s\n' "$name" "$*"
	if ! "$@"; then
		failed+=("$name")
	fi
}

if [[ $small -eq 1 ]]; then
	run ingest bash "$here/run_ingest_bench.sh" --records 3000 --orgs 30 --page-size 500 --runs 3
	run parallel-sync bash "$here/run_parallel_sync_bench.sh" --integrations 2 --latency-ms 5 --clients 3 --runs 3 --workers 2
	run quick-sync bash "$here/run_quick_sync_bench.sh" --clients 4 --runs 3
	run reconcile bash "$here/run_reconcile_bench.sh" --clients 40 --lines-per-client 3 --devices-per-client 10 --runs 3
	run counter bash "$here/run_counter_bench.sh" --clients 200
	run match bash "$here/run_match_bench.sh" --companies 150 --large 300 --runs 3
else
	run ingest bash "$here/run_ingest_bench.sh"
	run parallel-sync bash "$here/run_parallel_sync_bench.sh"
	run quick-sync bash "$here/run_quick_sync_bench.sh"
	run reconcile bash "$here/run_reconcile_bench.sh"
	run counter bash "$here/run_counter_bench.sh"
	run match bash "$here/run_match_bench.sh"
fi

if [[ ${#failed[@]} -gt 0 ]]; then
	printf '\nbenchmarks that could not run: %s\n' "${failed[*]}"
	exit 1
fi
printf '\nall benchmarks ran; docs/performance.md says where each stands against its target\n'
