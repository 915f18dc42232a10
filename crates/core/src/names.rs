//! File names that are safe on every developer's filesystem, and trees that git's own checks
//! (`verify_path` at checkout, `git fsck --strict` on the served repository) accept.
//!
//! Most developers use macOS (case-insensitive, Unicode-normalising, HFS+ ignorable code points)
//! or Windows (case-insensitive; device names; trailing dots and spaces dropped; `:` streams;
//! 8.3 short names). A tree is refused when one of its names means something else there: two
//! names that the filesystem folds to one, a name that is a device or `.git` in disguise, a
//! `.gitmodules` that git would refuse, and a symbolic link that leaves the tree once its
//! components are compared as such a filesystem compares them.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use crate::archive::{FileMode, UploadFile};

/// The longest symbolic-link target, in bytes (Windows and git for Windows refuse longer ones
/// far earlier than Linux's `PATH_MAX`).
pub const MAX_LINK_TARGET_BYTES: usize = 1024;

/// fsck's `ATTR_MAX_LINE_LENGTH`: a `.gitattributes` line this long is an fsck error.
pub const MAX_GITATTRIBUTES_LINE: usize = 2048;

/// A name that is not safe on some developer's filesystem, or that git refuses. Every variant
/// names the offending path.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "`{path}`: `{component}` is a Windows device name (CON, PRN, AUX, NUL, COM0–9, LPT0–9, CONIN$, CONOUT$, with any extension and in any case): Windows cannot hold such a file; rename it"
    )]
    WindowsDevice { path: String, component: String },
    #[error("`{path}`: `{component}` ends with a dot or a space, which Windows drops (it would name another file there); rename it")]
    TrailingDotOrSpace { path: String, component: String },
    #[error("`{path}`: `:` is not allowed in a name (Windows reads it as a drive or an alternate data stream); rename it")]
    Colon { path: String },
    #[error(
        "`{path}`: `{component}` is `.git` on Windows or macOS (NTFS and HFS+ fold it to the repository folder): git refuses it; rename it"
    )]
    DotGit { path: String, component: String },
    #[error(
        "`{path}` and `{other}` are the same name on a case-insensitive or Unicode-normalising filesystem (macOS, Windows): rename one of them"
    )]
    Collision { path: String, other: String },
    #[error("`{path}`: git reads this name as `{special}`, which must be a regular file, not a {what}")]
    SpecialNotFile {
        path: String,
        special: &'static str,
        what: &'static str,
    },
    #[error("`{path}`: {message} (git fsck refuses such a .gitmodules, so the plugin could not be served)")]
    Gitmodules { path: String, message: String },
    #[error("`{path}`: a line is {len} bytes long; git refuses .gitattributes lines of {MAX_GITATTRIBUTES_LINE} bytes or more")]
    GitattributesLine { path: String, len: usize },
    #[error("`{path}` is a symbolic link to `{target}`: {why}")]
    Symlink { path: String, target: String, why: &'static str },
}

impl NameError {
    /// The uploaded file at fault.
    pub fn path(&self) -> &str {
        match self {
            NameError::WindowsDevice { path, .. }
            | NameError::TrailingDotOrSpace { path, .. }
            | NameError::Colon { path }
            | NameError::DotGit { path, .. }
            | NameError::Collision { path, .. }
            | NameError::SpecialNotFile { path, .. }
            | NameError::Gitmodules { path, .. }
            | NameError::GitattributesLine { path, .. }
            | NameError::Symlink { path, .. } => path,
        }
    }
}

/// Code points HFS+ ignores when it compares names (git's list in `utf8.c`).
fn is_hfs_ignorable(c: char) -> bool {
    matches!(c, '\u{200C}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{206A}'..='\u{206F}' | '\u{FEFF}')
}

/// A name as a case-insensitive, normalising filesystem compares it: HFS+ ignorable code points
/// dropped, case folded both ways (so NTFS's upper-casing and APFS's folding meet), NFC. Two
/// names with the same fold are one file on some developer's machine.
pub fn fold(name: &str) -> String {
    let decomposed: String = name.chars().filter(|c| !is_hfs_ignorable(*c)).nfd().collect();
    let mut folded = decomposed.to_uppercase().to_lowercase();
    // Some letters fold in two steps (`ẞ` → `ß` → `ss`): again until nothing changes, so that
    // folding a folded name changes nothing (bounded: the mappings settle after two rounds).
    for _ in 0..4 {
        let again = folded.to_uppercase().to_lowercase();
        if again == folded {
            break;
        }
        folded = again;
    }
    folded.nfc().collect()
}

