//! Install counts. The git endpoint reports each fetch that downloaded a pack (with the
//! commits it wanted), the catalogue each fetch (with the client's address and user agent);
//! both only add to a bounded buffer in memory, so counting never slows or fails a request.
//! [`Registry::flush_installs`] writes the buffer in one transaction: wanted commits become
//! plugin versions, clients become a salted hash of the day (`sha256(salt ‖ tenant ‖ address ‖
//! user agent)`). The salt is random per UTC day, stored so that every server on the database
//! agrees, and deleted once the day is over. No address is ever written.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngCore;
use sha2::{Digest, Sha256};
use skill_pool_core::Role;
use skill_pool_core::api::{DayCount, InstallStats, InstallSummary, PluginInstalls, VersionInstalls};
use skill_pool_store::plugins::PluginVersionRow;
use skill_pool_store::{PluginId, TenantId, now_ms, utc_day};

use crate::{Actor, Registry, Result, with_retry};
use skill_pool_store::prelude::*;

/// More pending entries than this and new ones are dropped (and counted as dropped) until the
/// next flush: memory stays bounded whatever the traffic.
const MAX_PENDING: usize = 50_000;
/// At most this many wanted ids of one fetch are kept (a clone wants one commit).
const MAX_WANTS: usize = 8;
const DAY_MS: i64 = 86_400_000;

/// A plugin and its versions, to map wanted commits.
type Versions = (PluginId, Vec<PluginVersionRow>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PackKey {
    tenant: TenantId,
    plugin: String,
    day: String,
    wants: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    tenant: TenantId,
    day: String,
    address: IpAddr,
    user_agent: String,
}

#[derive(Default)]
struct Pending {
    packs: HashMap<PackKey, u64>,
    clients: HashSet<ClientKey>,
}

impl Pending {
    fn len(&self) -> usize {
        self.packs.len() + self.clients.len()
    }
}

/// The buffer, owned by the registry.
#[derive(Default)]
pub(crate) struct InstallBuffer {
    pending: Mutex<Pending>,
    /// Serialises flushes of this process (a read and the periodic tick may race).
    flushing: tokio::sync::Mutex<()>,
    dropped: AtomicU64,
}

/// What one flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Installs attributed to a plugin version.
    pub installs: u64,
    /// Client sightings written (new or already known for the day).
    pub clients: u64,
}

