# mdsync recipes. Get just with `pip install rust-just` or `cargo install just`.

default:
    @just --list

# Run every test (interop tests need MDSYNC_INTEROP=1 and their tools).
test:
    cargo test --workspace

# The scenarios against both mocks; `just test-scenarios NAME` runs library/NAME.toml alone.
test-scenarios name="":
    INSTA_GLOB_FILTER={{ if name == "" { "" } else { name + ".toml" } }} cargo test -p scenarios {{ if name == "" { "" } else { "library" } }}

# The round trip on embedded mocks, explained.
demo:
    cargo run --release -- demo

# Both mocks on fixed ports with generated data, for trying an integration by hand.
mocks n="1000":
    cargo build --release -p mock-rosetta -p mock-alma
    ./target/release/mock-rosetta --listen 127.0.0.1:8080 --generate {{n}} & ./target/release/mock-alma --listen 127.0.0.1:8081 --generate {{n}}

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Benchmarks: OAI reader, both mocks, the import end to end (MDSYNC_PYTHON for the pyoai parts).
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
