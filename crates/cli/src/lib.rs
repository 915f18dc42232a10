//! The pieces of the `skill-pool` CLI that are worth testing on their own: where the login is
//! kept and how a folder is packed for upload.

pub mod config;
pub mod pack;
