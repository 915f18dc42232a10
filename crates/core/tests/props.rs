//! Property tests of the parsers that read untrusted input: the upload unpacker, frontmatter,
//! `plugin.json`, inline blob JSON, the git config reader behind `.gitmodules`, external
//! sources and catalogue entries. They stand in for coverage-guided fuzzing (`cargo fuzz`
//! needs a nightly toolchain for its sanitizers; CI runs stable), run as ordinary tests in
//! `.ci/run` with bounded case counts (a few seconds in all), and replay the inputs kept in
//! `tests/corpus/` and any failure proptest recorded in `tests/props.proptest-regressions`.
//! A failure found here becomes a named regression test below.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use skill_pool_core::archive::{FileMode, UploadFile, UploadLimits, pack_tar_gz, unpack_tar_gz};
use skill_pool_core::{blobs, catalogue, frontmatter, gitconfig, manifest, names};

/// `cases` per property in CI; `PROPTEST_CASES=100000` for a longer hunt on a workstation.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ strategies

/// Names that are fine alone, some of them twins where names fold (`L`/`l`, NFC/NFD).
fn benign_component() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-cA-C]{1,2}",
        1 => prop::sample::select(vec!["L", "l", "caf\u{e9}", "cafe\u{301}", "SKILL.md", "skill.md", "x~1", ".gitignore"])
            .prop_map(str::to_string),
    ]
}

/// Path components chosen to hit every rule: traversal, `.git` spellings, devices, case and
/// Unicode twins, streams, trailing dots; mostly benign, so that many archives are accepted.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => benign_component(),
        1 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just(String::new()),
        3 => prop::sample::select(vec![
            ".git", ".GIT", ".git.", "git~1", ".g\u{200c}it", ".gitmodules", "gitmod~1", ".gitattributes",
            "CON", "aux.txt", "com1", "x.", "x ", "a:b", "C:", "a\\b", "\u{1}", "~1", "PROGRA~1",
        ])
        .prop_map(str::to_string),
    ]
}

fn rel_path() -> impl Strategy<Value = String> {
    (prop::option::weighted(0.03, Just("/")), prop::collection::vec(component(), 1..4))
        .prop_map(|(root, parts)| format!("{}{}", root.unwrap_or(""), parts.join("/")))
}

/// Link targets: mostly walks of `..` and twin names through the tree.
fn link_target() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => prop::collection::vec(
            prop_oneof![3 => Just("..".to_string()), 3 => benign_component(), 1 => Just(".".to_string())],
            1..7,
        )
        .prop_map(|parts| parts.join("/")),
        1 => rel_path(),
    ]
}

#[derive(Debug, Clone)]
enum Kind {
    File(Vec<u8>, bool),
    Link(String),
    Dir,
    HardLink(String),
    Fifo,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        30 => (prop::collection::vec(any::<u8>(), 0..48), any::<bool>()).prop_map(|(b, x)| Kind::File(b, x)),
        20 => link_target().prop_map(Kind::Link),
        3 => Just(Kind::Dir),
        1 => rel_path().prop_map(Kind::HardLink),
        1 => Just(Kind::Fifo),
    ]
}

