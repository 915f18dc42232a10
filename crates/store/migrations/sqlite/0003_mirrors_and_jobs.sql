-- Mirrored plugins (where each pulls from, and how its last pull went) and background jobs.
-- Keep in step with ../postgres/0003_mirrors_and_jobs.sql.
CREATE TABLE mirrors (
    plugin_id       INTEGER PRIMARY KEY REFERENCES plugins(id) ON DELETE CASCADE,
    tenant_id       INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url             TEXT    NOT NULL,
    path            TEXT,
    git_ref         TEXT,
    refresh_secs    INTEGER NOT NULL,
    upstream_commit TEXT,
    last_pulled_at  INTEGER,
    last_success_at INTEGER,
    last_error      TEXT,
    held            TEXT,
    failures        INTEGER NOT NULL DEFAULT 0,
    next_pull_at    INTEGER NOT NULL
);
CREATE INDEX mirrors_due ON mirrors (next_pull_at);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    error       TEXT,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
