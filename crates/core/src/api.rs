//! JSON wire types of the REST API (`<T>/v1/...`), shared by the server and the client.
//! Times are RFC 3339 strings in UTC. Field names are part of the public interface.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The error body every non-2xx JSON answer carries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `version_conflict`.
    pub error: crate::ErrorCode,
    /// Human-readable explanation that says what to do.
    pub message: String,
    /// The request id (also in the `x-request-id` response header).
    pub request_id: String,
    /// The request field or uploaded file the error concerns, when there is one
    /// (`version`, `source`, `homepage`, `agents/review.md`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Which kind of atomic piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PieceKind {
    Skill,
    Agent,
    Command,
}

impl PieceKind {
    pub const ALL: [PieceKind; 3] = [PieceKind::Skill, PieceKind::Agent, PieceKind::Command];

    pub fn as_str(self) -> &'static str {
        match self {
            PieceKind::Skill => "skill",
            PieceKind::Agent => "agent",
            PieceKind::Command => "command",
        }
    }

    /// The URL segment under `/v1/`: `skills`, `agents`, `commands`.
    pub fn plural(self) -> &'static str {
        match self {
            PieceKind::Skill => "skills",
            PieceKind::Agent => "agents",
            PieceKind::Command => "commands",
        }
    }

    pub fn parse(s: &str) -> Option<PieceKind> {
        match s {
            "skill" | "skills" => Some(PieceKind::Skill),
            "agent" | "agents" => Some(PieceKind::Agent),
            "command" | "commands" => Some(PieceKind::Command),
            _ => None,
        }
    }
}

impl std::fmt::Display for PieceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored file of a piece or plugin version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileInfo {
    /// Path relative to the piece or plugin root, `/`-separated.
    pub path: String,
    /// `file`, `executable` or `symlink`.
    pub mode: String,
    pub size: u64,
    /// Hex sha256 of the body (the storage address).
    pub sha256: String,
}

/// A version of a skill, agent or command.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PieceVersion {
    pub kind: PieceKind,
    pub slug: String,
    pub version: String,
    pub description: Option<String>,
    /// The frontmatter of the main file (`SKILL.md` or the markdown file), as JSON.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// sha256 over the version's file list; equal digests mean equal content.
    pub digest: String,
    pub archived: bool,
    pub created_at: String,
    pub created_by: String,
    pub files: Vec<FileInfo>,
}

/// A piece with its latest (non-archived) version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Piece {
    pub kind: PieceKind,
    pub slug: String,
    /// The highest non-archived version, if any.
    pub latest: Option<PieceVersion>,
    pub version_count: u64,
    pub created_at: String,
}

/// The answer to a piece publish.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishPieceResult {
    /// False when identical content already existed and was reused.
    pub created: bool,
    pub version: PieceVersion,
    /// Non-fatal remarks, e.g. frontmatter that is not strict YAML and was read leniently.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A piece pinned inside a plugin version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PluginContent {
    pub kind: PieceKind,
    pub slug: String,
    pub version: String,
    /// Where the piece sits in the plugin tree, e.g. `skills/greet` or `agents/reviewer.md`.
    pub path: String,
    /// True when this pinned version has been archived (it still ships in this plugin).
    pub archived: bool,
}

/// How a plugin is sourced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourcingMode {
    Internal,
    External,
    Mirror,
}

impl SourcingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SourcingMode::Internal => "internal",
            SourcingMode::External => "external",
            SourcingMode::Mirror => "mirror",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "internal" => Some(Self::Internal),
            "external" => Some(Self::External),
            "mirror" => Some(Self::Mirror),
            _ => None,
        }
    }
}

/// How an organisation wants a plugin installed. `required` and `auto_install` go into the
/// managed settings' `enabledPlugins`; `hidden` keeps a plugin out of the catalogue (while it is
/// under review, say) without deleting it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstallPolicy {
    /// Every developer must have it.
    Required,
    /// Installed for every developer, who may remove it.
    AutoInstall,
    /// Listed; developers install it if they want (the default).
    #[default]
    Available,
    /// Not listed in the catalogue.
    Hidden,
}

impl InstallPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallPolicy::Required => "required",
            InstallPolicy::AutoInstall => "auto_install",
            InstallPolicy::Available => "available",
            InstallPolicy::Hidden => "hidden",
        }
    }

    /// Also accepts `auto-install` (as typed on a command line).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "required" => Some(Self::Required),
            "auto_install" | "auto-install" => Some(Self::AutoInstall),
            "available" => Some(Self::Available),
            "hidden" => Some(Self::Hidden),
            _ => None,
        }
    }
}

