#!/usr/bin/env bash
# The one benchmark command: builds the release zapgate and the bench, makes
# sure PostgreSQL answers (as .ci/run does), runs every benchmark, prints the
# table and writes bench/RESULTS.md.
#
#   bench/run.sh            # full run (~15 min on 2 cores)
#   bench/run.sh --quick    # smaller N and shorter steps (~2-3 min)
#
# PostgreSQL: ZAPGATE_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres);
# the bench creates and drops its own databases. Without PostgreSQL the
# SQLite figures are still produced and the table says PostgreSQL was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

export ZAPGATE_BENCH_POSTGRES_URL="${ZAPGATE_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do
      pg_isready -h 127.0.0.1 -p 5432 -q && break
      sleep 1
    done
  fi
fi

cargo build --release -p zapgate -p zapgate-bench
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
exec "${target_dir:-target}/release/zapgate-bench" --out bench/RESULTS.md "$@"
