//! `DeviceStore`: the paired device (our keys, JIDs, account signature) as
//! one sealed row.

use whatsapp_rust::wacore::store::{Device, error::Result, traits::DeviceStore};

use super::{Ns, Put, WaSessionStore, from_json, to_json};

/// The one device of a session. `create` answers this id: a session holds
/// exactly one device, named by its instance rather than by this number.
const DEVICE_ID: i32 = 1;

#[whatsapp_rust::async_trait]
impl DeviceStore for WaSessionStore {
    async fn save(&self, device: &Device) -> Result<()> {
        let value = to_json(device)?;
        self.put(Put::new(Ns::Device, "", "", &value)).await
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.get(Ns::Device, "", "")
            .await?
            .map(|bytes| from_json(&bytes))
            .transpose()
    }

    async fn exists(&self) -> Result<bool> {
        self.exists(Ns::Device, "", "").await
    }

    /// Stores a fresh device (new keys) unless one exists, like the
    /// reference backend, so `exists` holds afterwards.
    async fn create(&self) -> Result<i32> {
        let _guard = self.rmw_lock().await;
        if !self.exists(Ns::Device, "", "").await? {
            self.save(&Device::new()).await?;
        }
        Ok(DEVICE_ID)
    }

    async fn resource_report(&self) -> whatsapp_rust::wacore::stats::StorageResourceReport {
        // The data lives in the database, not in this process.
        whatsapp_rust::wacore::stats::StorageResourceReport {
            memory_bytes: Some(0),
            ..Default::default()
        }
    }
}
