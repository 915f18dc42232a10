-- Private tenants, the `reader` role and token expiry. Keep in step with
-- ../sqlite/0009_private_tenants.sql.
ALTER TABLE api_tokens DROP CONSTRAINT IF EXISTS api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check CHECK (role IN ('admin', 'member', 'reader'));
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE sessions DROP CONSTRAINT IF EXISTS sessions_role_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_role_check CHECK (role IN ('admin', 'member', 'reader'));

-- `public` (anyone may read the catalogue, clone and browse) or `private` (a credential of
-- the tenant is needed); `git` or `archive` sources in the catalogue.
ALTER TABLE tenants ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private'));
ALTER TABLE tenants ADD COLUMN serve_as TEXT NOT NULL DEFAULT 'git' CHECK (serve_as IN ('git', 'archive'));