/// A tar.gz written with raw headers, so hostile names reach the unpacker as they are.
fn raw_tar(entries: &[(String, Kind)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, kind) in entries {
        let mut h = tar::Header::new_gnu();
        let name = path.as_bytes();
        let n = name.len().min(100);
        h.as_gnu_mut().unwrap().name[..n].copy_from_slice(&name[..n]);
        let mut body: &[u8] = &[];
        match kind {
            Kind::File(b, exec) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if *exec { 0o755 } else { 0o644 });
                body = b;
            }
            Kind::Link(t) | Kind::HardLink(t) => {
                h.set_entry_type(if matches!(kind, Kind::Link(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                let t = t.as_bytes();
                let n = t.len().min(100);
                h.as_gnu_mut().unwrap().linkname[..n].copy_from_slice(&t[..n]);
            }
            Kind::Dir => h.set_entry_type(tar::EntryType::Directory),
            Kind::Fifo => h.set_entry_type(tar::EntryType::Fifo),
        }
        h.set_size(body.len() as u64);
        h.set_cksum();
        builder.append(&h, body).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn small_limits() -> UploadLimits {
    UploadLimits {
        max_compressed_bytes: 64 << 10,
        max_unpacked_bytes: 400,
        max_files: 8,
    }
}

/// Arbitrary JSON, a few levels deep, with strings that matter to the checkers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop::sample::select(vec![
            "",
            " ",
            "-x",
            "command",
            "http",
            "stdio",
            "PreToolUse",
            "always",
            "on-skill-invoke:",
            "https://x.dev",
            "javascript:x",
            "x",
            "\u{0}",
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "hooks", "matcher", "type", "command", "prompt", "url", "timeout", "description", "mcpServers", "args", "env",
            "headers", "extensionToLanguage", "transport", "name", "when", "version", "author", "homepage", "repository",
            "keywords", "license", "displayName", "source", "repo", "ref", "sha", "path", "package", "registry", "sha256",
            "PreToolUse", "SessionStart", "OnSave", "email", "modules",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z]{0,6}",
    ]
}

// ------------------------------------------------------------------ the unpacker

