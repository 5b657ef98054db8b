//! `AppSyncStore`: app-state sync keys (and which was set last), collection
//! versions and mutation MACs (scoped by collection).

use whatsapp_rust::wacore::{
    appstate::{hash::HashState, processor::AppStateMutationMAC},
    store::{
        error::Result,
        traits::{AppStateSyncKey, AppSyncStore},
    },
};

use super::{Ns, Put, WaSessionStore, from_json, hex_key, to_json};

#[whatsapp_rust::async_trait]
impl AppSyncStore for WaSessionStore {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        self.get(Ns::SyncKey, "", &hex_key(key_id))
            .await?
            .map(|bytes| from_json(&bytes))
            .transpose()
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        let value = to_json(&key)?;
        let hex = hex_key(key_id);
        self.put_all(vec![
            Put::new(Ns::SyncKey, "", &hex, &value),
            Put::new(Ns::LatestSyncKey, "", "", key_id),
        ])
        .await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        match self.get(Ns::Version, "", name).await? {
            Some(bytes) => from_json(&bytes),
            None => Ok(HashState::default()),
        }
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        let value = to_json(&state)?;
        self.put(Put::new(Ns::Version, "", name, &value).nums(Some(to_i64(state.version)), None))
            .await
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        let keys: Vec<String> = mutations.iter().map(|m| hex_key(&m.index_mac)).collect();
        let rows = mutations
            .iter()
            .zip(&keys)
            .map(|(m, key)| {
                Put::new(Ns::MutationMac, name, key, &m.value_mac).nums(Some(to_i64(version)), None)
            })
            .collect();
        self.put_all(rows).await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(Ns::MutationMac, name, &hex_key(index_mac)).await
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let keys: Vec<String> = index_macs.iter().map(|m| hex_key(m)).collect();
        let rows = keys.iter().map(|k| (name, k.as_str())).collect();
        self.delete_all(Ns::MutationMac, rows).await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.delete_scope(Ns::MutationMac, Some(name)).await?;
        Ok(())
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        self.get(Ns::LatestSyncKey, "", "").await
    }
}

fn to_i64(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}
