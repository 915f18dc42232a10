//! skill-pool's vocabulary, without I/O: validated names, versions, frontmatter,
//! upload archives, names safe on every filesystem, the Claude Code plugin layout, inline plugin blobs, the
//! marketplace catalogue and the API wire types shared by server and client.
//!
//! Invariant: nothing in this crate touches the network, the disk or a database.

pub mod api;
pub mod archive;
pub mod blobs;
pub mod catalogue;
pub mod deps;
pub mod error_code;
pub mod frontmatter;
pub mod gitconfig;
pub mod layout;
pub mod limits;
pub mod manifest;
pub mod names;
pub mod role;
pub mod slug;
pub mod version;
pub mod zip;

pub use error_code::ErrorCode;
pub use role::Role;
pub use slug::{Slug, SlugError};

/// A name (a kind, a mode, a role) that this version does not know: what the store reports
/// for a row it cannot decode, instead of reading it as a default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a known {what}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

macro_rules! try_from_name {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl TryFrom<String> for $t {
            type Error = UnknownName;
            fn try_from(value: String) -> Result<Self, UnknownName> {
                <$t>::parse(&value).ok_or(UnknownName { what: $what, value })
            }
        }
    )*};
}

try_from_name!(
    api::PieceKind => "piece kind",
    api::SourcingMode => "sourcing mode",
    api::InstallPolicy => "install policy",
    api::Visibility => "visibility",
    api::ServeAs => "serving mode",
    Role => "role",
    archive::FileMode => "file mode",
);
