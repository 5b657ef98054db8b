-- A claim walked every unfinished job in id order and rejected, one probe
-- each, the jobs queued behind an older job of their chat. Under a backlog
-- most of the walk was such jobs, so a claim cost more the longer the queue.
-- `head` marks the jobs a claim may take: set when a job is stored with no
-- unfinished job of its chat before it, and when the job before it ends (see
-- `zapgate-store/src/jobs.rs`). It may be set on a job that is not its chat's
-- oldest (the claim's probe still refuses that one), never missing on the
-- oldest. Rows stored before this migration are all marked, as the claim
-- treated them before.
ALTER TABLE bridge_jobs ADD COLUMN head BOOLEAN NOT NULL DEFAULT TRUE;
-- The claim walks the heads in id order.
CREATE INDEX bridge_jobs_head_idx ON bridge_jobs (id)
    WHERE head AND status IN ('queued', 'running');
-- Replaced by the above.
DROP INDEX bridge_jobs_unfinished_idx;
