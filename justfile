# mdsync recipes. Get just with `pip install rust-just` or `cargo install just`.

default:
    @just --list

# Run every test (interop tests need MDSYNC_INTEROP=1 and their tools).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks: the streaming OAI-PMH reader against a plain quick-xml event loop; mock-rosetta's
# harvest throughput against pyoai (set MDSYNC_PYTHON for the Python parts).
bench:
    cargo bench -p formats
    cargo bench -p mock-rosetta
    cargo bench -p mock-alma
    cargo bench -p mdsync

# Review snapshot changes (needs `cargo install cargo-insta`).
review:
    cargo insta review

# What CI runs.
ci:
    bash .ci/run
