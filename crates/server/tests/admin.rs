//! The `skill-pool-server` admin subcommands as an operator runs them, on the database of a
//! running server (SQLite and PostgreSQL): migrate, tenant create/list, token create, user create.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::process::ServerProcess;
use common::server::{TestServer, workspace_bin};
use reqwest::StatusCode;
use skill_pool_store::both_backends;
use skill_pool_store::testing::TestDb;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

both_backends!(admin_subcommands_work_beside_a_running_server, |db: TestDb| async move {
    let s = TestServer::start(db).await;
    let admin = Admin {
        url: s.db.url.clone(),
        data: s.data_dir().to_path_buf(),
    };
    let out = admin.run(&["migrate"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = admin
        .run(&["tenant", "create", "globex", "--display-name", "Globex Corp"], None)
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created tenant globex (Globex Corp)"));
    for (bad, why) in [
        ("Globex", "lowercase"),
        ("claude-plugins-official", "reserves"),
        ("globex", "exists"),
        ("a_b", "characters other than"),
    ] {
        let out = admin.run(&["tenant", "create", bad], None).await;
        assert!(!out.status.success(), "{bad}");
        assert!(text(&out.stderr).contains(why), "{bad}: {}", text(&out.stderr));
    }
    let out = admin.run(&["tenant", "list"], None).await;
    assert!(text(&out.stdout).contains("globex\tGlobex Corp"), "{}", text(&out.stdout));

    // The token is alone on the last line, and the running server accepts it at once.
    let out = admin
        .run(&["token", "create", "--tenant", "globex", "--role", "member", "--name", "ci"], None)
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("sp_") && !token.contains(' '), "{stdout}");
    let (st, me) = s.get_json(&format!("{}/t/globex/v1/whoami", s.url), &token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!((me["tenant"].as_str(), me["role"].as_str()), (Some("globex"), Some("member")));
    let out = admin.run(&["token", "create", "--tenant", "nope", "--role", "admin"], None).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not found"), "{}", text(&out.stderr));

    // Users: the password from standard input, at least 12 characters, names unique.
    let out = admin
        .run(
            &["user", "create", "--tenant", "globex", "--username", "ana", "--role", "admin"],
            Some("correct horse battery\n"),
        )
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = admin
        .run(
            &["user", "create", "--tenant", "globex", "--username", "ana", "--role", "admin"],
            Some("correct horse battery\n"),
        )
        .await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("already exists"), "{}", text(&out.stderr));
    let out = admin
        .run(
            &["user", "create", "--tenant", "globex", "--username", "bob", "--role", "member"],
            Some("short\n"),
        )
        .await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("12 characters"), "{}", text(&out.stderr));
    // The audit log records the operator's writes.
    let out = admin
        .run(
            &["token", "create", "--tenant", "globex", "--role", "admin", "--name", "root"],
            None,
        )
        .await;
    let admin_token = text(&out.stdout).lines().last().unwrap().trim().to_string();
    let (_, audit) = s.get_json(&format!("{}/t/globex/v1/audit", s.url), &admin_token).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.create") && actions.contains(&"token.create"), "{actions:?}");
    s.stop().await;
});

/// The operator's shell: the binary on the same data folder and database as the server.
struct Admin {
    url: String,
    data: std::path::PathBuf,
}

impl Admin {
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let stdin = stdin.map(str::to_string);
        let (url, data) = (self.url.clone(), self.data.clone());
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(workspace_bin("skill-pool-server"))
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap())
                .env("SKILL_POOL_DATA_DIR", &data)
                .env("SKILL_POOL_DATABASE_URL", &url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
            drop(input);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }
}

/// `SIGTERM` stops the server binary cleanly: it stops accepting, drains, closes the database.
#[test]
fn the_server_binary_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(workspace_bin("skill-pool-server"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("SKILL_POOL_DATA_DIR", data.path());
    let mut server = ServerProcess::start(cmd);
    assert!(std::net::TcpStream::connect(server.addr).is_ok(), "the server accepts connections");
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // No deadline of our own: nextest's per-test timeout ends a server that never stops.
    let exit = server.child.wait().unwrap();
    // The log reader thread may still be draining the last lines.
    let mut log = server.log();
    for _ in 0..100 {
        if log.contains("skill-pool stopped") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        log = server.log();
    }
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(log.contains("shutdown requested") && log.contains("skill-pool stopped"), "{log}");
    assert!(!log.contains("sp_"), "the log never carries a token: {log}");
}
