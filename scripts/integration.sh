#!/usr/bin/env bash
# Runs the integration suite (tests/integration/*.test.mjs) with node's built-in
# test runner against the real binary: TANDEM_BIN (set by `make integration`
# and scripts/check.sh), else build/tandem. Exits with the runner's status.
# Works with node 18 and 20+ (--test-concurrency only where node has it).
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
	echo "integration: node is not installed (make deps installs it)" >&2
	exit 1
fi

export TANDEM_BIN="${TANDEM_BIN:-$PWD/build/tandem}"
if [ ! -x "$TANDEM_BIN" ]; then
	echo "integration: $TANDEM_BIN is not an executable; build it with 'make' first" >&2
	exit 1
fi

# The official Segment SDK the client-compatibility tests use (scripts/deps.sh
# normally installs it; this covers a direct run on a fresh clone).
if [ ! -d tests/integration/node_modules/@segment/analytics-node ]; then
	echo "integration: npm ci (tests/integration)" >&2
	(cd tests/integration && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || exit 1
fi

args=(--test)
if node --help 2>/dev/null | grep -q -- '--test-concurrency'; then
	args+=(--test-concurrency=2)
fi
# Explicit file names: node 18/20 take paths, node 21+ takes globs; a plain
# path works for both.
shopt -s nullglob
files=(tests/integration/*.test.mjs)
if [ ${#files[@]} -eq 0 ]; then
	echo "integration: no tests/integration/*.test.mjs" >&2
	exit 1
fi
exec node "${args[@]}" "${files[@]}"
