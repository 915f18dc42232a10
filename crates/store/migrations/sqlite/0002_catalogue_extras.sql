-- External listings keep the catalogue entry's other fields (strict, skills, tags, lspServers…)
-- verbatim, as a JSON object; a tenant keeps the `renames` map of the catalogues it imported.
ALTER TABLE plugins ADD COLUMN catalogue_extra TEXT;
ALTER TABLE tenants ADD COLUMN catalogue_renames TEXT;
