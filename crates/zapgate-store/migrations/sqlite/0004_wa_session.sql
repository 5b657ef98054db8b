-- The WhatsApp Web (whatsapp-rust) session of an instance: Signal keys and
-- sessions, app-state sync keys, the paired device and the protocol caches,
-- as one key/value table (see src/wa_session.rs).
--
-- ns names the kind of row (session, identity, prekey, device, ...); scope
-- groups rows that are listed or cleared together (the group of a sender-key
-- device row, the collection of a mutation MAC, the chat of a sent message);
-- key is the address, JID or id, in plain text. value is always sealed by the
-- secret box with the associated data
-- wa_session/<instance_id>/<ns>/<scope length>:<scope>/<key>.
-- n1 and n2 are the few numbers queries need in the clear: a pre-key id (for
-- its maximum), insertion time and expiry deadlines, the uploaded flag.
-- Deleting the instance deletes its session.
CREATE TABLE wa_session (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    ns          TEXT NOT NULL,
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       BLOB NOT NULL,
    n1          INTEGER NULL,
    n2          INTEGER NULL,
    PRIMARY KEY (instance_id, ns, scope, key)
);

CREATE INDEX wa_session_n1_idx ON wa_session (instance_id, ns, n1);