/// Writes `files` under `root` with every path and link target folded (so a case-sensitive
/// disk behaves as macOS or Windows would) and checks with the kernel's own resolution that no
/// link leads above `root`.
fn materialised_links_stay_inside(files: &[UploadFile], root: &Path) {
    let fold_path = |p: &str| p.split('/').map(names::fold).collect::<Vec<_>>().join("/");
    for f in files {
        let path = root.join(fold_path(&f.path));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if f.mode == FileMode::Symlink {
            let target = fold_path(std::str::from_utf8(&f.data).unwrap());
            std::os::unix::fs::symlink(target, &path).unwrap();
        } else {
            std::fs::write(&path, &f.data).unwrap();
        }
    }
    let root = root.canonicalize().unwrap();
    for f in files.iter().filter(|f| f.mode == FileMode::Symlink) {
        let path = root.join(fold_path(&f.path));
        if let Ok(real) = path.canonicalize() {
            assert!(real.starts_with(&root), "{} resolves to {} above the root", f.path, real.display());
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn unpack_never_panics_on_bytes(tail in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut data = vec![0x1f, 0x8b];
        data.extend(tail);
        let _ = unpack_tar_gz(&data, &small_limits());
    }

    #[test]
    fn unpack_never_panics_on_gzipped_bytes(body in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        let _ = unpack_tar_gz(&gz.finish().unwrap(), &small_limits());
    }

    /// Whatever the archive holds, an accepted upload is a tree that is safe on every
    /// filesystem, within the limits, whose links stay inside even where names fold.
    #[test]
    fn unpacked_trees_are_safe(entries in prop::collection::vec((rel_path(), kind()), 0..8), case in any::<u64>()) {
        let limits = small_limits();
        let Ok(files) = unpack_tar_gz(&raw_tar(&entries), &limits) else { return Ok(()) };
        prop_assert!(!files.is_empty() && files.len() <= limits.max_files);
        prop_assert!(files.iter().map(|f| f.data.len() as u64).sum::<u64>() <= limits.max_unpacked_bytes);
        let mut folded = HashSet::new();
        for f in &files {
            prop_assert!(!f.path.starts_with('/') && !f.path.contains('\\'), "{}", f.path);
            prop_assert!(f.path.split('/').all(|c| !c.is_empty() && c != "." && c != ".."), "{}", f.path);
            prop_assert!(names::check_path(&f.path).is_ok(), "{}", f.path);
            prop_assert!(folded.insert(names::fold(&f.path)), "two spellings of {}", f.path);
        }
        // The same tree packs and unpacks to itself.
        let again = unpack_tar_gz(&pack_tar_gz(&files).unwrap(), &UploadLimits::from_upload_limit(1 << 20)).unwrap();
        prop_assert_eq!(&again, &files);
        if files.iter().any(|f| f.mode == FileMode::Symlink) {
            let dir = std::env::temp_dir().join(format!("skill-pool-props-{}-{case}", std::process::id()));
            // Deep enough that climbing out lands in folders that exist (so it is seen).
            let root = dir.join("o1/o2/o3/o4/o5/o6/root");
            std::fs::create_dir_all(&root).unwrap();
            materialised_links_stay_inside(&files, &root);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn check_tree_never_panics(files in prop::collection::vec((rel_path(), prop::collection::vec(any::<u8>(), 0..16), 0u8..3), 0..8)) {
        let files: Vec<UploadFile> = files
            .into_iter()
            .map(|(path, data, m)| UploadFile { path, data, mode: [FileMode::Regular, FileMode::Executable, FileMode::Symlink][m as usize] })
            .collect();
        let _ = names::check_tree(&files);
    }

    #[test]
    fn fold_is_idempotent(s in "\\PC{0,12}") {
        let once = names::fold(&s);
        prop_assert_eq!(names::fold(&once), once);
    }
}

// ------------------------------------------------------------------ frontmatter, plugin.json, blobs

fn frontmatter_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "[a-z]{1,6}: .{0,20}",
        "  - .{0,10}",
        ".{0,20}",
        Just("---".to_string()),
        Just("description: Use it when: asked".to_string()),
        Just("name: [unclosed".to_string()),
        Just("\t- tab".to_string()),
    ];
    (any::<bool>(), prop::collection::vec(line, 0..8), any::<bool>(), ".{0,20}").prop_map(|(bom, lines, close, body)| {
        let mut s = String::new();
        if bom {
            s.push('\u{feff}');
        }
        s.push_str("---\n");
        s.push_str(&lines.join("\n"));
        if close {
            s.push_str("\n---\n");
        }
        s.push_str(&body);
        s
    })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn frontmatter_never_panics(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = frontmatter::parse(&data);
        let _ = frontmatter::check_skill(&data);
        let _ = frontmatter::check_agent(&data);
        let _ = frontmatter::check_command(&data);
        let _ = frontmatter::read_in_plugin(&data);
    }

    /// Inside a plugin folder only non-UTF-8 text is refused (Claude Code loads the rest).
    #[test]
    fn frontmatter_in_a_plugin_accepts_any_text(text in prop_oneof![frontmatter_text(), "\\PC{0,200}"]) {
        let fm = frontmatter::read_in_plugin(text.as_bytes());
        prop_assert!(fm.is_ok(), "{:?}: {:?}", text, fm);
        let fm = fm.unwrap();
        prop_assert!(fm.body_offset <= text.len());
    }

    #[test]
    fn plugin_json_never_panics(data in prop::collection::vec(any::<u8>(), 0..256), v in json_value()) {
        let _ = manifest::parse_plugin_json(&data);
        let text = serde_json::to_vec(&v).unwrap();
        if let Ok(m) = manifest::parse_plugin_json(&text) {
            prop_assert!(!m.name.trim().is_empty());
        }
        if let Value::Object(o) = &v {
            let _ = manifest::check_links(o);
        }
    }

    /// A composed plugin's rendered plugin.json reads back with its name and version.
    #[test]
    fn rendered_plugin_json_reads_back(
        name in "[a-z0-9][a-z0-9-]{0,20}",
        version in prop::option::of("[0-9]\\.[0-9]\\.[0-9]"),
        description in prop::option::of("\\PC{0,30}"),
        keywords in prop::collection::vec("\\PC{0,8}", 0..3),
    ) {
        let meta = skill_pool_core::api::PluginMetadata { description, keywords, ..Default::default() };
        prop_assert!(manifest::check_metadata(&meta).is_ok());
        let out = manifest::render_plugin_json(&name, version.as_deref(), &meta, &[]);
        let back = manifest::parse_plugin_json(&out).unwrap();
        prop_assert_eq!(back.name, name);
        prop_assert_eq!(back.version, version);
    }

    /// Inline blobs: any JSON is checked without panicking; what passes renders to files that
    /// are JSON again, and a request body of any bytes deserialises or fails cleanly.
    #[test]
    fn inline_blobs(v in json_value(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = blobs::check_hooks(&v);
        let _ = blobs::check_mcp_servers(&v);
        let _ = blobs::check_lsp_servers(&v);
        let _ = blobs::check_monitors(&v);
        let all = skill_pool_core::api::PluginBlobs {
            hooks: Some(v.clone()),
            mcp_servers: Some(v.clone()),
            lsp_servers: Some(v.clone()),
            monitors: Some(v.clone()),
        };
        if let Ok(files) = blobs::render_blob_files(&all) {
            for f in files {
                prop_assert!(serde_json::from_slice::<Value>(&f.data).is_ok(), "{}", f.path);
            }
        }
        let _ = serde_json::from_slice::<skill_pool_core::api::CreatePlugin>(&body);
        let _ = serde_json::from_value::<skill_pool_core::api::CreatePlugin>(json!({"slug": "x", "blobs": {"hooks": v}}));
    }

    /// Hook documents shaped like real ones, with any value in any place.
    #[test]
    fn hook_shapes(
        event in prop::sample::select(blobs::HOOK_EVENTS.to_vec()),
        matcher in json_value(),
        kind in prop::sample::select(vec!["command", "prompt", "agent", "http", "x"]),
        value in json_value(),
        timeout in json_value(),
    ) {
        let doc = json!({"hooks": {event: [{"matcher": matcher, "hooks": [{"type": kind, "command": value, "prompt": value, "url": value, "timeout": timeout}]}]}});
        if blobs::check_hooks(&doc).is_ok() {
            prop_assert!(doc["hooks"][event][0]["hooks"][0]["type"].is_string());
        }
    }
}

// ------------------------------------------------------------------ .gitmodules, sources, catalogue

/// A config value written the way git would quote it.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn source_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "o/r",
            "-o/r",
            "https://h/r.git",
            "http://169.254.169.254/r",
            "ssh://-oProxyCommand=x/r",
            "git@h:o/r.git",
            "git@-h:x",
            "-u@x:y",
            "https://h/p.zip",
            "main",
            "-b",
            "a..b",
            "plugins/x",
            "../x",
            "@s/p",
            "p",
            "--x",
            "http://[fe80::1]/",
            "https://127.0.0.1/p.zip",
            "file:///etc",
            "git://h/r",
        ])
        .prop_map(str::to_string),
        "\\PC{0,16}",
        "[a-z]{1,5}://[a-z0-9.-]{0,10}(:[0-9]{1,5})?/[a-z]{0,5}",
    ]
}

