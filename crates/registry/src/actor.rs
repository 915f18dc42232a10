//! Who is acting: one [`Principal`] type for every way into the registry, and the [`Actor`]
//! every use case takes (a principal acting in one tenant with one role). The audit log
//! records the principal of every write; nothing outside this crate can make up an actor
//! with a role it was not given (tokens and sign-ins are checked here).

use skill_pool_core::Role;
use skill_pool_store::TenantId;

use crate::{RegistryError, Result};

/// The kinds of principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person at the server's own command line (`skill-pool-server tenant create …`): has
    /// the machine, so may do anything, in any tenant.
    Operator,
    /// An API token of the tenant.
    Token { id: i64, name: String },
    /// A user signed in to the portal.
    User { id: i64, username: String },
    /// A background job (a mirror refresh, say).
    Job { id: i64, kind: String },
}

impl Principal {
    /// How the audit log and `created_by` columns name it: `operator`, `token:ci#3`,
    /// `user:alice#2`, `job:mirror#7`.
    pub fn audit_name(&self) -> String {
        match self {
            Principal::Operator => "operator".into(),
            Principal::Token { id, name } => format!("token:{name}#{id}"),
            Principal::User { id, username } => format!("user:{username}#{id}"),
            Principal::Job { id, kind } => format!("job:{kind}#{id}"),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.audit_name())
    }
}

/// A principal acting in one tenant with one role, for one request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub(crate) tenant: TenantId,
    pub(crate) role: Role,
    pub(crate) principal: Principal,
    pub(crate) request_id: Option<String>,
}

impl Actor {
    /// The operator, acting on one tenant through `skill-pool-server` subcommands.
    pub fn operator(tenant: TenantId) -> Actor {
        Actor {
            tenant,
            role: Role::Admin,
            principal: Principal::Operator,
            request_id: None,
        }
    }

    /// A background job acting for a tenant with the admin role (what it does was asked for
    /// by an admin when the job was queued).
    pub fn job(tenant: TenantId, id: i64, kind: &str) -> Actor {
        Actor {
            tenant,
            role: Role::Admin,
            principal: Principal::Job { id, kind: kind.into() },
            request_id: None,
        }
    }

    /// The same actor, for the request with this id (kept in the audit log).
    pub fn with_request_id(mut self, request_id: Option<String>) -> Actor {
        self.request_id = request_id;
        self
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// How the audit log names this actor.
    pub fn audit_name(&self) -> String {
        self.principal.audit_name()
    }

    /// `Forbidden` unless the role allows `role`.
    pub fn require(&self, role: Role) -> Result<()> {
        if self.role.allows(role) {
            Ok(())
        } else {
            let who = match self.principal {
                Principal::User { .. } => "your account",
                _ => "the token",
            };
            Err(RegistryError::Forbidden(format!(
                "this needs the {role} role; {who} has the {} role",
                self.role
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_names() {
        assert_eq!(Principal::Operator.audit_name(), "operator");
        assert_eq!(Principal::Token { id: 3, name: "ci".into() }.audit_name(), "token:ci#3");
        assert_eq!(
            Principal::User {
                id: 2,
                username: "alice".into()
            }
            .audit_name(),
            "user:alice#2"
        );
        assert_eq!(
            Principal::Job {
                id: 7,
                kind: "mirror".into()
            }
            .audit_name(),
            "job:mirror#7"
        );
    }

    #[test]
    fn roles_are_checked() {
        let member = Actor {
            role: Role::Member,
            ..Actor::operator(TenantId::for_tests(1))
        };
        assert!(member.require(Role::Member).is_ok());
        assert!(matches!(member.require(Role::Admin), Err(RegistryError::Forbidden(_))));
        assert!(Actor::operator(TenantId::for_tests(1)).require(Role::Admin).is_ok());
    }
}
