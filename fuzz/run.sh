#!/usr/bin/env bash
# Runs a fuzz target for a while on stable Rust (cargo-fuzz's coverage
# flags without its nightly-only sanitizer): fuzz/run.sh dhcp|tftp_request [SECONDS]
# With nightly and cargo-fuzz installed, `cargo fuzz run dhcp` works too.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?dhcp or tftp_request}
seconds=${2:-60}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
# --target keeps these flags off build scripts.
cargo build --release --bin "$target" --target x86_64-unknown-linux-gnu
mkdir -p "corpus/$target"
"target/x86_64-unknown-linux-gnu/release/$target" -max_total_time="$seconds" -max_len=1500 "corpus/$target"
