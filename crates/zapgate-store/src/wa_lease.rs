//! Session leases: in a deployment of several processes on one database,
//! exactly one process runs an instance's WhatsApp Web session. A lease names
//! its owner and an expiry; the owner renews it, and a process that died
//! simply stops renewing, so the next one to ask takes the session over.

use zapgate_core::{Error, Result};

use crate::SqlStore;

impl SqlStore {
    /// Takes the lease of `instance_id` for `owner` until `expires_at` (Unix
    /// ms) when it is free, expired (as of `now`) or already `owner`'s.
    /// Returns whether `owner` holds it now. One statement, so two processes
    /// asking at once cannot both win.
    pub async fn acquire_wa_lease(
        &self,
        instance_id: &str,
        owner: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        let won: Option<String> = sqlx::query_scalar(
            "INSERT INTO wa_session_leases (instance_id, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (instance_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE wa_session_leases.owner = excluded.owner OR wa_session_leases.expires_at < $4 \
             RETURNING owner",
        )
        .bind(instance_id)
        .bind(owner)
        .bind(expires_at)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::internal)?;
        Ok(won.is_some())
    }

    /// Extends every lease `owner` still holds to `expires_at` and returns the
    /// instances they cover; a session missing from the answer was taken over
    /// (its lease expired meanwhile) and must stop.
    pub async fn renew_wa_leases(&self, owner: &str, expires_at: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "UPDATE wa_session_leases SET expires_at = $1 WHERE owner = $2 RETURNING instance_id",
        )
        .bind(expires_at)
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::internal)
    }

    /// Gives the lease up (clean stop or logout), so another process need not
    /// wait for it to expire.
    pub async fn release_wa_lease(&self, instance_id: &str, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM wa_session_leases WHERE instance_id = $1 AND owner = $2")
            .bind(instance_id)
            .bind(owner)
            .execute(&self.pool)
            .await
            .map_err(Error::internal)?;
        Ok(())
    }

    /// Ends the lease whoever holds it (logout through any process): the
    /// holder notices at its next renewal and ends the session there.
    pub async fn end_wa_lease(&self, instance_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM wa_session_leases WHERE instance_id = $1")
            .bind(instance_id)
            .execute(&self.pool)
            .await
            .map_err(Error::internal)?;
        Ok(())
    }

    /// Linked instances whose session should be running but that no live
    /// lease covers: their process died. Ended sessions (`disconnected`,
    /// `loggedout`) are left alone until someone connects them again.
    pub async fn orphaned_wa_sessions(&self, now: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT i.id FROM instances i \
             LEFT JOIN wa_session_leases l ON l.instance_id = i.id \
             WHERE i.number_jid IS NOT NULL AND i.connection_state IN ('connected', 'connecting') \
               AND (l.instance_id IS NULL OR l.expires_at < $1) \
             ORDER BY i.id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::internal)
    }
}