/// Windows device names: `CON`, `aux.txt`, `com1.tar.gz`, `LPT9 .md`… (any case, any extension).
pub fn is_windows_device(component: &str) -> bool {
    let base = component.split('.').next().unwrap_or("").trim_end_matches(' ');
    let upper = base.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let Some(n) = upper.strip_prefix("COM").or_else(|| upper.strip_prefix("LPT")) else {
                return false;
            };
            matches!(n, "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³")
        }
    }
}

/// After a special name's letters: only dots and spaces (NTFS drops them), up to the end or a
/// `:` stream suffix.
fn ntfs_tail(rest: &[u8]) -> bool {
    for &c in rest {
        if c == b':' {
            return true;
        }
        if c != b'.' && c != b' ' {
            return false;
        }
    }
    true
}

/// NTFS spellings of `.git`: `.git`, `.GIT. `, `git~1`, `.git::$INDEX_ALLOCATION`.
fn is_ntfs_dotgit(name: &str) -> bool {
    let b = name.as_bytes();
    if b.len() >= 4 && b[0] == b'.' && b[1..4].eq_ignore_ascii_case(b"git") {
        return ntfs_tail(&b[4..]);
    }
    if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"git~1") {
        return ntfs_tail(&b[5..]);
    }
    false
}

/// NTFS spellings of `.<long>` (`.gitmodules`…): the name itself with trailing dots/spaces or
/// a stream, its 8.3 short name (`gitmod~1`…`~4`) and the hashed short name (`gi7eba~N`).
fn is_ntfs_special(name: &str, long: &str, short_hash: &str) -> bool {
    let b = name.as_bytes();
    let long = long.as_bytes();
    if b.len() > long.len() && b[0] == b'.' && b[1..=long.len()].eq_ignore_ascii_case(long) {
        return ntfs_tail(&b[1 + long.len()..]);
    }
    if b.len() >= 8 && b[..6].eq_ignore_ascii_case(&long[..6]) && b[6] == b'~' && (b'1'..=b'4').contains(&b[7]) {
        return ntfs_tail(&b[8..]);
    }
    // The hashed form: up to six characters of the hash, `~`, then digits, eight bytes in all.
    let hash = short_hash.as_bytes();
    let mut saw_tilde = false;
    let mut i = 0;
    while i < 8 {
        let Some(&c) = b.get(i) else { return false };
        if saw_tilde {
            if !c.is_ascii_digit() {
                return false;
            }
        } else if c == b'~' {
            i += 1;
            match b.get(i) {
                Some(d) if (b'1'..=b'9').contains(d) => saw_tilde = true,
                _ => return false,
            }
        } else if i >= 6 || c & 0x80 != 0 || c.to_ascii_lowercase() != hash[i] {
            return false;
        }
        i += 1;
    }
    ntfs_tail(&b[8.min(b.len())..])
}

/// `.git` as NTFS or HFS+ reads it.
pub fn is_dotgit(component: &str) -> bool {
    is_ntfs_dotgit(component) || fold(component) == ".git"
}

/// `.gitmodules` as NTFS or HFS+ reads it.
pub fn is_gitmodules(component: &str) -> bool {
    is_ntfs_special(component, "gitmodules", "gi7eba") || fold(component) == ".gitmodules"
}

/// `.gitattributes` as NTFS or HFS+ reads it.
pub fn is_gitattributes(component: &str) -> bool {
    is_ntfs_special(component, "gitattributes", "gi7d29") || fold(component) == ".gitattributes"
}

