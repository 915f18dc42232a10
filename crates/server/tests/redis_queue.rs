//! The Redis job queue with real server processes on one PostgreSQL database, one data folder
//! and one Redis: a server killed with SIGKILL mid-pull has its job finished by the next
//! server, and two servers never pull the same mirror twice for one refresh.

#![allow(clippy::disallowed_methods)] // drives real programs (the server binary, git) as an operator would

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::ServerProcess;
use common::server::workspace_bin;
use common::upstream::{Fault, Upstream};
use serde_json::{Value, json};
use skill_pool_core::Role;
use skill_pool_registry::{Actor, Principal};
use skill_pool_server::{ServerConfig, open_store, registry_for};
use skill_pool_store::testing::{TestDb, ci};

fn redis_url() -> Option<String> {
    match std::env::var("SKILL_POOL_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if ci() => panic!("CI=true requires SKILL_POOL_TEST_REDIS_URL (Redis) for the job-queue tests"),
        _ => {
            eprintln!("skipping: SKILL_POOL_TEST_REDIS_URL is not set, the Redis queue tests do not run");
            None
        }
    }
}

fn plugin(work: &std::path::Path) {
    std::fs::create_dir_all(work.join(".claude-plugin")).unwrap();
    std::fs::write(
        work.join(".claude-plugin/plugin.json"),
        b"{\"name\": \"tool\", \"version\": \"1.0.0\"}\n",
    )
    .unwrap();
    std::fs::create_dir_all(work.join("skills/hello")).unwrap();
    std::fs::write(
        work.join("skills/hello/SKILL.md"),
        b"---\nname: hello\ndescription: Hi\n---\nSay hi.\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_killed_server_and_servers_share_the_work() {
    let Some(redis) = redis_url() else { return };
    let Some(db) = TestDb::postgres().await else { return };
    // Keys of their own, so runs never see each other's queue.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("sp-test-{}-{nanos}", std::process::id());
    let up = Upstream::start().await;
    let work = up.create("tool");
    plugin(&work);
    up.commit_and_push(&work, "1.0.0", false);

    // A tenant and an admin token, as the operator would make them.
    let store = open_store(db.data_path(), &db.url).await.unwrap();
    let registry = registry_for(
        store,
        &ServerConfig::for_data_dir(db.data_path().to_path_buf(), "127.0.0.1:1".parse().unwrap()),
    );
    let tenant = registry.create_tenant(&Principal::Operator, "acme", None).await.unwrap();
    let token = registry
        .create_token(&Actor::operator(tenant.id), "ops", Role::Admin)
        .await
        .unwrap()
        .secret;

    let start = || {
        let mut cmd = Command::new(workspace_bin("skill-pool-server"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("SKILL_POOL_DATA_DIR", db.data_path())
            .env("SKILL_POOL_DATABASE_URL", &db.url)
            .env("SKILL_POOL_REDIS_URL", &redis)
            .env("SKILL_POOL_REDIS_PREFIX", &prefix)
            .env("SKILL_POOL_MIRROR_ALLOWED_HOSTS", "127.0.0.1")
            .env("SKILL_POOL_MIRROR_TIMEOUT_SECS", "60")
            .env("SKILL_POOL_MIRROR_TICK_SECS", "1");
        ServerProcess::start(cmd)
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let job_state = |url: String| {
        let http = http.clone();
        let token = token.clone();
        async move {
            let v: Value = http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            v
        }
    };

    // Server A takes the import's first pull, hangs on the upstream, and is killed.
    let mut a = start();
    up.set_fault(Fault::Hang);
    let res: Value = http
        .post(format!("{}/t/acme/v1/plugins/import", a.url()))
        .bearer_auth(&token)
        .json(&json!({"url": up.url("tool"), "refresh_interval": "1h"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = res["job"]["id"].as_i64().unwrap_or_else(|| panic!("{res}"));
    for _ in 0..120 {
        if up.fetches() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(up.fetches() > 0, "server A never started the pull:\n{}", a.log());
    a.child.kill().unwrap(); // SIGKILL
    let _ = a.child.wait();
    up.set_fault(Fault::None);

    // Server B finds A's job on the queue and finishes it.
    let b = start();
    let mut last = Value::Null;
    for _ in 0..240 {
        last = job_state(format!("{}/t/acme/v1/jobs/{job}", b.url())).await;
        if last["state"] == "done" || last["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last["state"], "done", "{last}\n{}", b.log());

    // With B and C on the same queue, one refresh makes one download at the upstream.
    let c = start();
    let before = up.fetches();
    let res: Value = http
        .post(format!("{}/t/acme/v1/plugins/tool/refresh", c.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job = res["job"]["id"].as_i64().unwrap_or_else(|| panic!("{res}"));
    for _ in 0..240 {
        last = job_state(format!("{}/t/acme/v1/jobs/{job}", b.url())).await;
        if last["state"] == "done" || last["state"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last["state"], "done", "{last}");
    // The worker of either server may not pull again within the hour-long interval.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(up.fetches() - before, 1, "one refresh, one download");
    let p: Value = http
        .get(format!("{}/t/acme/v1/plugins/tool", c.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["current"]["version"], "1.0.0", "{p}");
    drop((b, c));
}
