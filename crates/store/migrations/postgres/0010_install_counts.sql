-- Install counts (docs/installs.md). A git fetch that downloaded a pack, per plugin version
-- and UTC day (`YYYY-MM-DD`).
CREATE TABLE plugin_installs (
    tenant_id  BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    plugin_id  BIGINT NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,
    version_id BIGINT NOT NULL REFERENCES plugin_versions(id) ON DELETE CASCADE,
    day        TEXT    NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (version_id, day)
);
CREATE INDEX plugin_installs_tenant_day ON plugin_installs (tenant_id, day);

-- Distinct catalogue clients per tenant and UTC day: sha256 of the day's salt, the tenant, the
-- client's address and user agent. No address is stored; once the day's salt is deleted a
-- hash can no longer be linked to anyone.
CREATE TABLE catalogue_clients (
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day         TEXT    NOT NULL,
    client_hash TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, day, client_hash)
);

-- One random salt per UTC day, shared by every server on this database; deleted when the day is over.
CREATE TABLE install_salts (
    day  TEXT PRIMARY KEY,
    salt TEXT NOT NULL
);