/// `POST /v1/plugins/{slug}/policy`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetInstallPolicy {
    pub install_policy: InstallPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Author {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Catalogue metadata of a plugin: what the marketplace entry shows, under the names Claude
/// Code uses in `plugin.json` and `marketplace.json` (the catalogue entry embeds this type).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PluginMetadata {
    /// `displayName` (`display_name` is accepted on input, as earlier versions wrote it).
    #[serde(rename = "displayName", alias = "display_name", default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// One published version of an internal plugin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PluginVersion {
    /// 1, 2, 3… in publish order.
    pub seq: u64,
    /// The explicit semver, if the version was published with one.
    pub version: Option<String>,
    /// The version string Claude Code will see (explicit semver, else the commit's first 12 hex).
    pub effective_version: String,
    /// The git commit that serves this version.
    pub commit: String,
    pub digest: String,
    pub created_at: String,
    pub created_by: String,
}

/// A plugin as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Plugin {
    pub slug: String,
    pub mode: SourcingMode,
    #[serde(flatten)]
    pub metadata: PluginMetadata,
    /// The version being served (internal and mirror plugins): the newest, unless an admin
    /// pinned another (`pinned`).
    pub current: Option<PluginVersion>,
    /// True when an admin pinned the served version (`POST /v1/plugins/{slug}/serve`): newer
    /// versions are held back until `{"latest": true}`.
    #[serde(default)]
    pub pinned: bool,
    /// `required`, `auto_install`, `available` (the default) or `hidden` (not in the catalogue).
    #[serde(default)]
    pub install_policy: InstallPolicy,
    /// All versions, newest first (only in the single-plugin view).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<PluginVersion>,
    /// The pieces the current version pins.
    #[serde(default)]
    pub contents: Vec<PluginContent>,
    /// The current version's file tree (only in the single-plugin view).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileInfo>,
    /// Absolute git URL Claude Code clones (internal and mirror plugins).
    pub git_url: Option<String>,
    /// For external plugins: the upstream source exactly as the catalogue lists it.
    #[schema(value_type = Object)]
    pub external_source: Option<serde_json::Value>,
    /// For external plugins: the catalogue entry's other fields (`strict`, `skills`, `tags`…),
    /// emitted verbatim.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub entry: serde_json::Map<String, serde_json::Value>,
    /// For mirrored plugins: the upstream and how the last pull went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorStatus>,
    /// How often it was installed (only in the single-plugin view of internal and mirrored plugins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installs: Option<InstallStats>,
    pub created_at: String,
    pub updated_at: String,
}

/// Installs of one plugin: git fetches that downloaded a pack of one of its versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstallStats {
    pub total: u64,
    /// The last 30 UTC days, today included.
    pub last_30_days: u64,
    /// Per version (its effective version), newest first; versions never installed are left out.
    pub versions: Vec<VersionInstalls>,
    /// Per UTC day (`YYYY-MM-DD`) of the last 30, oldest first; days without installs are left out.
    pub days: Vec<DayCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionInstalls {
    pub version: String,
    pub seq: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DayCount {
    /// A UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub count: u64,
}

/// `GET /v1/installs`: the tenant's installs per plugin and its distinct catalogue clients per day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstallSummary {
    /// The window of `recent` and `catalogue_clients`, in UTC days (today included).
    pub days: u32,
    /// Its first day.
    pub since: String,
    /// Plugins installed at least once, by slug.
    pub plugins: Vec<PluginInstalls>,
    /// Distinct clients that fetched the catalogue, per UTC day of the window (oldest first).
    pub catalogue_clients: Vec<DayCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PluginInstalls {
    pub slug: String,
    pub total: u64,
    /// Installs within the window.
    pub recent: u64,
}

/// Where a mirror pulls from and how its last pull went.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MirrorStatus {
    pub url: String,
    pub path: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub refresh_interval_secs: i64,
    /// The upstream commit the served version was made from.
    pub upstream_commit: Option<String>,
    pub last_pulled_at: Option<String>,
    pub last_success_at: Option<String>,
    /// `null` when the last pull succeeded.
    pub last_error: Option<MirrorError>,
    /// Why the mirror is frozen, while it is.
    pub held: Option<String>,
    pub next_pull_at: String,
}

