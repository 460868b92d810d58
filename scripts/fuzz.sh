#!/usr/bin/env bash
# Builds every fuzz target and runs each for FUZZ_SECONDS (default 30) seconds,
# starting from the seeds committed under fuzz/seeds/<target>/.
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECONDS:-30}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
[ -n "$targets" ] || { echo "no fuzz targets found" >&2; exit 1; }
cargo fuzz build -O
failed=0
for t in $targets; do
    mkdir -p "corpus/$t"
    if [ -d "seeds/$t" ]; then cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true; fi
    echo "--- fuzz $t for ${secs}s"
    if ! cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>"/tmp/fuzz-$t.log"; then
        echo "FUZZ FAILURE in $t:" >&2
        tail -n 60 "/tmp/fuzz-$t.log" >&2
        failed=1
    else
        grep -E "stat::number_of_executed_units|Done" "/tmp/fuzz-$t.log" | tail -n 2
    fi
done
exit $failed
