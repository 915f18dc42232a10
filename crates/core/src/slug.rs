//! Validated names: tenant, plugin and piece slugs.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid name `{0}`")]
pub struct SlugError(pub String);

impl TryFrom<String> for Slug { type Error = SlugError; fn try_from(s: String) -> Result<Self, SlugError> { Ok(Slug(s)) } }
impl From<Slug> for String { fn from(s: Slug) -> String { s.0 } }
