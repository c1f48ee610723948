# JobTactics key service. `./scripts/just <recipe>` installs just when missing.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Serve on the embedded SQLite store (JT_BIND, DATABASE_URL… override).
run *ARGS:
    cargo run --release -p api-actix -- {{ARGS}}

# Everything CI checks: formatting, clippy with warnings denied, then every test against the
# real PostgreSQL, Redis and SMTP server (started or installed first when missing).
test:
    bash scripts/ensure-services.sh
    cargo fmt --all -- --check
    python3 scripts/module-cycles.py
    cargo clippy --workspace --all-targets --all-features -- -D warnings
    cargo test --workspace --all-features --no-fail-fast

# Only the pure domain: no services needed.
test-domain:
    cargo test -p keys-domain --all-features

# Formatting, no module cycle in any crate, clippy with warnings denied.
lint:
    cargo fmt --all -- --check
    python3 scripts/module-cycles.py
    cargo clippy --workspace --all-targets --all-features -- -D warnings

fmt:
    cargo fmt --all

# Micro-benchmarks (criterion) and the HTTP load run; figures go to docs/performance.md.
bench:
    bash scripts/ensure-services.sh
    cargo bench -p keys-domain --bench key_ops
    bash scripts/load-bench.sh

# What the databases alone spend per charge, and the best render/healthz ratio that leaves.
bench-floor:
    bash scripts/ensure-services.sh
    bash scripts/paid-path-floor.sh

# Instructions per request under callgrind: repeatable where req/s on this VM is not.
bench-instr:
    bash scripts/instr-per-request.sh

# The CLI and sqlite3 beside a serving SQLite server, 20 runs: nothing acknowledged is lost.
store-beside RUNS="20":
    bash scripts/store-beside-server.sh {{RUNS}}

# Same-run A/B of the paid path on SQLite between two release binaries.
ab-render A B ROUNDS="5":
    bash scripts/ab-render.sh {{A}} {{B}} {{ROUNDS}}
