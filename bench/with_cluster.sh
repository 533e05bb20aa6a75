#!/usr/bin/env bash
# Runs a Python benchmark program of bench/ against a PostgreSQL cluster with
# billrecon: the test cluster when it is running (BILLRECON_KEEP=1 bash
# test/bin/run-tests, or the demo with --keep), otherwise a throwaway one
# (test/bin/lib.sh: packages, build, install, start) stopped afterwards.
#
#   bash bench/with_cluster.sh bench/<program>.py [options]
#
# BILLRECON_BENCH_PG=env uses the cluster libpq's environment names (PGHOST,
# PGPORT, PGUSER: a superuser on this machine) instead.
set -euo pipefail

# shellcheck source=test/bin/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../test/bin/lib.sh"

[[ $# -ge 1 ]] || br_die "usage: bash bench/with_cluster.sh bench/<program>.py [options]"
program="$1"
shift
if [[ "${BILLRECON_BENCH_PG:-}" == env ]]; then
	exec "$BR_PYTHON" "$program" "$@"
fi
br_prepare_run_dir
started=0
if ! br_postmaster_alive; then
	br_install_packages
	br_build "$BR_RUN_DIR" || exit 1
	br_cluster_start
	started=1
fi
trap '[[ $started -eq 1 ]] && br_cluster_stop' EXIT
"$BR_PYTHON" "$program" "$@"
