//! `.skill-pool/manifest.lock`: what `ensure` resolved and wrote, meant to be committed.
//!
//! Stable order (entries by slug, files by path) so that a change shows as a small diff. File
//! paths are relative to the Claude folder the entry was installed into (`.claude/` of the
//! project, or `~/.claude/` with `--user`), always with `/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use skill_pool_core::api::PieceKind;

/// The lock format this version writes and reads.
pub const LOCK_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Project,
    User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub format: u32,
    /// The tenant root everything here came from.
    pub url: String,
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<LockedPiece>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<LockedPiece>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<LockedPiece>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<LockedPlugin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPiece {
    pub slug: String,
    pub version: String,
    /// Path (relative to the Claude folder) → sha256 of the bytes written (of the link target
    /// for a symlink).
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPlugin {
    pub name: String,
    /// The version Claude Code installs (plugin.json's, else the commit's first 12 hex).
    pub version: String,
    /// The marketplace name (the catalogue's `name`): the plugin id is `<name>@<marketplace>`.
    pub marketplace: String,
}

impl LockedPlugin {
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.marketplace)
    }
}

impl Lock {
    pub fn new(url: &str, scope: Scope) -> Lock {
        Lock {
            format: LOCK_FORMAT,
            url: url.to_string(),
            scope,
            skills: Vec::new(),
            agents: Vec::new(),
            commands: Vec::new(),
            plugins: Vec::new(),
        }
    }

    pub fn parse(text: &str) -> Result<Lock, String> {
        let lock: Lock = toml::from_str(text).map_err(|e| e.message().lines().next().unwrap_or("not valid TOML").to_string())?;
        if lock.format != LOCK_FORMAT {
            return Err(format!(
                "lock format {} is not known to this skill-pool (it writes format {LOCK_FORMAT}): upgrade skill-pool",
                lock.format
            ));
        }
        Ok(lock)
    }

    pub fn pieces(&self, kind: PieceKind) -> &Vec<LockedPiece> {
        match kind {
            PieceKind::Skill => &self.skills,
            PieceKind::Agent => &self.agents,
            PieceKind::Command => &self.commands,
        }
    }

    pub fn pieces_mut(&mut self, kind: PieceKind) -> &mut Vec<LockedPiece> {
        match kind {
            PieceKind::Skill => &mut self.skills,
            PieceKind::Agent => &mut self.agents,
            PieceKind::Command => &mut self.commands,
        }
    }

    pub fn piece(&self, kind: PieceKind, slug: &str) -> Option<&LockedPiece> {
        self.pieces(kind).iter().find(|p| p.slug == slug)
    }

    pub fn plugin(&self, name: &str) -> Option<&LockedPlugin> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// Sets (or replaces) a piece's entry.
    pub fn put_piece(&mut self, kind: PieceKind, entry: LockedPiece) {
        let list = self.pieces_mut(kind);
        list.retain(|p| p.slug != entry.slug);
        list.push(entry);
        list.sort_by(|a, b| a.slug.cmp(&b.slug));
    }

    pub fn remove_piece(&mut self, kind: PieceKind, slug: &str) {
        self.pieces_mut(kind).retain(|p| p.slug != slug);
    }

    pub fn put_plugin(&mut self, entry: LockedPlugin) {
        self.plugins.retain(|p| p.name != entry.name);
        self.plugins.push(entry);
        self.plugins.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn remove_plugin(&mut self, name: &str) {
        self.plugins.retain(|p| p.name != name);
    }

    /// The file's text: a header, then the entries in a stable order.
    pub fn render(&self) -> String {
        let body = toml::to_string(self).expect("a lock always serialises");
        format!("# Written by `skill-pool ensure`: what .skill-pool/manifest.toml resolved to. Commit it; do not edit.\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_in_a_stable_order_and_reads_back() {
        let mut lock = Lock::new("http://h/t/a", Scope::Project);
        for slug in ["zeta", "alpha"] {
            lock.put_piece(
                PieceKind::Skill,
                LockedPiece {
                    slug: slug.into(),
                    version: "1.0.0".into(),
                    files: BTreeMap::from([
                        (format!("skills/{slug}/z.md"), "00".into()),
                        (format!("skills/{slug}/SKILL.md"), "11".into()),
                    ]),
                },
            );
        }
        lock.put_plugin(LockedPlugin {
            name: "p".into(),
            version: "3f2a9c1b7d4e".into(),
            marketplace: "a".into(),
        });
        let text = lock.render();
        assert!(text.find("alpha").unwrap() < text.find("zeta").unwrap(), "{text}");
        assert!(text.find("SKILL.md").unwrap() < text.find("z.md").unwrap(), "{text}");
        assert_eq!(Lock::parse(&text).unwrap(), lock);
        // Re-rendering what was read gives the same bytes.
        assert_eq!(Lock::parse(&text).unwrap().render(), text);
        assert!(
            Lock::parse(&text.replace("format = 1", "format = 9"))
                .unwrap_err()
                .contains("upgrade")
        );
    }
}
