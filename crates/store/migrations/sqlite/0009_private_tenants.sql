-- Private tenants, the `reader` role and token expiry. Keep in step with
-- ../postgres/0009_private_tenants.sql.
--
-- SQLite cannot change a CHECK constraint in place: `api_tokens` and `sessions` (whose role
-- may now be `reader`) are rebuilt with their rows. The migration runs in a transaction, where
-- foreign keys cannot be switched off, so the order matters: the new `sessions` references the
-- new `api_tokens`, the old tables are dropped child first (nothing references the old
-- `api_tokens` any more, so dropping it cascades nowhere), then both are renamed (SQLite
-- rewrites the reference to the renamed table).

CREATE TABLE api_tokens_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'member', 'reader')),
    token_hash   TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    expires_at   INTEGER
);
INSERT INTO api_tokens_new (id, tenant_id, name, role, token_hash, prefix, created_at, last_used_at, revoked_at)
    SELECT id, tenant_id, name, role, token_hash, prefix, created_at, last_used_at, revoked_at FROM api_tokens;

CREATE TABLE sessions_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    session_hash TEXT    NOT NULL UNIQUE,
    csrf_token   TEXT    NOT NULL,
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    token_id     INTEGER REFERENCES api_tokens_new(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'member', 'reader')),
    address      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
INSERT INTO sessions_new (id, tenant_id, session_hash, csrf_token, user_id, token_id, name, role, address, created_at, expires_at)
    SELECT id, tenant_id, session_hash, csrf_token, user_id, token_id, name, role, address, created_at, expires_at FROM sessions;

DROP TABLE sessions;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- `public` (anyone may read the catalogue, clone and browse) or `private` (a credential of
-- the tenant is needed); `git` or `archive` sources in the catalogue.
ALTER TABLE tenants ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private'));
ALTER TABLE tenants ADD COLUMN serve_as TEXT NOT NULL DEFAULT 'git' CHECK (serve_as IN ('git', 'archive'));
