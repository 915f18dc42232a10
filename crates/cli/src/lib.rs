//! The pieces of the `skill-pool` CLI that are worth testing on their own: where the login is
//! kept, how a folder is packed for upload, and `ensure` (manifest, lock, settings merge,
//! cooldown) apart from its command line, and the credential helpers of a private tenant.

pub mod auth;
pub mod config;
pub mod ensure;
pub mod pack;