/// One component of a path (already split on `/`, never empty, `.` or `..`).
fn check_component(path: &str, component: &str) -> Result<(), NameError> {
    let owned = || (path.to_string(), component.to_string());
    if is_dotgit(component) {
        let (path, component) = owned();
        return Err(NameError::DotGit { path, component });
    }
    if component.contains(':') {
        return Err(NameError::Colon { path: path.to_string() });
    }
    if component.ends_with(['.', ' ']) {
        let (path, component) = owned();
        return Err(NameError::TrailingDotOrSpace { path, component });
    }
    if is_windows_device(component) {
        let (path, component) = owned();
        return Err(NameError::WindowsDevice { path, component });
    }
    Ok(())
}

/// Checks one normalised path (`/`-separated, no empty, `.` or `..` components).
pub fn check_path(path: &str) -> Result<(), NameError> {
    path.split('/').try_for_each(|c| check_component(path, c))
}

/// The tree's folders and files by folded name: node 0 is the root; a child is found by its
/// parent and its folded name, and keeps the spelling it was first seen with. Built in one pass
/// over the components (linear in the size of the paths, however deep they are).
struct Folded<'a> {
    children: HashMap<(usize, String), (usize, &'a str)>,
    /// Node → the symlink's own path and its target.
    links: HashMap<usize, (&'a str, &'a str)>,
}

impl<'a> Folded<'a> {
    /// Adds a path (checking its components and that no other spelling of it is there yet);
    /// answers its node.
    fn insert(&mut self, path: &'a str) -> Result<usize, NameError> {
        check_path(path)?;
        let mut node = 0;
        let mut end = 0;
        for component in path.split('/') {
            let next = self.children.len() + 1;
            let (child, spelling) = *self.children.entry((node, fold(component))).or_insert((next, component));
            if spelling != component {
                return Err(NameError::Collision {
                    path: path.to_string(),
                    other: format!("{}{spelling}", &path[..end]),
                });
            }
            node = child;
            end += component.len() + 1;
        }
        Ok(node)
    }
}

/// The path rules and the collision check for a tree known by its paths: a plugin version
/// assembled from pieces that were checked one by one (two of them may still collide).
pub fn check_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> Result<(), NameError> {
    let mut tree = Folded {
        children: HashMap::new(),
        links: HashMap::new(),
    };
    paths.into_iter().try_for_each(|p| tree.insert(p).map(drop))
}

/// At most this many resolution steps for all the links of a tree together (a tree of 20,000
/// links of a few steps each uses a fraction of it); past it the tree is refused.
const MAX_LINK_STEPS: usize = 4_000_000;

/// Checks a whole tree: every path, collisions between names a filesystem folds together,
/// `.gitmodules` and `.gitattributes` as git checks them, and symbolic links resolved the way a
/// case-insensitive, normalising filesystem would resolve them.
pub fn check_tree(files: &[UploadFile]) -> Result<(), NameError> {
    let mut tree = Folded {
        children: HashMap::new(),
        links: HashMap::new(),
    };
    for f in files {
        let node = tree.insert(&f.path)?;
        if f.mode == FileMode::Symlink {
            tree.links
                .insert(node, (f.path.as_str(), std::str::from_utf8(&f.data).unwrap_or("/")));
        }
        check_git_special(f)?;
    }
    check_symlinks(&tree)
}

/// `.gitmodules` and `.gitattributes` at any depth: regular files that fsck can read.
fn check_git_special(f: &UploadFile) -> Result<(), NameError> {
    let mut components = f.path.split('/').peekable();
    while let Some(c) = components.next() {
        let last = components.peek().is_none();
        for (special, is) in [
            (".gitmodules", is_gitmodules as fn(&str) -> bool),
            (".gitattributes", is_gitattributes),
        ] {
            if !is(c) {
                continue;
            }
            let what = if !last {
                "folder"
            } else if f.mode == FileMode::Symlink && special == ".gitmodules" {
                "symbolic link"
            } else {
                ""
            };
            if !what.is_empty() {
                return Err(NameError::SpecialNotFile {
                    path: f.path.clone(),
                    special,
                    what,
                });
            }
            if f.mode == FileMode::Symlink {
                // fsck only notes a `.gitattributes` symlink; git never follows it.
                continue;
            }
            if special == ".gitmodules" {
                check_gitmodules(&f.data).map_err(|message| NameError::Gitmodules {
                    path: f.path.clone(),
                    message,
                })?;
            } else {
                check_gitattributes(&f.path, &f.data)?;
            }
        }
    }
    Ok(())
}

