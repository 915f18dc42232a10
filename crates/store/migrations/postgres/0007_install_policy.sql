-- How an organisation wants the plugin installed: required, auto_install, available, hidden.
ALTER TABLE plugins ADD COLUMN install_policy TEXT NOT NULL DEFAULT 'available';
