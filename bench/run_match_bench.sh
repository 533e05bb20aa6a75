#!/usr/bin/env bash
# Client-matching benchmark (issue 4): precision and recall of
# billrecon::match::SuggestMatches at the recommended threshold on the
# labelled set of test/mock_api/matching_set.py, a table over thresholds, and
# the time of the labelled run and of a 5,000 x 5,000 run (min / median / max
# of 3 runs). Targets: precision 100 %, recall >= 95 %, 5,000 x 5,000 < 2 s.
# Missing a target is reported, never fatal: time depends on the machine.
#
#   bench/run_match_bench.sh [--seed N] [--companies N] [--build-dir DIR] [--runs N] [--verbose]
#
# --seed / --companies shape the labelled set (default 42 / 1000; the large
# set uses seed+1 and 5000). The benchmark is built optimized (Release) in
# --build-dir (default build-bench/, ignored by git). --verbose lists every
# wrong and every missed pair with its evidence.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seed=42
companies=1000
build="$root/build-bench"
runs=3
verbose=()

while [ $# -gt 0 ]; do
	case "$1" in
	--seed) seed=$2; shift 2 ;;
	--companies) companies=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--verbose) verbose=(--verbose); shift ;;
	-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "run_match_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "building billrecon_match_bench (Release) in $build ..."
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" 2>&1 ||
	{ cat "$tmp/cmake.log" >&2; exit 1; }
cmake --build "$build" -j2 --target billrecon_match_bench >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log" >&2; exit 1; }

python3 "$root/test/mock_api/matching_set.py" --seed "$seed" --companies "$companies" --out "$tmp/labelled.json"
python3 "$root/test/mock_api/matching_set.py" --seed "$((seed + 1))" --companies 5000 --out "$tmp/large-5000.json"

cd "$tmp"
"$build/billrecon_match_bench" labelled.json large-5000.json --runs "$runs" "${verbose[@]}"