/// Why a pull failed: `network`, `auth`, `not_found`, `timeout`, `signal`, `invalid_plugin`,
/// `too_large`, `disk` or `force_push`, and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MirrorError {
    pub class: String,
    pub message: String,
}

/// `POST /v1/plugins/import`: mirror an upstream git repository (or a folder of it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportMirror {
    /// `https://…` or `http://…`.
    pub url: String,
    /// The plugin's folder in the repository (default: its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Branch or tag (default: the upstream's default branch).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// `24h` (default), `30m`, `90s`…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// The plugin's name here (default: the folder or repository name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
}

/// A background job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: i64,
    /// e.g. `mirror.pull`.
    pub kind: String,
    /// What it works on, e.g. the plugin's name.
    pub target: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// The answer to an import or a refresh: the job that does the work.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobAccepted {
    pub plugin: String,
    pub job: Job,
}

/// The answer to a purge: the version that is gone, the later versions whose commit ids
/// changed (their history was rewritten without it), and how many file bodies were deleted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PurgeResult {
    /// The plugin as it is served now.
    pub plugin: Plugin,
    pub purged: PurgedVersion,
    /// Later versions, oldest first, with their old and new commit ids.
    pub rewritten: Vec<RewrittenVersion>,
    /// File bodies that nothing references any more, deleted from the blob store.
    pub blobs_deleted: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PurgedVersion {
    pub seq: u64,
    pub version: Option<String>,
    /// The commit that no ref serves any more.
    pub commit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RewrittenVersion {
    pub seq: u64,
    pub version: Option<String>,
    pub old_commit: String,
    pub new_commit: String,
}

/// A reference to a registered piece in a compose request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContentRef {
    pub kind: PieceKind,
    pub slug: String,
    /// Exact version; the latest non-archived version when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Inline configuration files of a composed plugin. Each is validated against
/// the shape Claude Code accepts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PluginBlobs {
    /// Written to `hooks/hooks.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub hooks: Option<serde_json::Value>,
    /// Written to `.mcp.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub mcp_servers: Option<serde_json::Value>,
    /// Written to `.lsp.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub lsp_servers: Option<serde_json::Value>,
    /// Written to `monitors/monitors.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub monitors: Option<serde_json::Value>,
}

/// `POST /v1/plugins`: compose an internal plugin, or list an external one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatePlugin {
    pub slug: String,
    /// `internal` (default) or `external`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SourcingMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(flatten)]
    pub metadata: PluginMetadata,
    #[serde(default)]
    pub contents: Vec<ContentRef>,
    #[serde(default)]
    pub blobs: PluginBlobs,
    /// Plugins this one needs, written into the generated `plugin.json` as Claude Code reads
    /// them: `"name"`, `"name@^1.0.0"`, `"name@marketplace"` or `{"name", "marketplace"?, "version"?}`.
    /// A plugin with nothing but dependencies (a role bundle) is allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub dependencies: Vec<serde_json::Value>,
    /// External plugins: the catalogue `source` object, e.g. `{"source":"github","repo":"o/r"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub source: Option<serde_json::Value>,
    /// External plugins: any other catalogue entry field (`strict`, `skills`, `tags`,
    /// `lspServers`, `version`…), kept and emitted verbatim. Refused for internal plugins.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub entry: serde_json::Map<String, serde_json::Value>,
}

/// `POST /v1/plugins/import-catalogue`: an upstream `marketplace.json`, every entry listed as an
/// external plugin.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportCatalogue {
    /// The upstream `marketplace.json`, as a JSON object.
    #[schema(value_type = Object)]
    pub catalogue: serde_json::Value,
    /// The upstream repository: relative sources (`./plugins/x`, or a bare name under
    /// `metadata.pluginRoot`) become `git-subdir` sources of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    /// With `repo_url`: the branch or tag the relative sources are read at.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// With `repo_url`: the commit the relative sources are pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

/// What happened to one upstream entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    Imported,
    Updated,
    Unchanged,
    Skipped,
}

impl ImportOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportOutcome::Imported => "imported",
            ImportOutcome::Updated => "updated",
            ImportOutcome::Unchanged => "unchanged",
            ImportOutcome::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportedEntry {
    /// The entry's `name` (empty when it had none).
    pub name: String,
    pub outcome: ImportOutcome,
    /// Why it was skipped (or a remark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to a catalogue import: one line per upstream entry, in upstream order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    pub entries: Vec<ImportedEntry>,
    /// `renames` entries now in the tenant's catalogue.
    pub renames: usize,
    /// Remarks about the catalogue as a whole (renames dropped because their target is not listed…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// False when the import changed nothing (the catalogue bytes and ETag stay the same).
    pub changed: bool,
}