fn check_gitattributes(path: &str, data: &[u8]) -> Result<(), NameError> {
    let text = data.split(|b| *b == 0).next().unwrap_or_default();
    match text
        .split(|b| *b == b'\n')
        .map(<[u8]>::len)
        .find(|len| *len >= MAX_GITATTRIBUTES_LINE)
    {
        Some(len) => Err(NameError::GitattributesLine {
            path: path.to_string(),
            len,
        }),
        None => Ok(()),
    }
}

/// A `.gitmodules` as `git fsck` checks it: submodule names without `..` components, URLs and
/// paths that no command line reads as an option, URLs that cannot smuggle a newline or climb
/// out of their host, no `update = !command`. Err: what is wrong.
pub fn check_gitmodules(data: &[u8]) -> Result<(), String> {
    if data.contains(&0) {
        return Err("it holds a NUL byte".into());
    }
    let text = std::str::from_utf8(data).map_err(|_| "it is not UTF-8 text".to_string())?;
    for (var, value) in crate::gitconfig::parse(text).map_err(|e| format!("git cannot read it: {e}"))? {
        let Some(rest) = var.strip_prefix("submodule.") else { continue };
        let Some((name, key)) = rest.rsplit_once('.') else { continue };
        if !submodule_name_ok(name) {
            return Err(format!("submodule name `{name}` is empty or has a `..` component"));
        }
        let Some(value) = value else { continue };
        match key {
            "url" if !submodule_url_ok(&value) => {
                return Err(format!("submodule `{name}`: url `{}` is refused", value.escape_debug()));
            }
            "path" if value.starts_with('-') => {
                return Err(format!("submodule `{name}`: path `{value}` starts with `-`"));
            }
            "update" if value.starts_with('!') => {
                return Err(format!("submodule `{name}`: `update = {value}` runs a command"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn submodule_name_ok(name: &str) -> bool {
    !name.is_empty() && !name.split(['/', '\\']).any(|c| c == "..")
}

/// `%XX` decoded (invalid escapes kept as they are), as git's `url_decode`.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = ((b[i + 1] as char).to_digit(16), (b[i + 2] as char).to_digit(16))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// git's `check_submodule_url`, erring on the strict side where git normalises URLs itself.
fn submodule_url_ok(url: &str) -> bool {
    if url.starts_with('-') || url.chars().any(|c| c.is_control()) {
        return false;
    }
    let relative = url.starts_with("./") || url.starts_with("../");
    if relative || url.starts_with("git://") {
        if percent_decode(url).contains(&b'\n') {
            return false;
        }
        // `../` climbing out of the superproject's URL can rewrite its host.
        let mut rest = url;
        let mut ups = 0;
        loop {
            if let Some(r) = rest.strip_prefix("../").or_else(|| rest.strip_prefix("..\\")) {
                ups += 1;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("./").or_else(|| rest.strip_prefix(".\\")) {
                rest = r;
            } else {
                break;
            }
        }
        return !(ups > 0 && rest.starts_with([':', '/', '\\']));
    }
    let curl = ["http::", "https::", "ftp::", "ftps::"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .or_else(|| {
            ["http://", "https://", "ftp://", "ftps://"]
                .iter()
                .any(|p| url.starts_with(p))
                .then_some(url)
        });
    let Some(curl) = curl else { return true };
    // git normalises these URLs and refuses what it cannot: refuse what is not plainly well formed.
    let escapes_ok = curl
        .match_indices('%')
        .all(|(i, _)| curl.get(i + 1..i + 3).is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
    // The authority as written: git refuses escapes and non-ASCII there, and port 0.
    let after_scheme = curl.split_once("://").map_or("", |(_, rest)| rest);
    let authority_end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(authority_end);
    let authority_ok = authority.is_ascii() && !authority.contains('%');
    // Dot segments: git refuses a path that climbs above the host; refuse them all.
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let dots_ok = !path.split('/').any(|seg| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".."
    });
    escapes_ok
        && authority_ok
        && dots_ok
        && !curl.contains(char::is_whitespace)
        && !percent_decode(curl).iter().any(|b| b.is_ascii_control())
        && url::Url::parse(curl).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()) && u.port() != Some(0))
}

/// A symbolic link's target component that some filesystem reads as something else.
fn target_component_problem(c: &str) -> Option<&'static str> {
    if c.is_empty() || c == "." || c == ".." {
        return None;
    }
    let folded = fold(c);
    if folded == "." || folded == ".." || c.trim_end_matches(['.', ' ']).is_empty() {
        return Some("a component of its target is `.` or `..` in disguise on macOS or Windows");
    }
    if is_dotgit(c) {
        return Some("it points into `.git` (Claude Code drops such links, and git refuses the name)");
    }
    if c.contains(':') {
        return Some("its target has a `:` (a drive or a stream on Windows)");
    }
    if c.ends_with(['.', ' ']) {
        return Some("a component of its target ends with a dot or a space, which Windows drops");
    }
    if is_windows_device(c) {
        return Some("its target names a Windows device");
    }
    if looks_like_short_name(c) {
        return Some("a component of its target looks like a Windows 8.3 short name (`NAME~1`), which can stand for another name");
    }
    None
}

/// `PROGRA~1`, `gitmod~2.txt`: a `~` followed by digits at the end of the part before the extension.
fn looks_like_short_name(c: &str) -> bool {
    let base = c.split('.').next().unwrap_or("");
    match base.rfind('~') {
        Some(i) => {
            let digits = &base[i + 1..];
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Every symlink must resolve inside the tree, following the tree's other symlinks on the way
/// (a textual check alone misses chains such as `a/up -> ..` used by `b -> ../a/up/..`), with
/// components compared by [`fold`]: on macOS and Windows `a/L` is also `a/l`.
fn check_symlinks(tree: &Folded) -> Result<(), NameError> {
    let mut links: Vec<(&str, &str)> = tree.links.values().copied().collect();
    links.sort_unstable();
    let mut budget = MAX_LINK_STEPS;
    for (path, target) in links {
        let refuse = |why| NameError::Symlink {
            path: path.to_string(),
            target: target.escape_debug().to_string(),
            why,
        };
        if target.is_empty() {
            return Err(refuse("its target is empty"));
        }
        if target.len() > MAX_LINK_TARGET_BYTES {
            return Err(refuse("its target is longer than 1024 bytes"));
        }
        if target.starts_with('/') || target.contains('\\') || target.chars().any(char::is_control) {
            return Err(refuse("its target is absolute or holds `\\` or control characters"));
        }
        if let Some(why) = target.split('/').find_map(target_component_problem) {
            return Err(refuse(why));
        }
        match resolves_inside(path, tree, &mut budget) {
            Some(true) => {}
            Some(false) => return Err(refuse("it points outside the uploaded folder (or loops)")),
            None => return Err(refuse("the tree's links take too many steps to resolve")),
        }
    }
    Ok(())
}

/// Resolves `link` (a symlink's path) step by step on folded components; false when it leaves
/// the root or loops, None when the budget of steps runs out.
fn resolves_inside(link: &str, tree: &Folded, budget: &mut usize) -> Option<bool> {
    // The components still to walk, front first (borrowed from the link path and the targets).
    let mut pending: Vec<&str> = link.split('/').rev().collect();
    // The folders walked so far: a node of the tree, or None below a name the tree lacks
    // (walked as a folder, as a textual check would).
    let mut resolved: Vec<Option<usize>> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        *budget = budget.checked_sub(1)?;
        match part {
            "" | "." => continue,
            ".." => {
                if resolved.pop().is_none() {
                    return Some(false);
                }
                continue;
            }
            _ => {}
        }
        let parent = match resolved.last() {
            None => Some(0),
            Some(node) => *node,
        };
        let node = parent.and_then(|p| tree.children.get(&(p, fold(part))).map(|(id, _)| *id));
        if let Some((_, target)) = node.and_then(|n| tree.links.get(&n)) {
            hops += 1;
            if hops > 40 || target.starts_with('/') {
                return Some(false);
            }
            pending.extend(target.split('/').rev());
        } else {
            resolved.push(node);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &str) -> UploadFile {
        UploadFile {
            path: path.into(),
            mode: FileMode::Regular,
            data: data.as_bytes().to_vec(),
        }
    }

    fn link(path: &str, target: &str) -> UploadFile {
        UploadFile {
            path: path.into(),
            mode: FileMode::Symlink,
            data: target.as_bytes().to_vec(),
        }
    }

    #[test]
    fn folds_like_macos_and_windows() {
        assert_eq!(fold("SKILL.md"), fold("skill.md"));
        assert_eq!(fold("caf\u{e9}"), fold("cafe\u{301}"), "NFC and NFD");
        assert_eq!(fold(".g\u{200c}it"), ".git", "HFS+ ignorable");
        assert_eq!(fold("STRASSE"), fold("stra\u{df}e"));
        // Capital sharp s folds in two steps; a folded name folds to itself.
        assert_eq!(fold("\u{1e9e}"), "ss");
        assert_eq!(fold(&fold("\u{1e9e}")), fold("\u{1e9e}"));
        assert_ne!(fold("a"), fold("b"));
    }

    #[test]
    fn special_names() {
        for n in [
            ".git",
            ".GIT",
            ".git.",
            ".git ",
            ".git. .",
            "git~1",
            "GIT~1",
            ".git::$INDEX_ALLOCATION",
            ".g\u{200c}it",
            ".gi\u{feff}t",
        ] {
            assert!(is_dotgit(n), "{n:?}");
        }
        for n in [".github", ".gitignore", "git", "git~2", ".gitx"] {
            assert!(!is_dotgit(n), "{n:?}");
        }
        for n in [
            ".gitmodules",
            ".GITMODULES",
            ".gitmodules .",
            "gitmod~1",
            "GITMOD~4",
            "gi7eba~1",
            "gi7eb~12",
            ".git\u{200c}modules",
        ] {
            assert!(is_gitmodules(n), "{n:?}");
        }
        for n in ["gitmodules", "gitmod~5", ".gitmodulesx", "gi7ebb~1"] {
            assert!(!is_gitmodules(n), "{n:?}");
        }
        assert!(is_gitattributes("gitatt~1") && is_gitattributes("gi7d29~3") && is_gitattributes(".GitAttributes"));
        for n in ["CON", "con", "aux.txt", "Com1", "lpt9.tar.gz", "NUL .md", "com\u{b9}", "conin$"] {
            assert!(is_windows_device(n), "{n:?}");
        }
        for n in ["console", "auxiliary.txt", "com10", "lpt", "nul-x", "my.con"] {
            assert!(!is_windows_device(n), "{n:?}");
        }
    }

    #[test]
    fn gitmodules_like_fsck() {
        let ok = "[submodule \"lib\"]\n\tpath = lib\n\turl = https://example.com/lib.git\n[submodule \"rel\"]\n\tpath = rel\n\turl = ../rel.git\n";
        assert_eq!(check_gitmodules(ok.as_bytes()), Ok(()));
        for bad in [
            "[submodule \"a\"]\n\turl = -oProxyCommand=evil\n",
            "[submodule \"../a\"]\n\tpath = a\n",
            "[submodule \"a/../../b\"]\n\tpath = a\n",
            "[submodule \"a\"]\n\tpath = -a\n",
            "[submodule \"a\"]\n\tupdate = !rm -rf ~\n",
            "[submodule \"a\"]\n\turl = ../../:x\n",
            "[submodule \"a\"]\n\turl = https://x/%0a\n",
            "[submodule \"a\"]\n\turl = \"https://x/\\ny\"\n",
            "[submodule.a]\n\turl = -x\n",
            // Found comparing with `git fsck`: what its URL normaliser refuses.
            "[submodule \"a\"]\n\turl = https://h/a/../../x\n",
            "[submodule \"a\"]\n\turl = https://h:0/x\n",
            "[submodule \"a\"]\n\turl = https://%68/x\n",
            "[submodule \"a\"]\n\turl = https://\u{fc}/x\n",
            "[submodule \"a\"\n",
        ] {
            assert!(check_gitmodules(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn trees() {
        let err = |files: Vec<UploadFile>| check_tree(&files).unwrap_err();
        assert!(matches!(
            err(vec![file("skills/x/SKILL.md", ""), file("skills/x/skill.md", "")]),
            NameError::Collision { .. }
        ));
        let e = err(vec![file("hooks/a", ""), file("HOOKS/b", "")]);
        assert_eq!(e.path(), "HOOKS/b");
        assert!(e.to_string().contains("and `hooks` are the same name"), "{e}");
        assert!(matches!(
            err(vec![file("caf\u{e9}.md", ""), file("cafe\u{301}.md", "")]),
            NameError::Collision { .. }
        ));
        assert!(matches!(
            err(vec![link(".gitmodules", "x"), file("x", "")]),
            NameError::SpecialNotFile { .. }
        ));
        assert!(matches!(err(vec![file(".gitmodules/x", "")]), NameError::SpecialNotFile { .. }));
        assert!(matches!(
            err(vec![file("a/.gitattributes", &"x".repeat(2048))]),
            NameError::GitattributesLine { .. }
        ));
        check_tree(&[
            file("a/.gitattributes", &"x".repeat(2047)),
            link(".gitattributes", "a/.gitattributes"),
        ])
        .unwrap();
    }

    #[test]
    fn paths_alone() {
        check_paths(["skills/a/SKILL.md", "agents/a.md", "hooks/hooks.json"]).unwrap();
        let e = check_paths(["skills/a/SKILL.md", "Skills/a/x.md"]).unwrap_err();
        assert!(matches!(e, NameError::Collision { .. }) && e.path() == "Skills/a/x.md", "{e}");
        assert!(matches!(
            check_paths(["agents/con.md"]).unwrap_err(),
            NameError::WindowsDevice { .. }
        ));
    }

    #[test]
    fn deep_trees_and_long_chains() {
        // 1,000 files 500 folders deep, and 1,000 links 300 deep climbing to the root: one pass
        // over the components (folding and joining every prefix, as a first version did, is quadratic in the depth).
        let deep = "a/".repeat(500);
        let mut files: Vec<UploadFile> = (0..1000).map(|i| file(&format!("{deep}{i}"), "")).collect();
        let up = "../".repeat(300);
        files.extend((0..1000).map(|i| link(&format!("{}l{i}", "b/".repeat(300)), &format!("{up}f{i}"))));
        files.extend((0..1000).map(|i| file(&format!("f{i}"), "")));
        check_tree(&files).unwrap();
        // Many links through a chain of 38 long hops (within the 40 hops a link may take): past
        // the budget of steps, refused.
        let mut chain: Vec<UploadFile> = vec![link("c0", "x"), file("x", "")];
        chain.extend((1..38).map(|k| link(&format!("c{k}"), &format!("{}c{}", "./".repeat(500), k - 1))));
        chain.extend((0..2000).map(|i| link(&format!("l{i}"), "c37")));
        let e = check_tree(&chain).unwrap_err();
        assert!(e.to_string().contains("too many steps"), "{e}");
    }

    #[test]
    fn symlinks_on_folding_filesystems() {
        // The example: `l` is `L` on macOS and Windows, so `home` climbs out.
        let escape = vec![
            link("a/b/c/d/L", "../../../.."),
            link("home", "a/b/c/d/l/../../../../.."),
            file("a/b/c/d/f", ""),
        ];
        assert!(matches!(check_tree(&escape).unwrap_err(), NameError::Symlink { .. }));
        // The same with an NFC link and an NFD path to it.
        let nfd = vec![link("d/caf\u{e9}", ".."), link("x/home", "../d/cafe\u{301}/..")];
        assert!(matches!(check_tree(&nfd).unwrap_err(), NameError::Symlink { .. }));
        for target in ["..\u{200c}/x", ".. /x", "a./x", "PROGRA~1/x", ".git/config", "C:x", "nul"] {
            let e = check_tree(&[link("l", target)]).unwrap_err();
            assert!(matches!(e, NameError::Symlink { .. }), "{target}: {e}");
        }
        // Links that stay inside, in any spelling, are fine.
        check_tree(&[link("a/b/c/d/L", "../../../.."), link("home", "a/b/c/d/l/x"), file("a/b/c/d/f", "")]).unwrap();
        check_tree(&[file("dir/f", "x"), link("dir/l", "../dir/f"), link("up", "dir/../dir")]).unwrap();
    }
}
