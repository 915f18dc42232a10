//! The `skill-pool-server` binary as a child process on an ephemeral port: it binds
//! `127.0.0.1:0` itself and says where it listens, so no port is picked and released first
//! (another process could take it in between). Its log is drained all along, so a chatty
//! server never blocks on a full pipe.

#![allow(clippy::disallowed_methods)] // drives real programs (git, the binaries, Claude Code) as a user would
#![allow(dead_code)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `cmd` (the server binary, environment set by the caller) with
    /// `SKILL_POOL_BIND=127.0.0.1:0` and waits, at most 30 s, for its "listening on" line.
    pub fn start(mut cmd: Command) -> ServerProcess {
        let mut child = cmd
            .env("SKILL_POOL_BIND", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start skill-pool-server");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!("the server never said where it listens ({status:?}):\n{}", log.lock().unwrap());
            }
        };
        ServerProcess { child, addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `… listening on http://127.0.0.1:43123 …` (or `https://`) → the address.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line
        .split_once("listening on http://")
        .or_else(|| line.split_once("listening on https://"))?
        .1;
    rest.split(|c: char| c.is_whitespace() || c == '"' || c == ',').next()?.parse().ok()
}