/// `PATCH /v1/plugins/{slug}`: fields left out stay as they are. A change of
/// contents, blobs or version publishes a new plugin version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdatePlugin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<PluginMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<Vec<ContentRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<PluginBlobs>,
    /// Replaces the dependencies of a composed plugin (absent: kept; `[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub dependencies: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub source: Option<serde_json::Value>,
}

/// A piece that a plugin publish registered or reused.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishedPiece {
    pub kind: PieceKind,
    pub slug: String,
    pub version: String,
    /// True when this publish created the version; false when identical content was reused.
    pub created: bool,
    /// Other plugins that still pin an older version of this piece.
    #[serde(default)]
    pub plugins_on_older_versions: Vec<String>,
}

/// The answer to `POST /v1/plugins/publish` (and to create/patch).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishPluginResult {
    /// False when identical content was already served (nothing changed).
    pub created: bool,
    pub plugin: Plugin,
    #[serde(default)]
    pub pieces: Vec<PublishedPiece>,
    /// Non-fatal remarks, e.g. a name Claude Code's validator refuses.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub role: crate::Role,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// When the token stops working (RFC 3339); `null`: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateToken {
    pub name: String,
    pub role: crate::Role,
    /// The token stops working this many days after its creation (1 to 3650); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// Who may read a tenant's public surface (catalogue, git, archives, marketplace pages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone who can reach the server.
    #[default]
    Public,
    /// Only requests with a credential of the tenant (any role, `reader` included).
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

impl std::str::FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Visibility::parse(s).ok_or_else(|| format!("unknown visibility `{s}`: use public or private"))
    }
}

/// How the catalogue's internal and mirrored entries point at their content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServeAs {
    /// `url` sources: Claude Code clones the plugin's git repo from this server.
    #[default]
    Git,
    /// `archive` sources: Claude Code downloads one zip per version over https.
    Archive,
}

impl ServeAs {
    pub fn as_str(self) -> &'static str {
        match self {
            ServeAs::Git => "git",
            ServeAs::Archive => "archive",
        }
    }

    pub fn parse(s: &str) -> Option<ServeAs> {
        match s {
            "git" => Some(ServeAs::Git),
            "archive" => Some(ServeAs::Archive),
            _ => None,
        }
    }
}

impl std::str::FromStr for ServeAs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServeAs::parse(s).ok_or_else(|| format!("unknown serving mode `{s}`: use git or archive"))
    }
}

/// A tenant's settings (`GET /v1/tenant`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantSettings {
    pub slug: String,
    pub display_name: String,
    pub visibility: Visibility,
    pub serve_as: ServeAs,
    /// The tenant root `<T>`.
    pub tenant_url: String,
    /// The URL to give `claude plugin marketplace add`.
    pub marketplace_url: String,
}

/// A change of a tenant's settings (`PATCH /v1/tenant`); absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serve_as: Option<ServeAs>,
}

/// The answer to a token creation: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub token: Token,
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub request_id: Option<String>,
    pub created_at: String,
}

/// `GET /v1/whoami`: the tenant and role a token acts as.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub tenant: String,
    pub tenant_display_name: String,
    pub role: crate::Role,
    pub token_name: String,
    /// The tenant root `<T>` built from the server's public URL.
    pub tenant_url: String,
    /// The URL to give `claude plugin marketplace add`.
    pub marketplace_url: String,
}

/// A page of a list answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What a tenant uses against its limits (`GET /v1/usage`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub plugins: u64,
    pub plugin_versions: u64,
    /// Bytes of the distinct file bodies the tenant's plugin and piece versions reference.
    pub bytes_stored: u64,
    /// Size of the rendered catalogue (`marketplace.json`).
    pub catalogue_bytes: u64,
    pub limits: UsageLimits,
}

/// The limits in effect; `null`: no quota.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageLimits {
    pub max_catalogue_bytes: u64,
    pub max_bytes: Option<u64>,
    pub max_plugins: Option<u64>,
    pub max_versions: Option<u64>,
}

/// `POST /v1/plugins/{slug}/serve`: pin the served version, or follow the newest again.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServePlugin {
    /// The version to serve: its version string as Claude Code sees it (`1.2.0`, or the
    /// commit's first 12 hex for a version published without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Serve the newest version again (and every later one).
    #[serde(default)]
    pub latest: bool,
}
