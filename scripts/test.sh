#!/usr/bin/env bash
# The whole test suite: unit, storage (SQLite and, with SKILL_POOL_TEST_POSTGRES_URL, PostgreSQL),
# API over real HTTP, git with the real git client, and end to end with the real Claude Code client.
# Extra arguments go to the test runner (e.g. `scripts/test.sh -E 'test(claude)'` with nextest).
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=2.1.328
CACHE="${SKILL_POOL_CACHE:-$HOME/.cache/skill-pool}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"

phase_start=$SECONDS
phase() {
    echo "==> $* (+$((SECONDS - phase_start))s)" >&2
}

# The real client, pinned, installed once into the cache.
if [[ -z "${SKILL_POOL_TEST_CLAUDE_BIN:-}" ]]; then
    claude_dir="$CACHE/claude-code-$CLAUDE_CODE_VERSION"
    claude_bin="$claude_dir/node_modules/.bin/claude"
    if [[ ! -x "$claude_bin" ]] || ! "$claude_bin" --version >/dev/null 2>&1; then
        if command -v npm >/dev/null 2>&1; then
            phase "installing Claude Code $CLAUDE_CODE_VERSION from npm into $claude_dir"
            mkdir -p "$claude_dir"
            npm install --prefix "$claude_dir" --no-audit --no-fund --loglevel=error \
                "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2
        elif [[ "${CI:-}" == "true" ]]; then
            echo "error: npm is needed to install Claude Code for the end-to-end tests" >&2
            exit 1
        else
            echo "note: npm not found: the real-client tests will skip" >&2
        fi
    fi
    if [[ -x "$claude_bin" ]]; then
        export SKILL_POOL_TEST_CLAUDE_BIN="$claude_bin"
    fi
fi
[[ -n "${SKILL_POOL_TEST_CLAUDE_BIN:-}" ]] && echo "Claude Code: $("$SKILL_POOL_TEST_CLAUDE_BIN" --version 2>/dev/null)" >&2

# The binaries first: the tests run them (the server, the CLI) as a user would.
phase "building the workspace"
cargo build --workspace --bins --locked

phase "running the tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast "$@"
    # nextest does not run doctests.
    cargo test --workspace --locked --doc --quiet
else
    cargo test --workspace --locked --no-fail-fast "$@"
fi
phase "done"
