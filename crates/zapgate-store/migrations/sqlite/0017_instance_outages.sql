-- The current outage of a paired instance (botOfflineMinutes): when it lost
-- its connection (kept through reconnection attempts and restarts, cleared
-- once connected or logged out again), and the outage start the bot contact
-- was last told about, so it is told once per outage whichever process
-- looks and however often it restarts. Unix ms.
ALTER TABLE instances ADD COLUMN offline_since INTEGER NULL;
ALTER TABLE instances ADD COLUMN offline_noted INTEGER NULL;