fn source() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["github", "url", "git-subdir", "npm", "archive", "s3"]),
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "repo", "url", "path", "ref", "sha", "package", "version", "registry", "sha256",
                ]),
                source_string(),
            ),
            0..5,
        ),
    )
        .prop_map(|(kind, fields)| {
            let mut o: Map<String, Value> = fields.into_iter().map(|(k, v)| (k.to_string(), Value::from(v))).collect();
            o.insert("source".into(), kind.into());
            Value::Object(o)
        })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn gitconfig_never_panics(text in "\\PC{0,200}") {
        let _ = gitconfig::parse(&text);
        let _ = names::check_gitmodules(text.as_bytes());
    }

    /// Values written with git's quoting read back exactly.
    #[test]
    fn gitconfig_round_trips(
        sub in "[a-zA-Z0-9 ./_-]{1,10}",
        entries in prop::collection::vec(("[a-z][a-z0-9-]{0,6}", "\\PC{0,16}"), 1..5),
    ) {
        let mut text = format!("[submodule {}]\n", quote(&sub));
        for (k, v) in &entries {
            text.push_str(&format!("\t{k} = {}\n", quote(v)));
        }
        let parsed = gitconfig::parse(&text).unwrap();
        prop_assert_eq!(parsed.len(), entries.len());
        for ((var, value), (k, v)) in parsed.iter().zip(&entries) {
            prop_assert_eq!(var, &format!("submodule.{sub}.{k}"));
            prop_assert_eq!(value.as_deref(), Some(v.as_str()));
        }
    }

    /// Whatever source is accepted carries nothing a command line reads as an option and no
    /// metadata or link-local host.
    #[test]
    fn accepted_sources_are_inert(s in source()) {
        let Ok(v) = catalogue::check_external_source(&s) else { return Ok(()) };
        prop_assert_eq!(&v, &s);
        // The fields the client reads for this kind of source (others are kept and ignored).
        let read: &[&str] = match s["source"].as_str().unwrap() {
            "github" => &["repo", "ref", "sha"],
            "url" => &["url", "ref", "sha"],
            "git-subdir" => &["url", "path", "ref", "sha"],
            "npm" => &["package", "version", "registry"],
            _ => &["url", "sha256"],
        };
        for (k, value) in s.as_object().unwrap() {
            let Some(text) = value.as_str() else { continue };
            if !read.contains(&k.as_str()) { continue }
            prop_assert!(!text.starts_with('-'), "{}: {}", k, text);
            prop_assert!(!text.chars().any(|c| c.is_whitespace() || c.is_control()), "{}: {:?}", k, text);
            if matches!(k.as_str(), "url" | "registry") && let Ok(u) = url::Url::parse(text) && let Some(h) = u.host_str() {
                prop_assert!(!catalogue::is_metadata_host(h), "{}: {}", k, text);
            }
        }
    }

    /// Catalogue entries of any shape: a refusal or an entry that serialises and reads back.
    #[test]
    fn catalogue_entries(v in json_value(), name in "[a-z]{1,8}") {
        let _ = serde_json::from_value::<catalogue::Catalogue>(v.clone());
        let _ = serde_json::from_value::<skill_pool_core::api::ImportCatalogue>(json!({"catalogue": v}));
        let extra = match v { Value::Object(o) => o, _ => Map::new() };
        let entry = catalogue::CatalogueEntry::new(name, catalogue::git_source("https://h/r.git", &"a".repeat(40)), None, Default::default(), extra);
        let c = catalogue::Catalogue {
            name: "t".into(),
            owner: catalogue::Owner { name: "o".into(), email: None, url: None },
            description: None,
            plugins: vec![entry],
            renames: Map::new(),
        };
        prop_assert!(serde_json::from_slice::<Value>(&c.to_json_bytes()).is_ok());
    }
}

