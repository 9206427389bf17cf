#!/usr/bin/env bash
# Installs the Debian packages tandem's build and tests need. Idempotent: does
# nothing when everything is there. As root it runs apt-get; otherwise it prints
# the exact command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential pkg-config libmicrohttpd-dev libcjson-dev libsqlite3-dev zlib1g-dev
      libxxhash-dev libzstd-dev libssl-dev libmaxminddb-dev libcriterion-dev curl sqlite3 wrk tzdata chromium
      clang libclang-rt-14-dev)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "deps: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq || true
		apt-get install -y -qq "${missing[@]}" >/dev/null
	else
		echo "deps: missing packages; run:" >&2
		echo "  sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
fi

# Client libraries for the integration tests (the official Segment SDK), from npm.
if [ -f tests/integration/package.json ]; then
	if [ ! -d tests/integration/node_modules ] ||
	   [ tests/integration/package.json -nt tests/integration/node_modules ]; then
		echo "deps: npm install (tests/integration)"
		(cd tests/integration && npm install --no-audit --no-fund --loglevel=error >/dev/null)
		touch tests/integration/node_modules
	fi
fi

# analytics.js (Segment's browser SDK) and playwright-core for the browser tests
# (tests/browser; they drive the chromium package above), from npm.
if [ -f tests/browser/package.json ]; then
	if [ ! -d tests/browser/node_modules ] ||
	   [ tests/browser/package.json -nt tests/browser/node_modules ]; then
		echo "deps: npm install (tests/browser)"
		(cd tests/browser && npm install --no-audit --no-fund --loglevel=error >/dev/null)
		touch tests/browser/node_modules
	fi
fi

# The dashboard's charting library (uPlot, web/package.json) from npm; the
# build embeds its browser files as /assets/vendor/ (web/README.md).
if [ -f web/package.json ]; then
	if [ ! -d web/node_modules ] || [ web/package.json -nt web/node_modules ]; then
		echo "deps: npm install (web)"
		(cd web && npm install --no-audit --no-fund --loglevel=error >/dev/null)
		touch web/node_modules
	fi
fi
