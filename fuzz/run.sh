#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and fuzzes
# each one for SECONDS (default 60):
#   bash fuzz/run.sh [SECONDS] [TARGET...]      e.g. bash fuzz/run.sh 600 fuzz_pax8
# Seeds: fuzz/corpus/<target>/ (committed, includes former crashes) and, for
# connector targets, test/fixtures/<kind>/. New interesting inputs go to
# build-fuzz/corpus/<target>/, crashes to build-fuzz/findings/<target>/.
# Prints "fuzz: N passed, M failed" (one per target) and exits non-zero on a
# finding. BILLRECON_FUZZ_BUILD overrides the build directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BUILD="${BILLRECON_FUZZ_BUILD:-$ROOT/build-fuzz}"
SECONDS_EACH="${1:-60}"
[[ $# -gt 0 ]] && shift
ALL=(fuzz_json fuzz_csv_usage fuzz_connectwise fuzz_halopsa fuzz_autotask fuzz_msgraph
	fuzz_partnercenter fuzz_pax8 fuzz_ninjaone fuzz_dattormm)
if [[ $# -gt 0 ]]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || [[ "$SECONDS_EACH" -lt 1 ]]; then
	echo "usage: bash fuzz/run.sh [SECONDS] [TARGET...]   targets: ${ALL[*]}" >&2
	exit 2
fi

# clang with the libFuzzer and sanitizer runtimes (Debian: clang, libclang-rt-14-dev).
CXX="${BILLRECON_FUZZ_CXX:-clang++}"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t *, size_t) { return 0; }\n' >"$probe/p.cpp"
if ! command -v "$CXX" >/dev/null 2>&1; then
	echo "fuzz: $CXX not found: install Debian packages clang libclang-rt-14-dev" >&2
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
if ! "$CXX" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >"$probe/log" 2>&1; then
	cat "$probe/log" >&2
	echo "fuzz: $CXX cannot link -fsanitize=fuzzer,address,undefined (needs clang and Debian package libclang-rt-14-dev)" >&2
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi

mkdir -p "$BUILD"
echo "==> building fuzz targets in $BUILD"
if ! { cmake -S "$ROOT" -B "$BUILD" -DBILLRECON_FUZZ=ON -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE= &&
	cmake --build "$BUILD" -j"$(nproc)" --target fuzz; } >"$BUILD/build.log" 2>&1; then
	tail -n 60 "$BUILD/build.log"
	echo "fuzz: build failed, log: $BUILD.log"
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi

passed=0
failed=0
for t in "${TARGETS[@]}"; do
	exe="$BUILD/$t"
	if [[ ! -x "$exe" ]]; then
		echo "fuzz: no target $t (targets: ${ALL[*]})"
		failed=$((failed + 1))
		continue
	fi
	work="$BUILD/corpus/$t" findings="$BUILD/findings/$t" log="$BUILD/logs/$t.log"
	mkdir -p "$work" "$findings" "$BUILD/logs"
	seeds=("$ROOT/fuzz/corpus/$t")
	kind="${t#fuzz_}"
	[[ -d "$ROOT/test/fixtures/$kind" ]] && seeds+=("$ROOT/test/fixtures/$kind")
	[[ "$t" == fuzz_json ]] && seeds+=("$ROOT/test/fixtures")
	stamp="$BUILD/logs/$t.stamp"
	touch "$stamp"
	rc=0
	# The first directory receives new inputs; the others are only read.
	"$exe" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$findings/" "$work" "${seeds[@]}" >"$log" 2>&1 </dev/null || rc=$?
	runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
	cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || true)"
	if [[ $rc -eq 0 ]]; then
		printf 'fuzz: %-20s ok    %ss, %s runs, %s, corpus %s inputs\n' "$t" "$SECONDS_EACH" "${runs:-?}" \
			"${cov:-cov: ?}" "$(find "$work" -type f | wc -l)"
		passed=$((passed + 1))
	else
		printf 'fuzz: %-20s FINDING (exit %s), log: %s\n' "$t" "$rc" "$log"
		grep -E 'ERROR: |FINDING|runtime error|SUMMARY|Test unit written' "$log" | head -n 12 | sed 's/^/    /'
		find "$findings" -type f -newer "$stamp" | while read -r crash; do
				printf '    reproduce: %s %s\n' "$exe" "$crash"
				printf '    then keep it as a regression input: cp %s %s/fuzz/corpus/%s/\n' "$crash" "$ROOT" "$t"
			done
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
