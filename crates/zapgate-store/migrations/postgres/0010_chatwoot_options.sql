-- The second-wave settings of a Chatwoot integration (ignoreJids, signature
-- format and delimiter, ...) as one JSON object: new options need no new
-- column, and a row saved before they existed reads as the defaults.
ALTER TABLE chatwoot_integrations ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
