-- The bridge's hot queries read only the rows they are about, so their
-- indexes hold only those rows: dead letters neither slow them down nor cost
-- index upkeep, and a claim stops after the few rows it needs instead of
-- reading the whole queue.
--
-- The claim walks unfinished jobs in id order.
CREATE INDEX bridge_jobs_unfinished_idx ON bridge_jobs (id)
    WHERE status IN ('queued', 'running');
-- Its "no older unfinished job in this chat" check.
CREATE INDEX bridge_jobs_unfinished_chat_idx ON bridge_jobs (integration_id, chat_key, id)
    WHERE status IN ('queued', 'running');
-- Dead letters of an integration, counted on every integration info.
CREATE INDEX bridge_jobs_dead_idx ON bridge_jobs (integration_id, id)
    WHERE status = 'dead';
-- Replaced by the above; taking an integration's jobs (a rare re-activation
-- or deactivation) reads the remaining queue.
DROP INDEX bridge_jobs_due_idx;
DROP INDEX bridge_jobs_chat_idx;
