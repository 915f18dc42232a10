-- A garbage collection asks which bodies rows still reference (by sha256), holding the blob
-- store's lock that publishes wait for: these make that question an index lookup.
CREATE INDEX piece_files_sha256 ON piece_files (sha256);
CREATE INDEX plugin_version_files_sha256 ON plugin_version_files (sha256);
