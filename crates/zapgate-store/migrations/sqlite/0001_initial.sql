-- zapgate schema, SQLite flavour. Timestamps are Unix milliseconds; JSON
-- columns hold serde_json text; *_sealed columns hold secret-box envelopes.

CREATE TABLE accounts (
    id                    TEXT PRIMARY KEY NOT NULL,
    name                  TEXT NOT NULL,
    token_hash            TEXT NOT NULL,
    max_instances         INTEGER NOT NULL,
    rate_limit_per_minute INTEGER NULL,
    created_at            INTEGER NOT NULL,
    CONSTRAINT accounts_token_hash_key UNIQUE (token_hash)
);

CREATE TABLE instances (
    id                           TEXT PRIMARY KEY NOT NULL,
    account_id                   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                         TEXT NOT NULL,
    token_hash                   TEXT NOT NULL,
    token_sealed                 BLOB NOT NULL,
    settings                     TEXT NOT NULL,
    webhook                      TEXT NOT NULL,
    webhook_authorization_sealed BLOB NULL,
    connection_state             TEXT NOT NULL,
    number_jid                   TEXT NULL,
    created_at                   INTEGER NOT NULL,
    CONSTRAINT instances_token_hash_key UNIQUE (token_hash),
    CONSTRAINT instances_account_id_name_key UNIQUE (account_id, name)
);

CREATE INDEX instances_paired_idx ON instances (connection_state);

CREATE TABLE rate_limit_counters (
    bucket       TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

CREATE INDEX rate_limit_counters_window_idx ON rate_limit_counters (window_start);
