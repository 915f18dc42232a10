//! The Claude Code plugin layout of an uploaded folder: which files are skills, agents and
//! commands (registered as pieces) and which stay plain plugin files. Nothing is rewritten:
//! the pieces' files, mounted back at their places, plus the other files, are the folder.

use crate::archive::{FileMode, UploadFile};
use crate::frontmatter::{self, Frontmatter};
use crate::manifest::{self, PluginManifest};
use crate::slug::Slug;

pub const MANIFEST_PATH: &str = ".claude-plugin/plugin.json";

/// Characters a Windows file name cannot hold (besides `:`, `\` and control characters, which
/// uploads refuse).
const WINDOWS_INVALID: [char; 6] = ['<', '>', '"', '|', '?', '*'];

/// A skill, agent or command found in the folder.
#[derive(Debug, Clone)]
pub struct LayoutPiece {
    /// The registry name: a skill's folder name, an agent's or command's file stem.
    pub name: Slug,
    /// Where the piece sits: `skills/<folder>` for a skill, `agents` or `commands` otherwise.
    pub mount_path: String,
    /// The piece's files, relative to `mount_path`.
    pub files: Vec<UploadFile>,
    pub frontmatter: Option<Frontmatter>,
}

#[derive(Debug, Clone, Default)]
pub struct PluginLayout {
    pub manifest: Option<PluginManifest>,
    pub skills: Vec<LayoutPiece>,
    pub agents: Vec<LayoutPiece>,
    pub commands: Vec<LayoutPiece>,
    /// Everything else, byte for byte (plugin.json included).
    pub other_files: Vec<UploadFile>,
    /// Remarks for the publisher, e.g. a skill kept as plain files because of its name.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error("{path}: {error}")]
    Frontmatter {
        path: String,
        error: frontmatter::FrontmatterError,
    },
    #[error("{0} must be a regular file, not a symbolic link")]
    Symlink(String),
}

/// Sorts the upload's files into pieces and plain files.
pub fn classify(files: Vec<UploadFile>) -> Result<PluginLayout, LayoutError> {
    let mut layout = PluginLayout::default();
    // Names Windows cannot create: Claude Code installs them elsewhere, so a warning only.
    for f in files.iter().filter(|f| f.path.contains(WINDOWS_INVALID)) {
        layout.warnings.push(format!(
            "{}: Windows cannot hold a name with < > \" | ? *, so the plugin will not install there",
            f.path
        ));
    }
    if let Some(m) = files.iter().find(|f| f.path == MANIFEST_PATH) {
        if m.mode == FileMode::Symlink {
            return Err(LayoutError::Symlink(MANIFEST_PATH.into()));
        }
        layout.manifest = Some(manifest::parse_plugin_json(&m.data)?);
    }
    // Skill folders: `skills/<dir>/SKILL.md` as a regular file.
    let mut skill_dirs: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let rest = f.path.strip_prefix("skills/")?;
            let (dir, file) = rest.split_once('/')?;
            (file == "SKILL.md" && f.mode != FileMode::Symlink).then(|| dir.to_string())
        })
        .collect();
    skill_dirs.sort();
    skill_dirs.dedup();
    let mut skill_names = std::collections::HashMap::new();
    for dir in skill_dirs {
        match Slug::parse(&dir) {
            Ok(slug) => {
                skill_names.insert(dir, slug);
            }
            Err(e) => layout.warnings.push(format!(
                "skills/{dir} is kept as plain plugin files, not registered as a skill: {e}"
            )),
        }
    }
    let mut skills: std::collections::BTreeMap<String, Vec<UploadFile>> = Default::default();
    for f in files {
        if let Some(rest) = f.path.strip_prefix("skills/")
            && let Some((dir, inner)) = rest.split_once('/')
            && skill_names.contains_key(dir)
        {
            let relative = UploadFile {
                path: inner.to_string(),
                ..f
            };
            skills.entry(dir.to_string()).or_default().push(relative);
            continue;
        }
        if let Some(piece) = markdown_piece(&f, "agents/", &mut layout.warnings)? {
            let fm = read_piece_frontmatter(&f.path, &f.data, &mut layout.warnings)?;
            layout.agents.push(LayoutPiece {
                frontmatter: Some(fm),
                ..piece
            });
            continue;
        }
        if let Some(piece) = markdown_piece(&f, "commands/", &mut layout.warnings)? {
            let fm = read_piece_frontmatter(&f.path, &f.data, &mut layout.warnings)?;
            layout.commands.push(LayoutPiece {
                frontmatter: Some(fm),
                ..piece
            });
            continue;
        }
        layout.other_files.push(f);
    }
    for (dir, files) in skills {
        let skill_md = files.iter().find(|f| f.path == "SKILL.md").expect("a skill folder has SKILL.md");
        let path = format!("skills/{dir}/SKILL.md");
        let fm = read_piece_frontmatter(&path, &skill_md.data, &mut layout.warnings)?;
        layout.skills.push(LayoutPiece {
            name: skill_names.remove(&dir).expect("checked above"),
            mount_path: format!("skills/{dir}"),
            files,
            frontmatter: Some(fm),
        });
    }
    Ok(layout)
}

