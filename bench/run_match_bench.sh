#!/usr/bin/env bash
# Client-matching benchmark (issue 4): precision and recall of
# billrecon::match::SuggestMatches at the recommended threshold on the
# labelled set of test/mock_api/matching_set.py, a table over thresholds, and
# the time of the labelled run and of a 5,000 x 5,000 run (min / median / max
# of 3 runs). Targets: precision 100 %, recall >= 95 %, 5,000 x 5,000 < 2 s.
# Missing a target is reported, never fatal: time depends on the machine.
#
#   bench/run_match_bench.sh [--seed N] [--companies N] [--large N] [--build-dir DIR] [--build-type T]
#                            [--runs N] [--verbose]
#
# --seed / --companies shape the labelled set (default 42 / 1000; the large
# set uses seed+1 and --large companies, default 5000). The benchmark is built
# optimized (--build-type, default Release) in --build-dir (default
# build-bench/, ignored by git); the CI smoke (test/bin/run-tests bench) builds
# it in the unit tests' build/ with their build type instead, untimed.
# --verbose lists every wrong and every missed pair with its evidence.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seed=42
companies=1000
build="$root/build-bench"
runs=3
large=5000
build_type=Release
verbose=()

while [ $# -gt 0 ]; do
	case "$1" in
	--seed) seed=$2; shift 2 ;;
	--companies) companies=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	--build-type) build_type=$2; shift 2 ;;
	--large) large=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--verbose) verbose=(--verbose); shift ;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "run_match_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "building billrecon_match_bench (${build_type:-default build type}) in $build ..."
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="$build_type" >"$tmp/cmake.log" 2>&1 ||
	{ cat "$tmp/cmake.log" >&2; exit 1; }
cmake --build "$build" -j2 --target billrecon_match_bench >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log" >&2; exit 1; }

python3 "$root/test/mock_api/matching_set.py" --seed "$seed" --companies "$companies" --out "$tmp/labelled.json"
python3 "$root/test/mock_api/matching_set.py" --seed "$((seed + 1))" --companies "$large" --out "$tmp/large-$large.json"

cd "$tmp"
"$build/billrecon_match_bench" labelled.json "large-$large.json" --runs "$runs" "${verbose[@]}"
