-- Votes on the polls of the message store (chat/poll): one row per voter,
-- the latest vote (options as a JSON array of hex SHA-256 of the option
-- texts; empty once withdrawn). Goes with its poll.
CREATE TABLE poll_votes (
    instance_id TEXT NOT NULL,
    poll_id     TEXT NOT NULL,
    voter       TEXT NOT NULL,
    options     TEXT NOT NULL,
    voted_at    BIGINT NOT NULL,
    PRIMARY KEY (instance_id, poll_id, voter),
    FOREIGN KEY (instance_id, poll_id) REFERENCES messages (instance_id, id) ON DELETE CASCADE
);
