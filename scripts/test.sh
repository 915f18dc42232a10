#!/usr/bin/env bash
# The whole test suite: unit, storage (SQLite and, with SKILL_POOL_TEST_POSTGRES_URL, PostgreSQL),
# API over real HTTP, git with the real git client, and end to end with the real Claude Code client.
#
#   scripts/test.sh                         everything
#   scripts/test.sh -E 'test(claude)'       extra arguments go to the test runner (nextest here;
#                                           `cargo test` when cargo-nextest is not installed)
#
# Environment:
#   SKILL_POOL_TEST_CLAUDE_BIN    a `claude` binary to use instead of installing the pinned one
#   SKILL_POOL_TEST_POSTGRES_URL  PostgreSQL for the storage and end-to-end tests (skipped without)
#   SKILL_POOL_TEST_REDIS_URL     Redis for the job-queue tests (skipped without)
#   SKILL_POOL_TEST_TLS_DIR       the test CA and certificate of scripts/test-ca.sh, trusted by
#                                 the machine (`scripts/test-ca.sh --install`): the https tests
#                                 with the real client (skipped without)
#   CI=true                       nothing may be skipped: a missing client or service fails the run
#   CARGO_TARGET_DIR              default $HOME/.cache/skill-pool/target
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=2.1.328
CACHE="${SKILL_POOL_CACHE:-$HOME/.cache/skill-pool}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
ci=false
[[ "${CI:-}" == "true" || "${CI:-}" == "1" ]] && ci=true

run_started=$SECONDS
phase_name=""
phase_started=$SECONDS
# Ends the running phase (printing how long it took) and starts the next one.
phase() {
    if [[ -n "$phase_name" ]]; then
        echo "==> $phase_name: $((SECONDS - phase_started))s" >&2
    fi
    phase_name="$*"
    phase_started=$SECONDS
    [[ -n "$phase_name" ]] && echo "==> $phase_name" >&2
    return 0
}

# ---------------------------------------------------------------- the real client
# Pinned, installed once into the cache; reinstalled when the cached copy does not run.
if [[ -z "${SKILL_POOL_TEST_CLAUDE_BIN:-}" ]]; then
    claude_dir="$CACHE/claude-code-$CLAUDE_CODE_VERSION"
    claude_bin="$claude_dir/node_modules/.bin/claude"
    if [[ -x "$claude_bin" ]] && "$claude_bin" --version >/dev/null 2>&1; then
        :
    elif command -v npm >/dev/null 2>&1; then
        phase "installing Claude Code $CLAUDE_CODE_VERSION from npm into $claude_dir"
        mkdir -p "$claude_dir"
        npm install --prefix "$claude_dir" --no-audit --no-fund --loglevel=error \
            "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2
        if ! "$claude_bin" --version >/dev/null 2>&1; then
            echo "error: Claude Code was installed into $claude_dir but \`claude --version\` fails" >&2
            exit 1
        fi
    elif $ci; then
        echo "error: npm is needed (CI=true) to install Claude Code $CLAUDE_CODE_VERSION for the end-to-end tests" >&2
        exit 1
    else
        echo "note: npm not found: the real-client (Claude Code) tests will skip" >&2
    fi
    if [[ -x "$claude_bin" ]]; then
        export SKILL_POOL_TEST_CLAUDE_BIN="$claude_bin"
    fi
fi
if [[ -n "${SKILL_POOL_TEST_CLAUDE_BIN:-}" ]]; then
    echo "Claude Code: $("$SKILL_POOL_TEST_CLAUDE_BIN" --version 2>/dev/null) ($SKILL_POOL_TEST_CLAUDE_BIN)" >&2
fi
[[ -n "${SKILL_POOL_TEST_POSTGRES_URL:-}" ]] || echo "note: SKILL_POOL_TEST_POSTGRES_URL not set: PostgreSQL tests will skip" >&2
[[ -n "${SKILL_POOL_TEST_REDIS_URL:-}" ]] || echo "note: SKILL_POOL_TEST_REDIS_URL not set: Redis tests will skip" >&2

# ---------------------------------------------------------------- build
# The binaries first: the tests run them (the server, the CLI) as a user would.
phase "building the workspace (cargo build --workspace --bins)"
cargo build --workspace --bins

# ---------------------------------------------------------------- test
# The test runner goes last, so that the last line this script prints is its summary
# (`N tests run: N passed, …`): a reader of the log sees at once what ran.
if cargo nextest --version >/dev/null 2>&1; then
    if [[ $# -eq 0 ]]; then
        # nextest does not run doctests; they run first.
        phase "running the doctests (cargo test --doc)"
        cargo test --workspace --doc --quiet
    fi
    # .config/nextest.toml runs the real-client tests one at a time, with a longer timeout.
    phase "running the tests (cargo nextest run --workspace)"
    phase_name=""
    echo "==> setup took $((SECONDS - run_started))s" >&2
    exec cargo nextest run --workspace --no-fail-fast "$@"
else
    phase "running the tests (cargo test --workspace; install cargo-nextest for a faster run)"
    phase_name=""
    exec cargo test --workspace --no-fail-fast "$@"
fi
