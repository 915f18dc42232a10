//! Size limits on what goes into a tenant's public catalogue: every field of a plugin's
//! metadata is bounded, so one entry cannot make the catalogue (which Claude Code reads whole,
//! at most 5 MiB) large or slow for everyone.

use crate::api::PluginMetadata;

/// Longest `description`, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 4096;
/// Longest short field (`displayName`, `license`, `category`, author name and email), in bytes.
pub const MAX_SHORT_FIELD_BYTES: usize = 256;
/// Longest URL field (`homepage`, `repository`, `author.url`), in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Most keywords, and the longest one in bytes.
pub const MAX_KEYWORDS: usize = 32;
pub const MAX_KEYWORD_BYTES: usize = 64;

/// A metadata field over its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` is {size} bytes long; the limit is {limit}")]
pub struct FieldTooLong {
    pub field: String,
    pub size: usize,
    pub limit: usize,
}

fn check(field: &str, value: Option<&str>, limit: usize) -> Result<(), FieldTooLong> {
    match value {
        Some(v) if v.len() > limit => Err(FieldTooLong {
            field: field.to_string(),
            size: v.len(),
            limit,
        }),
        _ => Ok(()),
    }
}

/// Checks every field of `meta` against its limit.
pub fn check_metadata(meta: &PluginMetadata) -> Result<(), FieldTooLong> {
    check("description", meta.description.as_deref(), MAX_DESCRIPTION_BYTES)?;
    check("displayName", meta.display_name.as_deref(), MAX_SHORT_FIELD_BYTES)?;
    check("license", meta.license.as_deref(), MAX_SHORT_FIELD_BYTES)?;
    check("category", meta.category.as_deref(), MAX_SHORT_FIELD_BYTES)?;
    check("homepage", meta.homepage.as_deref(), MAX_URL_BYTES)?;
    check("repository", meta.repository.as_deref(), MAX_URL_BYTES)?;
    if let Some(a) = &meta.author {
        check("author.name", Some(&a.name), MAX_SHORT_FIELD_BYTES)?;
        check("author.email", a.email.as_deref(), MAX_SHORT_FIELD_BYTES)?;
        check("author.url", a.url.as_deref(), MAX_URL_BYTES)?;
    }
    if meta.keywords.len() > MAX_KEYWORDS {
        return Err(FieldTooLong {
            field: "keywords".into(),
            size: meta.keywords.len(),
            limit: MAX_KEYWORDS,
        });
    }
    for (i, k) in meta.keywords.iter().enumerate() {
        check(&format!("keywords[{i}]"), Some(k), MAX_KEYWORD_BYTES)?;
    }
    Ok(())
}

/// Cuts `s` to at most `limit` bytes on a character boundary, marking the cut with `…`.
fn cut(s: &mut String, limit: usize) -> bool {
    if s.len() <= limit {
        return false;
    }
    let mut end = limit.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    true
}

/// For content skill-pool does not own (a mirrored upstream): fits every field to its limit
/// instead of refusing, and names what was cut.
pub fn fit_metadata(meta: &mut PluginMetadata) -> Vec<String> {
    let mut cut_fields = Vec::new();
    let mut fit = |field: &str, value: &mut Option<String>, limit: usize| {
        if let Some(v) = value
            && cut(v, limit)
        {
            cut_fields.push(field.to_string());
        }
    };
    fit("description", &mut meta.description, MAX_DESCRIPTION_BYTES);
    fit("displayName", &mut meta.display_name, MAX_SHORT_FIELD_BYTES);
    fit("license", &mut meta.license, MAX_SHORT_FIELD_BYTES);
    fit("category", &mut meta.category, MAX_SHORT_FIELD_BYTES);
    // A URL cut short is a wrong URL: dropped instead.
    for (field, value) in [("homepage", &mut meta.homepage), ("repository", &mut meta.repository)] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_URL_BYTES) {
            *value = None;
            cut_fields.push(field.to_string());
        }
    }
    if let Some(a) = &mut meta.author {
        if cut(&mut a.name, MAX_SHORT_FIELD_BYTES) {
            cut_fields.push("author.name".into());
        }
        if a.email.as_ref().is_some_and(|v| v.len() > MAX_SHORT_FIELD_BYTES) {
            a.email = None;
            cut_fields.push("author.email".into());
        }
        if a.url.as_ref().is_some_and(|v| v.len() > MAX_URL_BYTES) {
            a.url = None;
            cut_fields.push("author.url".into());
        }
    }
    let before = meta.keywords.len();
    meta.keywords.retain(|k| k.len() <= MAX_KEYWORD_BYTES);
    meta.keywords.truncate(MAX_KEYWORDS);
    if meta.keywords.len() != before {
        cut_fields.push("keywords".into());
    }
    cut_fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Author;

    #[test]
    fn limits_are_checked_and_fitted() {
        let mut meta = PluginMetadata {
            description: Some("é".repeat(5000)),
            keywords: (0..40).map(|i| format!("k{i}")).collect(),
            homepage: Some(format!("https://x/{}", "a".repeat(3000))),
            author: Some(Author {
                name: "n".into(),
                email: None,
                url: None,
            }),
            ..PluginMetadata::default()
        };
        let e = check_metadata(&meta).unwrap_err();
        assert_eq!(e.field, "description");
        let cut = fit_metadata(&mut meta);
        assert_eq!(cut, vec!["description", "homepage", "keywords"]);
        assert!(meta.description.as_ref().unwrap().len() <= MAX_DESCRIPTION_BYTES);
        assert!(meta.description.as_ref().unwrap().ends_with('…'));
        assert!(check_metadata(&meta).is_ok());
        assert!(check_metadata(&PluginMetadata::default()).is_ok());
    }
}
