#!/usr/bin/env bash
# Counting-pass benchmark (issue 5): reconcile's C++ counting core
# (src/reconcile/usage_counter.cpp) on the book of bench/reconcile_bench.py —
# 5,000 clients, ten asset rules, 1,000,000 device records in the vendor's
# order (every client's records interleaved) — beside a plain loop that
# tests every rule of the record's client, in the same run. No PostgreSQL
# needed. Exits non-zero only when the counts of the two differ.
#
#   bash bench/run_counter_bench.sh [--build-dir DIR] [--build-type T] [--clients N] [--devices N] [--by-account]
#
# Built optimized (--build-type, default Release) in --build-dir (default
# build-bench/, ignored by git).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
build_type=Release
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build-dir) build=$2; shift 2 ;;
	--build-type) build_type=$2; shift 2 ;;
	-h | --help) sed -n '2,13p' "$0"; exit 0 ;;
	*) args+=("$1"); shift ;;
	esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "building billrecon_counter_bench (${build_type:-default build type}) in $build ..."
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="$build_type" >"$tmp/cmake.log" 2>&1 ||
	{ cat "$tmp/cmake.log" >&2; exit 1; }
cmake --build "$build" -j2 --target billrecon_counter_bench >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log" >&2; exit 1; }
"$build/billrecon_counter_bench" "${args[@]}"
