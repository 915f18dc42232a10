-- skill-pool schema (SQLite). Times are unix milliseconds. Keep in step with ../postgres/0001_init.sql.
CREATE TABLE tenants (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    slug          TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    catalogue_rev INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    token_hash   TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, id);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    username      TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    created_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, username)
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '{}',
    request_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

CREATE TABLE pieces (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('skill', 'agent', 'command')),
    slug       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, kind, slug)
);

CREATE TABLE piece_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    piece_id    INTEGER NOT NULL REFERENCES pieces(id) ON DELETE CASCADE,
    version     TEXT    NOT NULL,
    description TEXT,
    metadata    TEXT    NOT NULL DEFAULT '{}',
    digest      TEXT    NOT NULL,
    archived_at INTEGER,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    UNIQUE (piece_id, version)
);
CREATE INDEX piece_versions_digest ON piece_versions (piece_id, digest);

CREATE TABLE piece_files (
    version_id INTEGER NOT NULL REFERENCES piece_versions(id) ON DELETE CASCADE,
    path       TEXT    NOT NULL,
    mode       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    git_oid    TEXT    NOT NULL,
    PRIMARY KEY (version_id, path)
);

CREATE TABLE plugins (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    slug            TEXT    NOT NULL,
    mode            TEXT    NOT NULL CHECK (mode IN ('internal', 'external', 'mirror')),
    metadata        TEXT    NOT NULL DEFAULT '{}',
    external_source TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (tenant_id, slug)
);

CREATE TABLE plugin_versions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    plugin_id  INTEGER NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    version    TEXT,
    commit_id  TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    blobs      TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    UNIQUE (plugin_id, seq)
);

CREATE TABLE plugin_version_pieces (
    plugin_version_id INTEGER NOT NULL REFERENCES plugin_versions(id) ON DELETE CASCADE,
    piece_version_id  INTEGER NOT NULL REFERENCES piece_versions(id),
    -- the directory the piece's files sit under: skills/<name>, agents, commands
    mount_path        TEXT    NOT NULL,
    PRIMARY KEY (plugin_version_id, piece_version_id)
);
CREATE INDEX plugin_version_pieces_piece ON plugin_version_pieces (piece_version_id);

CREATE TABLE plugin_version_files (
    plugin_version_id INTEGER NOT NULL REFERENCES plugin_versions(id) ON DELETE CASCADE,
    path              TEXT    NOT NULL,
    mode              TEXT    NOT NULL,
    size              INTEGER NOT NULL,
    sha256            TEXT    NOT NULL,
    git_oid           TEXT    NOT NULL,
    PRIMARY KEY (plugin_version_id, path)
);
