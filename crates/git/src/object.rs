//! Git object ids computed without git: blobs, trees from a flat file list, commits with
//! skill-pool's fixed identity. Same input, same id, on every replica.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use sha1::{Digest, Sha1};

use crate::GitError;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 20]);

impl ObjectId {
    pub fn from_bytes(bytes: [u8; 20]) -> ObjectId {
        ObjectId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits: the version Claude Code shows for an unversioned git plugin.
    pub fn short12(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl FromStr for ObjectId {
    type Err = GitError;
    fn from_str(s: &str) -> Result<ObjectId, GitError> {
        let mut out = [0u8; 20];
        if s.len() != 40 {
            return Err(GitError::BadObjectId(s.to_string()));
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| GitError::BadObjectId(s.to_string()))?;
        Ok(ObjectId(out))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

pub(crate) fn hash_object(kind: &str, body: &[u8]) -> ObjectId {
    let mut h = Sha1::new();
    h.update(format!("{kind} {}\0", body.len()).as_bytes());
    h.update(body);
    ObjectId(h.finalize().into())
}

/// The id git gives `data` as a blob.
pub fn blob_id(data: &[u8]) -> ObjectId {
    hash_object("blob", data)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryMode {
    File,
    Executable,
    Symlink,
}

impl EntryMode {
    pub fn octal(self) -> &'static str {
        match self {
            EntryMode::File => "100644",
            EntryMode::Executable => "100755",
            EntryMode::Symlink => "120000",
        }
    }
}

/// One file of a tree, by its path from the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    pub path: String,
    pub mode: EntryMode,
    pub blob: ObjectId,
    /// The storage address of the body (how [`crate::repo::BodySource`] finds it).
    pub sha256: String,
}

enum Node {
    File(EntryMode, ObjectId),
    Dir(BTreeMap<String, Node>),
}

/// The root tree id of `files`, exactly as git computes it.
pub fn tree_id(files: &[TreeFile]) -> Result<ObjectId, GitError> {
    Ok(tree_objects(files)?.0)
}

/// A tree object: its id and raw body.
pub type TreeObject = (ObjectId, Vec<u8>);

/// The root tree id of `files` and every tree object of it, the root last.
pub fn tree_objects(files: &[TreeFile]) -> Result<(ObjectId, Vec<TreeObject>), GitError> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for f in files {
        let parts: Vec<&str> = f.path.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
            return Err(GitError::BadTree(format!("`{}` is not a clean relative path", f.path)));
        }
        let (name, dirs) = parts.split_last().expect("split yields one part at least");
        let mut level = &mut root;
        for d in dirs {
            let node = level.entry((*d).to_string()).or_insert_with(|| Node::Dir(BTreeMap::new()));
            level = match node {
                Node::Dir(children) => children,
                Node::File(..) => return Err(GitError::BadTree(format!("`{d}` is both a file and a folder (at `{}`)", f.path))),
            };
        }
        if level.insert((*name).to_string(), Node::File(f.mode, f.blob)).is_some() {
            return Err(GitError::BadTree(format!("`{}` is listed twice or is also a folder", f.path)));
        }
    }
    let mut trees = Vec::new();
    let id = write_tree(&root, &mut trees);
    Ok((id, trees))
}

fn write_tree(entries: &BTreeMap<String, Node>, trees: &mut Vec<TreeObject>) -> ObjectId {
    // Git sorts entries by name, with folders compared as if their name ended in `/`.
    let mut sorted: Vec<(Vec<u8>, &str, ObjectId, &String)> = entries
        .iter()
        .map(|(name, node)| match node {
            Node::File(mode, id) => (name.as_bytes().to_vec(), mode.octal(), *id, name),
            Node::Dir(children) => {
                let mut key = name.as_bytes().to_vec();
                key.push(b'/');
                (key, "40000", write_tree(children, trees), name)
            }
        })
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut body = Vec::new();
    for (_, mode, id, name) in sorted {
        body.extend_from_slice(mode.as_bytes());
        body.push(b' ');
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(id.as_bytes());
    }
    let id = hash_object("tree", &body);
    trees.push((id, body));
    id
}

/// The fixed author and committer of every skill-pool commit.
pub const IDENTITY: &str = "skill-pool <skill-pool@localhost>";

/// The message of the commit that serves one plugin version: `<slug> <version>` or, for a
/// version without a semver, `<slug> revision <seq>`. The commit id is computed from it when
/// the version is published and the repo is rebuilt with it later; both call this, so a
/// rebuilt repo always ends at the published commit ids.
pub fn plugin_version_message(plugin_slug: &str, seq: i64, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{plugin_slug} {v}\n"),
        None => format!("{plugin_slug} revision {seq}\n"),
    }
}

/// The tags a versioned plugin version gets: `v<version>`, and `<plugin>--v<version>`, the
/// name Claude Code lists with `git ls-remote --tags` to resolve a dependency's version range
/// (and that `claude plugin tag` creates).
pub fn plugin_version_tags(plugin_slug: &str, version: &str) -> Vec<String> {
    vec![format!("v{version}"), format!("{plugin_slug}--v{version}")]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSpec {
    pub tree: ObjectId,
    pub parent: Option<ObjectId>,
    pub time_secs: i64,
    /// Used as given; end it with a newline.
    pub message: String,
}

/// The raw commit object body git would write for `spec`.
pub fn commit_body(spec: &CommitSpec) -> Vec<u8> {
    let mut body = format!("tree {}\n", spec.tree);
    if let Some(p) = spec.parent {
        body.push_str(&format!("parent {p}\n"));
    }
    body.push_str(&format!("author {IDENTITY} {} +0000\n", spec.time_secs));
    body.push_str(&format!("committer {IDENTITY} {} +0000\n", spec.time_secs));
    body.push('\n');
    body.push_str(&spec.message);
    body.into_bytes()
}

pub fn commit_id(spec: &CommitSpec) -> ObjectId {
    hash_object("commit", &commit_body(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids() {
        assert_eq!(blob_id(b"").to_hex(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        assert_eq!(blob_id(b"hello\n").to_hex(), "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(tree_id(&[]).unwrap().to_hex(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
        let id: ObjectId = "CE013625030BA8DBA906F756967F9E9CA394464A".parse().unwrap();
        assert_eq!(id.short12(), "ce013625030b");
        assert!("xyz".parse::<ObjectId>().is_err());
    }

    #[test]
    fn refuses_bad_trees() {
        let f = |p: &str| TreeFile {
            path: p.into(),
            mode: EntryMode::File,
            blob: blob_id(b""),
            sha256: String::new(),
        };
        assert!(tree_id(&[f("a"), f("a/b")]).is_err());
        assert!(tree_id(&[f("a/b"), f("a")]).is_err());
        assert!(tree_id(&[f("a"), f("a")]).is_err());
        assert!(tree_id(&[f("../a")]).is_err());
        assert!(tree_id(&[f("a//b")]).is_err());
    }
}
