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

/// Today's number as [`Registry::record_catalogue_fetch`] counts days (since 1970-01-01, UTC).
pub fn today_number() -> i64 {
    now_ms().div_euclid(DAY_MS)
}

/// A plugin and its versions, to map wanted commits.
type Versions = (PluginId, Vec<PluginVersionRow>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PackKey {
    tenant: TenantId,
    plugin: String,
    day: String,
    wants: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientKey {
    tenant: TenantId,
    day: String,
    address: IpAddr,
    user_agent: String,
}

/// A client key seen without its owned strings, so that a repeat client is found in the set
/// without allocating (`HashSet::contains` through `Borrow<dyn ClientKeyView>`).
trait ClientKeyView {
    fn view(&self) -> (TenantId, &str, IpAddr, &str);
}

impl ClientKeyView for ClientKey {
    fn view(&self) -> (TenantId, &str, IpAddr, &str) {
        (self.tenant, &self.day, self.address, &self.user_agent)
    }
}

impl ClientKeyView for (TenantId, &str, IpAddr, &str) {
    fn view(&self) -> (TenantId, &str, IpAddr, &str) {
        *self
    }
}

impl std::hash::Hash for dyn ClientKeyView + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.view().hash(state);
    }
}

impl PartialEq for dyn ClientKeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.view() == other.view()
    }
}

impl Eq for dyn ClientKeyView + '_ {}

// Hashed as its view, so that both forms of a key hash alike.
impl std::hash::Hash for ClientKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.view().hash(state);
    }
}

impl<'a> std::borrow::Borrow<dyn ClientKeyView + 'a> for ClientKey {
    fn borrow(&self) -> &(dyn ClientKeyView + 'a) {
        self
    }
}

#[derive(Default)]
struct Pending {
    packs: HashMap<PackKey, u64>,
    clients: HashSet<ClientKey>,
    /// The UTC day of the last catalogue fetch, as a day number and as text (formatted once a day).
    day: (i64, String),
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
    ///
    /// Returns the day (days since 1970-01-01, UTC) under which the client is counted, `None`
    /// when the buffer was full and the fetch was dropped.
    pub fn record_catalogue_fetch(&self, tenant: TenantId, address: IpAddr, user_agent: &str) -> Option<i64> {
        // At most 256 characters of the user agent are kept.
        let user_agent = user_agent.char_indices().nth(256).map_or(user_agent, |(i, _)| &user_agent[..i]);
        let now = now_ms();
        let buffer = &self.inner.installs;
        let mut pending = buffer.pending.lock().unwrap_or_else(|p| p.into_inner());
        let pending = &mut *pending;
        let day_number = now.div_euclid(DAY_MS);
        if pending.day.0 != day_number || pending.day.1.is_empty() {
            pending.day = (day_number, utc_day(now));
        }
        // A repeat client (the common case) costs a lookup, no allocation.
        let seen = (tenant, pending.day.1.as_str(), address, user_agent);
        if pending.clients.contains(&seen as &dyn ClientKeyView) {
            return Some(day_number);
        }
        if pending.packs.len() + pending.clients.len() >= MAX_PENDING {
            buffer.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let key = ClientKey {
            tenant,
            day: pending.day.1.clone(),
            address,
            user_agent: user_agent.to_string(),
        };
        pending.clients.insert(key);
        Some(day_number)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_key_is_found_by_its_borrowed_view() {
        let tenant = TenantId::for_tests(7);
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let mut set = HashSet::new();
        set.insert(ClientKey {
            tenant,
            day: "2026-12-07".into(),
            address,
            user_agent: "claude-code/2.1".into(),
        });
        let same = (tenant, "2026-12-07", address, "claude-code/2.1");
        assert!(set.contains(&same as &dyn ClientKeyView));
        for other in [
            (TenantId::for_tests(8), "2026-12-07", address, "claude-code/2.1"),
            (tenant, "2026-12-08", address, "claude-code/2.1"),
            (tenant, "2026-12-07", "192.0.2.2".parse().unwrap(), "claude-code/2.1"),
            (tenant, "2026-12-07", address, "curl/8"),
        ] {
            assert!(!set.contains(&other as &dyn ClientKeyView), "{other:?}");
        }
    }
}
