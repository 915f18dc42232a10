//! Dependencies declared in a new version's `plugin.json`, checked against the tenant's
//! plugins: what Claude Code could not resolve in this marketplace is refused (a mirror is
//! only warned: a plugin Claude Code installs from upstream must mirror), a dependency on
//! another marketplace is a warning, `optionalDependencies` only ever warn.

use skill_pool_core::api::InstallPolicy;
use skill_pool_core::deps::{self, Dependency, Range};

use super::*;

/// What a check found: refusals (for required dependencies of a non-mirror publish) and
/// remarks.
#[derive(Debug, Default)]
pub(super) struct Checked {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

impl Registry {
    /// Checks the `dependencies` and `optionalDependencies` of `manifest` (plugin.json as
    /// written); `Err` when a required dependency cannot be resolved and `mode` is not a mirror.
    pub(super) async fn check_dependencies(
        &self,
        tenant: TenantId,
        slug: &Slug,
        mode: SourcingMode,
        manifest: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Vec<String>> {
        let Some(manifest) = manifest else { return Ok(Vec::new()) };
        let marketplace = self.tenant_slug(tenant).await?;
        let mut warnings = Vec::new();
        for field in deps::FIELDS {
            let optional = field == "optionalDependencies";
            let declared = match deps::parse(field, manifest.get(field)) {
                Ok(d) => d,
                Err(e) if optional || mode == SourcingMode::Mirror => {
                    warnings.push(format!("{e}; Claude Code will not read this plugin.json"));
                    continue;
                }
                Err(e) => {
                    return Err(RegistryError::invalid_manifest(e.to_string()).with_field(field).with_source(e));
                }
            };
            let mut checked = Checked::default();
            for dep in &declared {
                self.check_one(tenant, slug, &marketplace, dep, &mut checked).await?;
            }
            if !checked.problems.is_empty() && !optional && mode != SourcingMode::Mirror {
                return Err(RegistryError::invalid_plugin(checked.problems.join("; ")).with_field(field));
            }
            let kind = if optional { "optional dependency" } else { "dependency" };
            warnings.extend(checked.problems.into_iter().map(|p| format!("{kind} {p}")));
            warnings.extend(checked.warnings);
        }
        Ok(warnings)
    }

    /// The `dependencies` a stored version's `plugin.json` declares (what a `PATCH` keeps).
    pub(super) async fn declared_dependencies(&self, tenant: TenantId, version_id: i64) -> Result<Vec<serde_json::Value>> {
        let files = self.store().plugin_version_files(tenant, version_id).await?;
        let Some(file) = files.iter().find(|f| f.path == layout::MANIFEST_PATH) else {
            return Ok(Vec::new());
        };
        let body = self
            .store()
            .blobs()
            .get(&file.sha256)
            .map_err(RegistryError::io(format!("reading {}", layout::MANIFEST_PATH)))?;
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        Ok(value.get("dependencies").and_then(|d| d.as_array()).cloned().unwrap_or_default())
    }

    async fn check_one(&self, tenant: TenantId, slug: &Slug, marketplace: &str, dep: &Dependency, out: &mut Checked) -> Result<()> {
        let written = &dep.written;
        if let Some(other) = dep.marketplace.as_deref().filter(|m| *m != marketplace) {
            out.warnings.push(format!(
                "dependency {written} is on another marketplace (`{other}`): Claude Code installs it only when this marketplace allows it in `allowCrossMarketplaceDependenciesOn` and the user has added `{other}`"
            ));
            return Ok(());
        }
        if dep.name == slug.as_str() {
            out.problems.push(format!("{written}: a plugin cannot depend on itself"));
            return Ok(());
        }
        let Some(plugin) = self.store().plugin(tenant, &dep.name).await? else {
            out.problems.push(format!(
                "{written}: there is no plugin `{}` in this marketplace: publish it first",
                dep.name
            ));
            return Ok(());
        };
        if plugin.install_policy == InstallPolicy::Hidden {
            out.warnings.push(format!(
                "dependency {written}: `{}` is hidden (not in the catalogue), so Claude Code cannot install it until it is listed again",
                dep.name
            ));
        }
        let Some(text) = &dep.range else { return Ok(()) };
        if dep.string_form {
            out.warnings.push(format!(
                "dependency {written}: Claude Code (2.1.328 measured) ignores the range of a string dependency and installs the served version; write {{\"name\": \"{}\", \"version\": \"{text}\"}} to have it resolved through the `{}--v<version>` tags",
                dep.name, dep.name
            ));
        }
        let Some(range) = Range::parse(text) else {
            out.problems.push(format!("{written}: `{text}` is not a valid version range"));
            return Ok(());
        };
        if plugin.mode == SourcingMode::External {
            out.warnings.push(format!(
                "dependency {written}: `{}` is external, its versions are not known here, so the range is not checked",
                dep.name
            ));
            return Ok(());
        }
        let versions: Vec<String> = self
            .store()
            .plugin_versions(tenant, plugin.id)
            .await?
            .into_iter()
            .filter_map(|v| v.version)
            .collect();
        let satisfied = versions.iter().filter_map(|v| Version::parse(v).ok()).any(|v| range.matches(&v));
        if !satisfied {
            let there = if versions.is_empty() {
                "it has no semver version".to_string()
            } else {
                format!("its versions are {}", versions.join(", "))
            };
            out.problems
                .push(format!("{written}: no version of `{}` satisfies `{text}` ({there})", dep.name));
        }
        Ok(())
    }
}