// ------------------------------------------------------------------ the corpus

/// Every file under `tests/corpus/<target>/`: `ok-*` must be accepted, `bad-*` refused, any
/// other name only must not panic.
fn corpus(target: &str, check: impl Fn(&[u8]) -> bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let accepted = check(&data);
        if name.starts_with("ok-") {
            assert!(accepted, "{target}/{name} must be accepted");
        } else if name.starts_with("bad-") {
            assert!(!accepted, "{target}/{name} must be refused");
        }
        n += 1;
    }
    assert!(n > 0, "{target}: empty corpus");
}

#[test]
fn corpus_replays() {
    corpus("frontmatter", |d| frontmatter::read_in_plugin(d).is_ok());
    corpus("plugin-json", |d| manifest::parse_plugin_json(d).is_ok());
    corpus("hooks", |d| {
        serde_json::from_slice::<Value>(d).is_ok_and(|v| blobs::check_hooks(&v).is_ok())
    });
    corpus("sources", |d| {
        serde_json::from_slice::<Value>(d).is_ok_and(|v| catalogue::check_external_source(&v).is_ok())
    });
    corpus("gitmodules", |d| names::check_gitmodules(d).is_ok());
    corpus("tar", |d| unpack_tar_gz(d, &UploadLimits::from_upload_limit(1 << 20)).is_ok());
}
