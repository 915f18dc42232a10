//! Roles and what each may do.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the catalogue, clones and downloads of its tenant, and `whoami`; nothing else of
    /// `/v1`. The token that sits on every developer's laptop for a private tenant.
    Reader,
    /// Reads everything of the tenant.
    Member,
    /// Reads and writes: publishes, composes, archives, manages tokens, reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Reader => "reader",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "reader" => Some(Role::Reader),
            _ => None,
        }
    }

    /// Whether this role may do what `required` allows (admin implies member, member implies reader).
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s).ok_or_else(|| format!("unknown role `{s}`: use admin, member or reader"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_member() {
        assert!(Role::Admin.allows(Role::Member));
        assert!(Role::Admin.allows(Role::Admin));
        assert!(Role::Member.allows(Role::Member));
        assert!(!Role::Member.allows(Role::Admin));
        assert!(Role::Member.allows(Role::Reader));
        assert!(!Role::Reader.allows(Role::Member));
        assert_eq!(Role::parse("reader"), Some(Role::Reader));
    }
}
