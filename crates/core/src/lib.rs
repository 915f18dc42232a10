//! skill-pool's vocabulary, without I/O: validated names, versions, frontmatter,
//! upload archives, the Claude Code plugin layout, inline plugin blobs, the
//! marketplace catalogue and the API wire types shared by server and client.
//!
//! Invariant: nothing in this crate touches the network, the disk or a database.

pub mod api;
pub mod archive;
pub mod blobs;
pub mod catalogue;
pub mod error_code;
pub mod frontmatter;
pub mod layout;
pub mod manifest;
pub mod role;
pub mod slug;
pub mod version;

pub use error_code::ErrorCode;
pub use role::Role;
pub use slug::{Slug, SlugError};
