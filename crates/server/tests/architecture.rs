//! The crate map of ARCHITECTURE.md, checked: the "never depends on" column holds for every
//! crate's normal dependencies (dev-dependencies are free: tests may drive anything).

use std::path::Path;

/// `[dependencies]` names of a crate's Cargo.toml.
fn dependencies(krate: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut names = Vec::new();
    let mut in_deps = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once('=') {
            let name = name.trim().trim_end_matches(".workspace").trim();
            if !name.is_empty() && !name.starts_with('#') {
                names.push(name.to_string());
            }
        }
    }
    assert!(!names.is_empty(), "{} lists no dependencies: is the parser wrong?", path.display());
    names
}

#[test]
fn crates_never_depend_on_what_the_code_map_excludes() {
    let rules: &[(&str, &[&str])] = &[
        ("core", &["tokio", "sqlx", "axum", "skill-pool-git", "skill-pool-store", "reqwest"]),
        ("store", &["axum", "skill-pool-git", "skill-pool-registry"]),
        ("git", &["axum", "sqlx", "skill-pool-store"]),
        ("registry", &["axum", "tower", "tower-http", "reqwest"]),
        (
            "client",
            &["sqlx", "axum", "skill-pool-git", "skill-pool-store", "skill-pool-registry"],
        ),
        (
            "cli",
            &[
                "skill-pool-store",
                "skill-pool-git",
                "skill-pool-server",
                "skill-pool-registry",
                "sqlx",
                "axum",
            ],
        ),
    ];
    for (krate, never) in rules {
        let deps = dependencies(krate);
        for dep in *never {
            assert!(
                !deps.iter().any(|d| d == dep),
                "crates/{krate} depends on {dep}, which ARCHITECTURE.md rules out"
            );
        }
    }
    // Only the store names sqlx.
    for krate in ["core", "git", "registry", "server", "client", "cli"] {
        assert!(
            !dependencies(krate).iter().any(|d| d == "sqlx"),
            "crates/{krate} names sqlx; only crates/store may"
        );
    }
}
