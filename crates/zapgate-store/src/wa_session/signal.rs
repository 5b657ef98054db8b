//! `SignalStore`: identities, sessions, pre-keys, signed pre-keys and sender
//! keys, each a kind of row keyed by address or id.

use std::sync::Arc;

use whatsapp_rust::{
    bytes::Bytes,
    wacore::store::{
        error::{Result, StoreError},
        traits::SignalStore,
    },
};

use super::{Ns, Put, WaSessionStore};

#[whatsapp_rust::async_trait]
impl SignalStore for WaSessionStore {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.put(Put::new(Ns::Identity, "", address, &key)).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let rows = identities
            .iter()
            .map(|(address, key)| Put::new(Ns::Identity, "", address, key))
            .collect();
        self.put_all(rows).await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        self.get(Ns::Identity, "", address)
            .await?
            .map(|bytes| {
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    StoreError::Validation(format!("identity key of {} bytes", bytes.len()))
                })
            })
            .transpose()
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.delete(Ns::Identity, "", address).await
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        Ok(self.get(Ns::Session, "", address).await?.map(Bytes::from))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.put(Put::new(Ns::Session, "", address, session)).await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        let rows = sessions
            .iter()
            .map(|(address, session)| Put::new(Ns::Session, "", address, session))
            .collect();
        self.put_all(rows).await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.delete(Ns::Session, "", address).await
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        self.exists(Ns::Session, "", address).await
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // Addresses are `user@server` or `user:device@server`.
        let of_user = |key: &String| {
            key.strip_prefix(user)
                .is_some_and(|rest| rest.starts_with('@') || rest.starts_with(':'))
        };
        for ns in [Ns::Session, Ns::Identity] {
            if self.keys_with_prefix(ns, user).await?.iter().any(of_user) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        let key = id.to_string();
        self.put(prekey(&key, id, record, uploaded)).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let ids: Vec<String> = keys.iter().map(|(id, _)| id.to_string()).collect();
        let rows = keys
            .iter()
            .zip(&ids)
            .map(|((id, record), key)| prekey(key, *id, record, uploaded))
            .collect();
        self.put_all(rows).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self
            .get(Ns::PreKey, "", &id.to_string())
            .await?
            .map(Bytes::from))
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        // An UPDATE: a key consumed meanwhile stays deleted.
        self.execute_each(
            "UPDATE wa_session SET n2 = 1 \
             WHERE instance_id = $1 AND ns = $2 AND scope = '' AND key = $3",
            Ns::PreKey,
            ids.iter().map(u32::to_string).collect(),
            |query, key| query.bind(key),
        )
        .await
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.delete(Ns::PreKey, "", &id.to_string()).await
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let max = self.max_n1(Ns::PreKey).await?.unwrap_or(0);
        u32::try_from(max).map_err(|_| StoreError::Validation(format!("pre-key id {max}")))
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        let key = id.to_string();
        self.put(Put::new(Ns::SignedPreKey, "", &key, record).nums(Some(id.into()), None))
            .await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.get(Ns::SignedPreKey, "", &id.to_string()).await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut all = self
            .list(Ns::SignedPreKey, None)
            .await?
            .into_iter()
            .map(|got| {
                let id = got.key.parse::<u32>().map_err(|_| {
                    StoreError::Validation(format!("signed pre-key id {}", got.key))
                })?;
                Ok((id, got.value))
            })
            .collect::<Result<Vec<_>>>()?;
        all.sort_by_key(|(id, _)| *id);
        Ok(all)
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.delete(Ns::SignedPreKey, "", &id.to_string()).await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put(Put::new(Ns::SenderKey, "", address, record)).await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        let rows = sender_keys
            .iter()
            .map(|(address, record)| Put::new(Ns::SenderKey, "", address, record))
            .collect();
        self.put_all(rows).await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.get(Ns::SenderKey, "", address).await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.delete(Ns::SenderKey, "", address).await
    }
}

/// A pre-key row: `n1` is the id (for the maximum), `n2` the uploaded flag.
fn prekey<'a>(key: &'a str, id: u32, record: &'a [u8], uploaded: bool) -> Put<'a> {
    Put::new(Ns::PreKey, "", key, record).nums(Some(id.into()), Some(uploaded.into()))
}
