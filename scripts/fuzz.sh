#!/usr/bin/env bash
# shellcheck disable=SC2086 # flags and pkg-config output are word-split on purpose
# scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...] - builds the libFuzzer
# harnesses in tests/fuzz/ (clang, ASan + UBSan) and fuzzes each one.
#
#   scripts/fuzz.sh            20 seconds per harness
#   scripts/fuzz.sh 600        ten minutes per harness
#   scripts/fuzz.sh 0          quick mode (make check): build, then run each
#                              harness once over its seed corpus
#   scripts/fuzz.sh 60 fuzz_text   only the named harness(es)
#
# Everything goes to build/fuzz/ (FUZZ_OUT overrides): objects, binaries, a
# fresh copy of each seed corpus (tests/fuzz/corpus/<harness>/, plus seeds
# that wal_seed_gen writes with the real WAL writer), logs, and crash inputs
# under artifacts/<harness>/. Seeds are never modified in tests/.
#
# Exits 0 if every harness ran clean; otherwise prints each crashing input's
# path (and how to reproduce it) and exits 1. Bounded: a harness run is
# killed SECONDS + 120 s after it starts.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

secs="${1:-20}"
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
	echo "usage: scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]" >&2
	exit 2
fi
shift $(($# > 0 ? 1 : 0))

out="${FUZZ_OUT:-build/fuzz}"
cc="${FUZZ_CC:-clang}"
jobs="$(nproc 2>/dev/null || echo 2)"
pkgs="libmicrohttpd libcjson sqlite3 zlib libxxhash libzstd libcrypto libmaxminddb"

if ! command -v "$cc" >/dev/null; then
	echo "fuzz: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi
pkg_cflags="$(pkg-config --cflags $pkgs)" || { echo "fuzz: pkg-config failed for: $pkgs" >&2; exit 1; }
pkg_libs="$(pkg-config --libs $pkgs)" || exit 1

# -fno-sanitize-recover: a UBSan finding must stop the run like an ASan one,
# or libFuzzer would print it and go on.
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
common="-g -O1 -std=c11 -D_GNU_SOURCE -Isrc $pkg_cflags"
lib_cflags="$common -fsanitize=fuzzer-no-link $san"
harness_cflags="$common -fsanitize=fuzzer $san -Wall -Wextra -Werror"
tool_cflags="$common -fsanitize=fuzzer-no-link $san -Wall -Wextra -Werror"
libs="$pkg_libs -lpthread -lm"

if [ $# -gt 0 ]; then
	harnesses=("$@")
else
	harnesses=()
	for f in tests/fuzz/fuzz_*.c; do
		harnesses+=("$(basename "$f" .c)")
	done
fi
for h in "${harnesses[@]}"; do
	[ -f "tests/fuzz/$h.c" ] || { echo "fuzz: no harness tests/fuzz/$h.c" >&2; exit 2; }
done

mkdir -p "$out/obj"

# --- build ------------------------------------------------------------------

# stale TARGET DEPFILE FLAGS: true if TARGET must be rebuilt: it is missing,
# was built with other flags, or one of the files in its make-style depfile
# (written by -MMD) is newer.
stale() {
	local target="$1" dep="$2" flags="$3"
	[ -e "$target" ] && [ -e "$dep" ] && [ -e "$target.flags" ] || return 0
	[ "$(cat "$target.flags")" = "$flags" ] || return 0
	local f
	for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' -e '/^[[:space:]]*$/d' "$dep" | tr -s ' \t' '\n' |
		grep -v ':$'); do
		[ "$f" -nt "$target" ] && return 0
		[ -e "$f" ] || return 0
	done
	return 1
}

build_failed=0
all_objs=()
pids=()
for src in src/*/*.c; do
	[[ "$src" == src/cli/* ]] && continue
	obj="$out/obj/${src%.c}.o"
	all_objs+=("$obj")
	if stale "$obj" "${obj%.o}.d" "$lib_cflags"; then
		mkdir -p "$(dirname "$obj")"
		echo "fuzz: cc $src"
		(
			if $cc $lib_cflags -MMD -MP -MF "${obj%.o}.d" -c "$src" -o "$obj" \
				2>"$obj.log"; then
				echo "$lib_cflags" >"$obj.flags"
			else
				rm -f "$obj"
			fi
		) &
		pids+=($!)
		if [ "${#pids[@]}" -ge "$jobs" ]; then
			wait "${pids[0]}"
			pids=("${pids[@]:1}")
		fi
	fi
done
for p in "${pids[@]}"; do
	wait "$p"
done
# A source that does not compile (someone's work in progress) is left out of
# the library: the harnesses that do not need it still build and run, and one
# that does fails to link, after its errors are shown here.
lib_objs=()
for obj in "${all_objs[@]}"; do
	if [ -e "$obj" ]; then
		lib_objs+=("$obj")
	else
		echo "fuzz: warning: ${obj#"$out/obj/"} did not compile; left out of the fuzz library:"
		sed -e 's/^/    /' "$obj.log" | head -n 10
	fi
done
# An archive, as the Makefile links: a program pulls in only the objects it
# needs, so a module it does not use cannot break its link.
lib="$out/libtandem-fuzz.a"
rebuild_lib=0
[ -e "$lib" ] && [ "$(cat "$lib.list" 2>/dev/null)" = "${lib_objs[*]}" ] || rebuild_lib=1
for o in "${lib_objs[@]}"; do
	[ "$o" -nt "$lib" ] && rebuild_lib=1
done
if [ "$rebuild_lib" -eq 1 ]; then
	rm -f "$lib"
	ar rcs "$lib" "${lib_objs[@]}" || exit 1
	echo "${lib_objs[*]}" >"$lib.list"
fi

# link BINARY SOURCE FLAGS: compiles one program in tests/fuzz/ against the
# library archive, if anything it depends on changed.
link() {
	local bin="$1" src="$2" flags="$3"
	if ! stale "$bin" "$bin.d" "$flags" && ! [ "$lib" -nt "$bin" ]; then
		return 0
	fi
	echo "fuzz: cc $src -> $bin"
	$cc $flags -MMD -MP -MF "$bin.d" "$src" "$lib" $libs -o "$bin" &&
		echo "$flags" >"$bin.flags"
}

for h in "${harnesses[@]}"; do
	link "$out/$h" "tests/fuzz/$h.c" "$harness_cflags" || build_failed=1
done
if [[ " ${harnesses[*]} " == *" fuzz_wal_reader "* ]]; then
	link "$out/wal_seed_gen" tests/fuzz/wal_seed_gen.c "$tool_cflags" || build_failed=1
fi
if [ "$build_failed" -ne 0 ]; then
	echo "fuzz: building the harnesses failed" >&2
	exit 1
fi

# --- run --------------------------------------------------------------------

# Harnesses make their temporary files under TMPDIR; a crash or ^C skips
# their cleanup, so keep them in the build tree and start each run empty.
case "$out" in
/*) export TMPDIR="$out/tmp" ;;
*) export TMPDIR="$PWD/$out/tmp" ;;
esac
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

failed=()
for h in "${harnesses[@]}"; do
	corpus="$out/corpus/$h"
	artifacts="$out/artifacts/$h"
	log="$out/$h.log"
	rm -rf "$corpus" "$artifacts"
	mkdir -p "$corpus" "$artifacts"
	if [ -d "tests/fuzz/corpus/$h" ]; then
		cp -R "tests/fuzz/corpus/$h/." "$corpus/"
	fi
	if [ "$h" = fuzz_wal_reader ] && ! "$out/wal_seed_gen" "$corpus" >"$out/wal_seed_gen.log" 2>&1; then
		cat "$out/wal_seed_gen.log" >&2
		echo "fuzz: wal_seed_gen could not write the WAL seeds" >&2
		failed+=("$h (seed generator)")
		continue
	fi
	dict=()
	[ -f "tests/fuzz/$h.dict" ] && dict=("-dict=tests/fuzz/$h.dict")
	opts=(-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/" "${dict[@]}")

	if [ "$secs" -eq 0 ]; then
		seeds=("$corpus"/*)
		echo "== $h: ${#seeds[@]} seed inputs, once each"
		timeout -k 10 120 "$out/$h" "${opts[@]}" "${seeds[@]}" >"$log" 2>&1
		rc=$?
	else
		echo "== $h: fuzzing for ${secs}s (log: $log)"
		timeout -k 10 $((secs + 120)) "$out/$h" "${opts[@]}" -max_total_time="$secs" \
			-print_final_stats=1 "$corpus" >"$log" 2>&1
		rc=$?
		# "#123456 DONE cov: 812 ft: 3120 corp: 410/52Kb lim: 4096 exec/s: 6172 rss: 98Mb"
		grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb):' \
			"$log" | tr '\n' ' '
		echo
	fi
	if [ "$rc" -ne 0 ]; then
		failed+=("$h")
		echo "fuzz: $h FAILED (exit $rc); from $log:"
		# the report: from the first sanitizer / invariant line on
		first="$(grep -n -m 1 -E '^==[0-9]+==|invariant broken|runtime error|ERROR: libFuzzer' \
			"$log" | cut -d: -f1)"
		if [ -n "$first" ]; then
			tail -n "+$first" "$log" | grep -v -E '^(Running: |Executed )' | head -n 80
		else
			tail -n 40 "$log"
		fi
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			echo "fuzz: $h did not finish in time"
		fi
		found=0
		for a in "$artifacts"/*; do
			[ -e "$a" ] || continue
			found=1
			echo "fuzz: $h crashing input: $a"
			echo "fuzz:   reproduce: $out/$h $a"
		done
		seed="$(grep '^Running: ' "$log" | tail -n 1 | sed 's/^Running: //')"
		if [ "$found" -eq 0 ] && [ -n "$seed" ]; then
			echo "fuzz: $h crashing input: $seed"
			echo "fuzz:   reproduce: $out/$h $seed"
		fi
	fi
done

if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: ${#harnesses[@]} harnesses, ${#failed[@]} failed: ${failed[*]}"
	exit 1
fi
echo "fuzz: ${#harnesses[@]} harnesses, 0 failed"