impl Registry {
    /// Counts a git fetch of `plugin` that downloaded a pack; `wants` are the ids it asked for.
    pub fn record_pack_fetch(&self, tenant: TenantId, plugin: &str, wants: &[String]) {
        let key = PackKey {
            tenant,
            plugin: plugin.to_string(),
            day: utc_day(now_ms()),
            wants: wants.iter().take(MAX_WANTS).cloned().collect(),
        };
        let buffer = &self.inner.installs;
        let mut pending = buffer.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !pending.packs.contains_key(&key) && pending.len() >= MAX_PENDING {
            buffer.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *pending.packs.entry(key).or_default() += 1;
    }

    /// Counts a catalogue fetch by a client (its address and user agent stay in memory until
    /// the next flush, which keeps only a salted hash of them).
    pub fn record_catalogue_fetch(&self, tenant: TenantId, address: IpAddr, user_agent: &str) {
        let key = ClientKey {
            tenant,
            day: utc_day(now_ms()),
            address,
            user_agent: user_agent.chars().take(256).collect(),
        };
        let buffer = &self.inner.installs;
        let mut pending = buffer.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !pending.clients.contains(&key) && pending.len() >= MAX_PENDING {
            buffer.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.clients.insert(key);
    }

    /// Counts dropped because the buffer was full, since the start.
    pub fn installs_dropped(&self) -> u64 {
        self.inner.installs.dropped.load(Ordering::Relaxed)
    }

    /// Writes what was counted since the last flush, in one transaction. A failure is logged
    /// and the counts are kept for the next flush (nothing is lost to a busy database).
    pub async fn flush_installs(&self) -> Option<Flushed> {
        let buffer = &self.inner.installs;
        let _one = buffer.flushing.lock().await;
        let taken = std::mem::take(&mut *buffer.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if taken.len() == 0 {
            return Some(Flushed::default());
        }
        match self.write_installs(&taken).await {
            Ok(done) => Some(done),
            Err(e) => {
                tracing::warn!(error = %e, "install counts could not be written; kept for the next flush");
                let mut pending = buffer.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (key, n) in taken.packs {
                    *pending.packs.entry(key).or_default() += n;
                }
                pending.clients.extend(taken.clients);
                None
            }
        }
    }

    async fn write_installs(&self, taken: &Pending) -> Result<Flushed> {
        // Wanted commits → versions, one read per plugin, before the write transaction.
        let mut plugins: HashMap<(TenantId, String), Option<Versions>> = HashMap::new();
        for key in taken.packs.keys() {
            let id = (key.tenant, key.plugin.clone());
            if plugins.contains_key(&id) {
                continue;
            }
            let found = match self.store().plugin(key.tenant, &key.plugin).await? {
                Some(row) => Some((row.id, self.store().plugin_versions(key.tenant, row.id).await?)),
                None => None,
            };
            plugins.insert(id, found);
        }
        let mut adds: HashMap<(TenantId, PluginId, i64, String), i64> = HashMap::new();
        let mut installs = 0u64;
        for (key, n) in &taken.packs {
            let Some(Some((plugin_id, versions))) = plugins.get(&(key.tenant, key.plugin.clone())) else {
                continue;
            };
            // The first wanted id that is a version's commit; lazy fetches of trees and blobs
            // (partial clones) are not installs.
            let Some(version) = key.wants.iter().find_map(|w| versions.iter().find(|v| &v.commit_id == w)) else {
                continue;
            };
            *adds.entry((key.tenant, *plugin_id, version.id, key.day.clone())).or_default() += *n as i64;
            installs += n;
        }
        let today = utc_day(now_ms());
        let days: HashSet<&str> = taken.clients.iter().map(|c| c.day.as_str()).collect();
        let (adds, days, today) = (&adds, &days, &today);
        let clients = with_retry(|| async move {
            let mut tx = self.store().write().await?;
            for ((tenant, plugin, version, day), n) in adds {
                tx.add_installs(*tenant, *plugin, *version, day, *n).await?;
            }
            let mut salts = HashMap::new();
            for day in days {
                let mut fresh = [0u8; 32];
                rand::rng().fill_bytes(&mut fresh);
                salts.insert(*day, tx.day_salt(day, &hex::encode(fresh)).await?);
            }
            let mut clients = 0u64;
            for c in &taken.clients {
                let Some(salt) = salts.get(c.day.as_str()) else { continue };
                tx.add_catalogue_client(c.tenant, &c.day, &client_hash(salt, c)).await?;
                clients += 1;
            }
            // The days that are over lose their salt: their hashes can no longer be linked.
            tx.delete_salts_before(today).await?;
            tx.commit().await?;
            Ok(clients)
        })
        .await?;
        Ok(Flushed { installs, clients })
    }

    /// The install counts of one plugin (part of its single-plugin view).
    pub(crate) async fn install_stats(&self, tenant: TenantId, plugin_id: PluginId, versions: &[PluginVersionRow]) -> Result<InstallStats> {
        let rows = self.store().plugin_installs(tenant, plugin_id).await?;
        let since = utc_day(now_ms() - 29 * DAY_MS);
        let mut stats = InstallStats::default();
        let mut per_version: HashMap<i64, u64> = HashMap::new();
        let mut per_day: Vec<DayCount> = Vec::new();
        for r in &rows {
            let n = r.count.max(0) as u64;
            stats.total += n;
            *per_version.entry(r.version_id).or_default() += n;
            if r.day >= since {
                stats.last_30_days += n;
                match per_day.last_mut() {
                    Some(d) if d.day == r.day => d.count += n,
                    _ => per_day.push(DayCount {
                        day: r.day.clone(),
                        count: n,
                    }),
                }
            }
        }
        stats.days = per_day;
        stats.versions = versions
            .iter()
            .rev()
            .filter_map(|v| {
                per_version.get(&v.id).map(|n| VersionInstalls {
                    version: crate::plugins::effective_version_of(v),
                    seq: v.seq.max(0) as u64,
                    total: *n,
                })
            })
            .collect();
        Ok(stats)
    }

    /// `GET /v1/installs`: per plugin totals and distinct catalogue clients per day over the
    /// last `days` UTC days (today included).
    pub async fn install_summary(&self, actor: &Actor, days: u32) -> Result<InstallSummary> {
        actor.require(Role::Member)?;
        let days = days.clamp(1, 366);
        self.flush_installs().await;
        let since = utc_day(now_ms() - (i64::from(days) - 1) * DAY_MS);
        let plugins = self
            .store()
            .tenant_install_totals(actor.tenant, &since)
            .await?
            .into_iter()
            .map(|r| PluginInstalls {
                slug: r.slug,
                total: r.total.max(0) as u64,
                recent: r.recent.max(0) as u64,
            })
            .collect();
        let catalogue_clients = self
            .store()
            .catalogue_clients(actor.tenant, &since)
            .await?
            .into_iter()
            .map(|r| DayCount {
                day: r.day,
                count: r.clients.max(0) as u64,
            })
            .collect();
        Ok(InstallSummary {
            days,
            since,
            plugins,
            catalogue_clients,
        })
    }
}

/// `sha256(salt ‖ tenant ‖ address ‖ user agent)`, fields separated so that none can run into
/// the next.
fn client_hash(salt: &str, c: &ClientKey) -> String {
    let mut h = Sha256::new();
    for part in [salt, &c.tenant.get().to_string(), &c.address.to_string(), &c.user_agent] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}
