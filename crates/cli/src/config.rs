//! The saved login: `$XDG_CONFIG_HOME/skill-pool/config.toml` (else `~/.config/…`), readable by
//! its owner only, since it holds a token. Without one, the machine-wide login an administrator
//! deploys (with their MDM) for every user: `/etc/skill-pool/config.toml` (macOS:
//! `/Library/Application Support/skill-pool/config.toml`), or the file `SKILL_POOL_SYSTEM_CONFIG`
//! names — meant for a `reader` token of a private tenant, which can read the catalogue and clone
//! and nothing else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLogin {
    pub url: Option<String>,
    pub token: Option<String>,
}

/// Where the login is saved, if a home or config directory is known.
pub fn config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("skill-pool").join("config.toml"))
}

/// The machine-wide login file.
pub fn system_config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SKILL_POOL_SYSTEM_CONFIG").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/skill-pool/config.toml")
    } else {
        PathBuf::from("/etc/skill-pool/config.toml")
    }
}

/// The login in effect: the user's own, else the machine-wide one (each field on its own: a
/// user may keep the machine's URL and bring a token of their own).
pub fn load_effective() -> anyhow::Result<SavedLogin> {
    load_layered(config_path().as_deref(), &system_config_path())
}

fn load_layered(user: Option<&Path>, system: &Path) -> anyhow::Result<SavedLogin> {
    let user = match user {
        Some(path) => load(path)?,
        None => SavedLogin::default(),
    };
    if user.url.is_some() && user.token.is_some() {
        return Ok(user);
    }
    let system = load(system)?;
    Ok(SavedLogin {
        url: user.url.or(system.url),
        token: user.token.or(system.token),
    })
}

pub fn load(path: &Path) -> anyhow::Result<SavedLogin> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SavedLogin::default()),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// Writes the login with mode 0600 (directory 0700), replacing the file atomically.
pub fn save(path: &Path, login: &SavedLogin) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no parent folder", path.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let tmp = path.with_extension("toml.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    let text = toml::to_string(login)?;
    file.write_all(b"# written by `skill-pool login`; holds an API token: keep it private\n")?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

pub fn remove(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(anyhow::anyhow!("removing {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn saves_privately_and_loads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("cfg/skill-pool/config.toml");
        assert_eq!(load(&path).unwrap(), SavedLogin::default());
        let login = SavedLogin {
            url: Some("http://h/t/a".into()),
            token: Some("sp_x".into()),
        };
        save(&path, &login).unwrap();
        assert_eq!(load(&path).unwrap(), login);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
    }

    #[test]
    fn the_machine_wide_login_fills_what_the_user_has_not_saved() {
        let tmp = tempfile::tempdir().unwrap();
        let system = tmp.path().join("etc/config.toml");
        std::fs::create_dir_all(system.parent().unwrap()).unwrap();
        std::fs::write(&system, "url = \"https://p.example/t/acme\"\ntoken = \"sp_reader\"\n").unwrap();
        let user = tmp.path().join("user/skill-pool/config.toml");
        let got = load_layered(Some(&user), &system).unwrap();
        assert_eq!(got.url.as_deref(), Some("https://p.example/t/acme"));
        assert_eq!(got.token.as_deref(), Some("sp_reader"));
        save(
            &user,
            &SavedLogin {
                url: None,
                token: Some("sp_mine".into()),
            },
        )
        .unwrap();
        let got = load_layered(Some(&user), &system).unwrap();
        assert_eq!(got.url.as_deref(), Some("https://p.example/t/acme"));
        assert_eq!(got.token.as_deref(), Some("sp_mine"));
        // No file at all is an empty login, not an error.
        assert_eq!(load_layered(None, &tmp.path().join("none")).unwrap(), SavedLogin::default());
    }
}
