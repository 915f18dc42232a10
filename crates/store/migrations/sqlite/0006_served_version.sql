-- The version an admin pinned as served (a rollback, or a new version held back); NULL: the
-- newest version is served.
ALTER TABLE plugins ADD COLUMN served_version_id INTEGER REFERENCES plugin_versions(id) ON DELETE SET NULL;
