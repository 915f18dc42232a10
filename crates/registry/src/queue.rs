//! The job queue: one interface, two queues. In-process (the default) runs a job on a tokio
//! task of this server. Redis (when `SKILL_POOL_REDIS_URL` is set) lets several servers share
//! the work and survives a crash: a job id goes on a list; a consumer moves it atomically to
//! its own processing list (`BLMOVE`) and removes it when the job has ended; a consumer that
//! died (its heartbeat key expired) has its processing list moved back to the queue by the
//! next consumer that looks, so a server killed mid-pull has its job finished by another (or
//! by itself after a restart). A per-mirror lock in Redis keeps two servers from pulling the
//! same mirror at once.

use std::time::Duration;

use redis::AsyncCommands;

use crate::{Registry, RegistryError, Result};

/// How long a consumer's heartbeat lives without renewal.
const HEARTBEAT: Duration = Duration::from_secs(10);

/// A Redis queue shared by the servers of one deployment.
#[derive(Clone)]
pub struct RedisQueue {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    /// This consumer (one per server process).
    consumer: String,
}

fn redis_error(e: redis::RedisError) -> RegistryError {
    RegistryError::Internal(format!("redis: {e}"))
}

impl RedisQueue {
    /// Connects; `prefix` namespaces every key (several deployments can share one Redis).
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisQueue> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        let conn = redis::aio::ConnectionManager::new(client).await.map_err(redis_error)?;
        Ok(RedisQueue {
            conn,
            prefix: prefix.to_string(),
            consumer: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
        })
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    pub async fn enqueue(&self, job_id: i64) -> Result<()> {
        let mut c = self.conn.clone();
        let _: () = c.lpush(self.key("queue"), job_id).await.map_err(redis_error)?;
        Ok(())
    }

    /// Renews this consumer's heartbeat.
    async fn beat(&self) -> Result<()> {
        let mut c = self.conn.clone();
        let _: () = c
            .set_ex(self.key(&format!("alive:{}", self.consumer)), 1, HEARTBEAT.as_secs())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    /// Moves the processing lists of consumers whose heartbeat expired back to the queue.
    async fn recover(&self) -> Result<usize> {
        let mut c = self.conn.clone();
        let lists: Vec<String> = c.keys(self.key("processing:*")).await.map_err(redis_error)?;
        let mut moved = 0;
        for list in lists {
            let consumer = list.rsplit(':').next().unwrap_or_default().to_string();
            if consumer == self.consumer {
                continue;
            }
            let alive: bool = c.exists(self.key(&format!("alive:{consumer}"))).await.map_err(redis_error)?;
            if alive {
                continue;
            }
            loop {
                let id: Option<i64> = c.rpoplpush(&list, self.key("queue")).await.map_err(redis_error)?;
                match id {
                    Some(_) => moved += 1,
                    None => break,
                }
            }
        }
        Ok(moved)
    }

    /// The next job id, waiting at most `wait`; it stays on this consumer's processing list
    /// until [`RedisQueue::done`].
    async fn next(&self, wait: Duration) -> Result<Option<i64>> {
        let mut c = self.conn.clone();
        let id: Option<i64> = redis::cmd("BLMOVE")
            .arg(self.key("queue"))
            .arg(self.key(&format!("processing:{}", self.consumer)))
            .arg("RIGHT")
            .arg("LEFT")
            .arg(wait.as_secs_f64())
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(id)
    }

    async fn done(&self, job_id: i64) -> Result<()> {
        let mut c = self.conn.clone();
        let _: () = c
            .lrem(self.key(&format!("processing:{}", self.consumer)), 1, job_id)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    /// Takes the lock of one mirror for `ttl`; false when another consumer holds it.
    pub(crate) async fn lock(&self, name: &str, ttl: Duration) -> Result<bool> {
        let mut c = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(&format!("lock:{name}")))
            .arg(&self.consumer)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(set.is_some())
    }

    /// Extends a lock this consumer holds by `ttl`; false when it is no longer ours.
    pub(crate) async fn renew(&self, name: &str, ttl: Duration) -> Result<bool> {
        let mut c = self.conn.clone();
        let script = redis::Script::new(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end",
        );
        let renewed: i64 = script
            .key(self.key(&format!("lock:{name}")))
            .arg(&self.consumer)
            .arg(ttl.as_millis() as u64)
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(renewed == 1)
    }

    /// Releases a lock this consumer holds (another's is left alone).
    pub(crate) async fn unlock(&self, name: &str) -> Result<()> {
        let mut c = self.conn.clone();
        let script =
            redis::Script::new("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end");
        let _: i64 = script
            .key(self.key(&format!("lock:{name}")))
            .arg(&self.consumer)
            .invoke_async(&mut c)
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}

impl Registry {
    /// The Redis consumer of this server: runs queued jobs until `stop` turns true.
    pub async fn consume_jobs(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(queue) = self.inner.queue.clone() else { return };
        let mut last_recover = std::time::Instant::now() - Duration::from_secs(60);
        loop {
            if *stop.borrow() {
                break;
            }
            if let Err(e) = queue.beat().await {
                tracing::warn!(error = %e, "redis heartbeat failed");
            }
            if last_recover.elapsed() > Duration::from_secs(3) {
                last_recover = std::time::Instant::now();
                match queue.recover().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "requeued the jobs of a stopped server"),
                    Err(e) => tracing::warn!(error = %e, "could not look for the jobs of stopped servers"),
                }
            }
            let next = tokio::select! {
                n = queue.next(Duration::from_secs(1)) => n,
                _ = stop.changed() => break,
            };
            match next {
                Ok(Some(job_id)) => {
                    // Runs to its end (a stop waits for it), then leaves the processing list.
                    self.run_queued_job(job_id).await;
                    if let Err(e) = queue.done(job_id).await {
                        tracing::warn!(error = %e, job = job_id, "could not remove a finished job from the queue");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the redis queue is unreachable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
