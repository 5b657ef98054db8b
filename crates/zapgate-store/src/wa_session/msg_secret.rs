//! `MsgSecretStore`: the secrets of our own messages, scoped by chat, keyed
//! by (sender, message id); `n1` is the expiry deadline (0 = never), `n2`
//! the parent message's time (0 = unknown). Both merge in SQL on conflict.

use whatsapp_rust::wacore::store::{
    error::Result,
    traits::{MsgSecretEntry, MsgSecretStore},
};

use super::{Ns, WaSessionStore, pair_key};

/// On conflict: the secret is replaced, the later deadline wins with 0
/// ("never") beating any, and the later non-zero parent time wins.
const UPSERT: &str = "INSERT INTO wa_session (instance_id, ns, scope, key, value, n1, n2) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (instance_id, ns, scope, key) DO UPDATE SET \
     value = excluded.value, \
     n1 = CASE WHEN wa_session.n1 = 0 OR excluded.n1 = 0 THEN 0 \
               WHEN excluded.n1 > wa_session.n1 THEN excluded.n1 \
               ELSE wa_session.n1 END, \
     n2 = CASE WHEN excluded.n2 > wa_session.n2 THEN excluded.n2 \
               ELSE wa_session.n2 END";

#[whatsapp_rust::async_trait]
impl MsgSecretStore for WaSessionStore {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let count = entries.len();
        let rows: Vec<_> = entries
            .iter()
            .map(|e| {
                let key = pair_key(&e.sender, &e.msg_id);
                let sealed = self.seal_for(Ns::MsgSecret, &e.chat, &key, &e.secret);
                (e.chat.clone(), key, sealed, e.expires_at, e.message_ts)
            })
            .collect();
        self.execute_each(
            UPSERT,
            Ns::MsgSecret,
            rows,
            |query, (chat, key, sealed, expires_at, message_ts)| {
                query
                    .bind(chat.to_string())
                    .bind(key)
                    .bind(sealed)
                    .bind(expires_at)
                    .bind(message_ts)
            },
        )
        .await?;
        Ok(count)
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.get(Ns::MsgSecret, chat, &pair_key(sender, msg_id))
            .await
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        Ok(self
            .get_row(Ns::MsgSecret, chat, &pair_key(sender, msg_id))
            .await?
            .map(|got| (got.value, got.n2.unwrap_or(0))))
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_where(Ns::MsgSecret, "n1 <> 0 AND n1 <= $3", &[cutoff_timestamp])
            .await
    }
}
