#!/usr/bin/env bash
# No injection, by fuzzing: feeds libFuzzer's inputs to every name check and every HAProxy
# Runtime API command builder (fuzz/fuzz_targets/names.rs), and fails on a panic, on an
# accepted input that would start a second command (';', a line break, anything outside
# printable ASCII), or on an unbounded refusal. Bounded in time, for CI: FUZZ_SECONDS
# (default 60) of fuzzing after the build.
#
# Needs the nightly toolchain (libFuzzer's instrumentation); installs cargo-fuzz if absent.
# The seed corpus (fuzz/corpus/names) is only read; what libFuzzer adds goes to
# fuzz/target/corpus/names, and a failing input to fuzz/artifacts/names.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cd fuzz
mkdir -p target/corpus/names
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# No AddressSanitizer: the code under test is safe Rust, where ASan finds nothing a panic
# does not, and it costs about two thirds of the executions. Debug assertions stay on, so an
# overflow panics. libFuzzer reports on stderr; keep it on screen and in the log.
cargo +nightly fuzz run --sanitizer none names target/corpus/names corpus/names -- \
    -max_total_time="${FUZZ_SECONDS:-60}" -max_len=12000 2>&1 | tee "$log"
# The executions count, and their rate.
grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$log"
