-- A bridge job's media, out of its row: the job's JSON stays small (claims
-- and the dead-letter summary read rows, never the media), and the bytes
-- live exactly as long as the job. A finished (deleted) job takes its blob
-- with it; a dead letter's blob is removed when it is parked.
CREATE TABLE bridge_job_blobs (
    job_id INTEGER PRIMARY KEY REFERENCES bridge_jobs (id) ON DELETE CASCADE,
    data   BLOB NOT NULL
);
