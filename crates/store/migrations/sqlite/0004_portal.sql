-- The portal: sign-in sessions, failed sign-ins (for the per-address and per-user limit) and
-- the tenant's branding on its public pages. Keep in step with ../postgres/0004_portal.sql.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- sha256 of the cookie's secret: a database leak gives no usable session
    session_hash TEXT    NOT NULL UNIQUE,
    csrf_token   TEXT    NOT NULL,
    -- exactly one of user_id (password sign-in) and token_id (a pasted API token)
    user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
    token_id     INTEGER REFERENCES api_tokens(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'member')),
    address      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE sign_in_failures (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- `address:<ip>` or `user:<username>`
    subject    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_subject ON sign_in_failures (tenant_id, subject, created_at);

ALTER TABLE tenants ADD COLUMN logo_url TEXT;
ALTER TABLE tenants ADD COLUMN accent_color TEXT;