/// The frontmatter of a piece in the folder: refused only when Claude Code cannot read the file
/// at all; everything else it would work around becomes a warning naming the file.
fn read_piece_frontmatter(path: &str, data: &[u8], warnings: &mut Vec<String>) -> Result<Frontmatter, LayoutError> {
    let fm = frontmatter::read_in_plugin(data).map_err(|error| LayoutError::Frontmatter {
        path: path.to_string(),
        error,
    })?;
    warnings.extend(fm.warnings.iter().map(|w| format!("{path}: {w}")));
    Ok(fm)
}

/// `agents/<name>.md` or `commands/<name>.md` directly in the folder, as a regular file.
fn markdown_piece(f: &UploadFile, prefix: &str, warnings: &mut Vec<String>) -> Result<Option<LayoutPiece>, LayoutError> {
    let Some(file) = f.path.strip_prefix(prefix) else { return Ok(None) };
    let Some(stem) = file.strip_suffix(".md") else { return Ok(None) };
    if stem.contains('/') || f.mode == FileMode::Symlink {
        return Ok(None);
    }
    match Slug::parse(stem) {
        Ok(name) => Ok(Some(LayoutPiece {
            name,
            mount_path: prefix.trim_end_matches('/').to_string(),
            files: vec![UploadFile {
                path: file.to_string(),
                ..f.clone()
            }],
            frontmatter: None,
        })),
        Err(e) => {
            warnings.push(format!("{} is kept as a plain plugin file, not registered: {e}", f.path));
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, data: &str) -> UploadFile {
        UploadFile {
            path: path.into(),
            mode: FileMode::Regular,
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn sorts_a_plugin_folder() {
        let layout = classify(vec![
            f(".claude-plugin/plugin.json", r#"{"name":"p","version":"1.0.0"}"#),
            f("skills/greet/SKILL.md", "---\nname: hello\ndescription: d\n---\n"),
            f("skills/greet/scripts/run.sh", "echo"),
            f("agents/reviewer.md", "---\nname: reviewer\ndescription: d\n---\n"),
            f("agents/notes/readme.md", "plain"),
            f("commands/deploy.md", "---\ndescription: d\n---\n"),
            f("commands/Bad_Name.md", "---\ndescription: d\n---\n"),
            f("hooks/hooks.json", "{}"),
            f("README.md", "# p"),
        ])
        .unwrap();
        assert_eq!(layout.manifest.as_ref().unwrap().name, "p");
        assert_eq!(layout.skills.len(), 1);
        assert_eq!(layout.skills[0].name.as_str(), "greet");
        assert_eq!(layout.skills[0].mount_path, "skills/greet");
        assert_eq!(
            layout.skills[0].files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["SKILL.md", "scripts/run.sh"]
        );
        assert_eq!(layout.agents[0].files[0].path, "reviewer.md");
        assert_eq!(layout.commands.len(), 1);
        let others: Vec<&str> = layout.other_files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            others,
            [
                ".claude-plugin/plugin.json",
                "agents/notes/readme.md",
                "commands/Bad_Name.md",
                "hooks/hooks.json",
                "README.md"
            ]
        );
        assert_eq!(layout.warnings.len(), 1);
    }

    #[test]
    fn lenient_frontmatter_is_a_warning_naming_the_file() {
        let layout = classify(vec![
            f("skills/x/SKILL.md", "no frontmatter"),
            f("agents/a.md", "---\nname: a\ndescription: Use it when: asked\n---\n"),
            f("commands/c.md", "---\ndescription: fine\n---\n"),
        ])
        .unwrap();
        assert_eq!(layout.skills.len(), 1);
        assert_eq!(
            layout.agents[0].frontmatter.as_ref().unwrap().description.as_deref(),
            Some("Use it when: asked")
        );
        assert_eq!(layout.warnings.len(), 2, "{:?}", layout.warnings);
        assert!(layout.warnings[0].starts_with("agents/a.md: "), "{:?}", layout.warnings);
        assert!(layout.warnings[1].starts_with("skills/x/SKILL.md: "), "{:?}", layout.warnings);
    }

    #[test]
    fn names_windows_cannot_hold_are_a_warning() {
        let layout = classify(vec![f("docs/what?.md", ""), f("README.md", "")]).unwrap();
        assert_eq!(layout.warnings.len(), 1, "{:?}", layout.warnings);
        assert!(layout.warnings[0].starts_with("docs/what?.md: Windows"), "{:?}", layout.warnings);
    }

    #[test]
    fn bad_frontmatter_names_the_file() {
        let err = classify(vec![UploadFile {
            data: vec![b'-', 0xff, 0xfe],
            ..f("skills/x/SKILL.md", "")
        }])
        .unwrap_err();
        assert!(err.to_string().starts_with("skills/x/SKILL.md: "), "{err}");
        let err = classify(vec![f(".claude-plugin/plugin.json", "{")]).unwrap_err();
        assert!(err.to_string().contains("plugin.json"), "{err}");
    }
}
