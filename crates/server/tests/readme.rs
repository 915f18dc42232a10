//! The README's walkthrough, run as written (with the debug binaries in place of `cargo run
//! --release` and a free port in place of 8080), then the two Claude Code commands that
//! `skill-pool plugin marketplace-url` prints, run with the real client, and an update.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use std::path::Path;
use std::process::Command;

use common::claude::Claude;
use common::process::ServerProcess;
use common::server::workspace_bin;

fn walkthrough_blocks(readme: &str) -> Vec<String> {
    let start = readme.find("## Walkthrough").expect("README has a Walkthrough section");
    let rest = &readme[start + 3..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(block.join("\n"));
        }
    }
    blocks
}

fn bash(dir: &Path, home: &Path, script: &str) -> (String, String) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(
        out.status.success(),
        "the README walkthrough failed:\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn readme_walkthrough_works_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let top: Vec<&str> = readme
        .lines()
        .skip_while(|l| l.trim() != "```sh")
        .skip(1)
        .take_while(|l| l.trim() != "```")
        .collect();
    assert!(
        top[0].starts_with("cargo run --release --bin skill-pool-server"),
        "the README's first command starts the server: {top:?}"
    );
    assert!(
        top[1].starts_with("scripts/test.sh"),
        "the README's second command runs the tests: {top:?}"
    );

    let server_bin = workspace_bin("skill-pool-server");
    let cli_bin = workspace_bin("skill-pool");
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    // The first README command: the server with its embedded default, in the current folder
    // (on a port the system picks instead of 8080).
    let mut cmd = Command::new(&server_bin);
    cmd.current_dir(work.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap());
    let server = ServerProcess::start(cmd);
    let port = server.addr.port();
    let adapt = |s: &str| {
        s.replace("cargo run -q --release --bin skill-pool-server --", server_bin.to_str().unwrap())
            .replace("cargo run --release --bin skill-pool-server --", server_bin.to_str().unwrap())
            .replace("cargo run -q --release --bin skill-pool --", cli_bin.to_str().unwrap())
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
    };
    assert!(
        work.path().join("skill-pool-data/skill-pool.db").exists(),
        "SQLite under ./skill-pool-data"
    );
    assert!(
        work.path().join("skill-pool-data/admin-token").exists(),
        "the first start wrote the admin token"
    );

    let blocks = walkthrough_blocks(&readme);
    assert!(blocks.len() >= 3, "{blocks:?}");
    let mut stderr_all = String::new();
    let mut stdout_all = String::new();
    for block in &blocks {
        let (out, err) = bash(work.path(), &home, &adapt(block));
        stdout_all.push_str(&out);
        stderr_all.push_str(&err);
    }
    assert!(stdout_all.contains("greet"), "the skill is listed: {stdout_all}");
    assert!(stdout_all.contains("published plugin hello 1.0.0"), "{stdout_all}");

    // The two commands marketplace-url prints, run in the real client.
    let Some(claude) = Claude::new() else { return };
    let commands: Vec<&str> = stderr_all.lines().filter_map(|l| l.trim().strip_prefix("claude ")).collect();
    assert_eq!(commands.len(), 2, "marketplace-url prints two shell commands: {stderr_all}");
    for c in &commands {
        let args: Vec<&str> = c.split_whitespace().collect();
        claude.ok(&args);
    }
    let (installed, version) = claude.installed("hello@acme");
    assert_eq!(version, "1.0.0");
    assert!(installed.join("skills/greet/SKILL.md").is_file());

    // A bumped version, republished as the README says, reaches the client through `plugin update`.
    bash(
        work.path(),
        &home,
        &adapt(
            "sed -i 's/\"1.0.0\"/\"1.1.0\"/' hello/.claude-plugin/plugin.json && echo 'More words.' >> hello/skills/greet/SKILL.md\n\
             cargo run -q --release --bin skill-pool -- plugin publish hello",
        ),
    );
    claude.marketplace_update("acme");
    claude.update("hello@acme");
    let (installed, version) = claude.installed("hello@acme");
    assert_eq!(version, "1.1.0");
    assert!(
        std::fs::read_to_string(installed.join("skills/greet/SKILL.md"))
            .unwrap()
            .contains("More words.")
    );
    drop(server);
}
