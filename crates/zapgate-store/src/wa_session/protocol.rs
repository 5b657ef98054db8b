//! `ProtocolStore`: sender-key distribution per group device, LID↔PN
//! mappings, base keys, device lists, group metadata, trusted-contact
//! tokens, sent messages kept for retries and the pending inbound buffer.

use whatsapp_rust::wacore::{
    store::{
        error::{Result, StoreError},
        traits::{
            DeviceListRecord, LidPnMappingEntry, PendingInboundKey, PendingInboundRow,
            ProtocolStore, TcTokenEntry,
        },
    },
    time::now_secs,
};

use super::{Ns, Put, WaSessionStore, from_json, pair_key, to_json};

#[whatsapp_rust::async_trait]
impl ProtocolStore for WaSessionStore {
    // --- Sender-key devices: scope = group JID, key = device JID ---

    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        Ok(self
            .list(Ns::SenderKeyDevice, Some(group_jid))
            .await?
            .into_iter()
            .map(|got| (got.key, got.value == [1]))
            .collect())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let rows = entries
            .iter()
            .map(|(device, has_key)| {
                let flag: &[u8] = if *has_key { &[1] } else { &[0] };
                Put::new(Ns::SenderKeyDevice, group_jid, device, flag)
            })
            .collect();
        self.put_all(rows).await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.delete_scope(Ns::SenderKeyDevice, Some(group_jid))
            .await?;
        Ok(())
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        if device_jids.is_empty() {
            return Ok(());
        }
        self.delete_keys_any_scope(Ns::SenderKeyDevice, device_jids)
            .await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.delete_scope(Ns::SenderKeyDevice, None).await?;
        Ok(())
    }

    // --- LID↔PN: the mapping under its LID, plus a phone → LID index ---

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.get(Ns::LidMapping, "", lid)
            .await?
            .map(|bytes| from_json(&bytes))
            .transpose()
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        let Some(lid) = self.get(Ns::PnToLid, "", phone).await? else {
            return Ok(None);
        };
        let lid = String::from_utf8(lid).map_err(|e| StoreError::Serialization(Box::new(e)))?;
        self.get_lid_mapping(&lid).await
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        let _guard = self.rmw_lock().await;
        for entry in entries {
            let previous = self.get_lid_mapping(&entry.lid).await?;
            let value = to_json(entry)?;
            let rows = vec![
                Put::new(Ns::PnToLid, "", &entry.phone_number, entry.lid.as_bytes()),
                Put::new(Ns::LidMapping, "", &entry.lid, &value),
            ];
            // The LID moved to another phone: the old phone no longer names it.
            let stale = previous
                .filter(|old| old.phone_number != entry.phone_number)
                .map(|old| old.phone_number);
            if let Some(old_phone) = &stale {
                // Only when the old phone still points at this LID.
                let points_here = self
                    .get(Ns::PnToLid, "", old_phone)
                    .await?
                    .is_some_and(|lid| lid == entry.lid.as_bytes());
                if points_here {
                    self.delete(Ns::PnToLid, "", old_phone).await?;
                }
            }
            self.put_all(rows).await?;
        }
        Ok(())
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.list(Ns::LidMapping, None)
            .await?
            .iter()
            .map(|got| from_json(&got.value))
            .collect()
    }

    // --- Base keys: scope = address, key = message id ---

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.put(Put::new(Ns::BaseKey, address, message_id, base_key))
            .await
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        Ok(self
            .get(Ns::BaseKey, address, message_id)
            .await?
            .is_some_and(|stored| stored == current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.delete(Ns::BaseKey, address, message_id).await
    }

    // --- Device lists, by user ---

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let values = records.iter().map(to_json).collect::<Result<Vec<_>>>()?;
        let rows = records
            .iter()
            .zip(&values)
            .map(|(record, value)| Put::new(Ns::DeviceList, "", &record.user, value))
            .collect();
        self.put_all(rows).await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.get(Ns::DeviceList, "", user)
            .await?
            .map(|bytes| from_json(&bytes))
            .transpose()
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.delete(Ns::DeviceList, "", user).await
    }

    // --- Group metadata, by group JID ---

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get(Ns::GroupMetadata, "", group_jid).await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.put(Put::new(Ns::GroupMetadata, "", group_jid, blob))
            .await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.delete(Ns::GroupMetadata, "", group_jid).await
    }

    // --- Trusted-contact tokens, by JID. n1 = the received token's time
    //     (NULL when there is no token), n2 = the sender timestamp. ---

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.get(Ns::TcToken, "", jid)
            .await?
            .map(|bytes| from_json(&bytes))
            .transpose()
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        let _guard = self.rmw_lock().await;
        self.write_tc_token(jid, entry).await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        let _guard = self.rmw_lock().await;
        self.delete(Ns::TcToken, "", jid).await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        Ok(self
            .keys_with_prefix(Ns::TcToken, "")
            .await?
            .into_iter()
            .collect())
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        let _guard = self.rmw_lock().await;
        self.delete_where(
            Ns::TcToken,
            "(n1 IS NULL OR n1 < $3) AND (n2 IS NULL OR n2 < $4)",
            &[token_cutoff, sender_cutoff],
        )
        .await
    }

    async fn touch_tc_token_sender_timestamp(
        &self,
        jid: &str,
        sender_timestamp: i64,
    ) -> Result<()> {
        let _guard = self.rmw_lock().await;
        let entry = match self.get_tc_token(jid).await? {
            Some(existing) => TcTokenEntry {
                sender_timestamp: Some(
                    existing
                        .sender_timestamp
                        .map_or(sender_timestamp, |ts| ts.max(sender_timestamp)),
                ),
                ..existing
            },
            None => TcTokenEntry {
                token: Vec::new(),
                token_timestamp: sender_timestamp,
                sender_timestamp: Some(sender_timestamp),
            },
        };
        self.write_tc_token(jid, &entry).await
    }

    async fn store_received_tc_token(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        let _guard = self.rmw_lock().await;
        let existing = self.get_tc_token(jid).await?;
        // Newer wins; a byte-less placeholder never blocks a real token.
        if let Some(existing) = &existing
            && !existing.token.is_empty()
            && token_timestamp < existing.token_timestamp
        {
            return Ok(());
        }
        let entry = TcTokenEntry {
            token: token.to_vec(),
            token_timestamp,
            sender_timestamp: existing.and_then(|e| e.sender_timestamp),
        };
        self.write_tc_token(jid, &entry).await
    }

    // --- Sent messages: scope = chat, key = message id, n1 = stored at ---

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        self.put(
            Put::new(Ns::SentMessage, chat_jid, message_id, payload).nums(Some(now_secs()), None),
        )
        .await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        self.take(Ns::SentMessage, chat_jid, message_id).await
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_where(Ns::SentMessage, "n1 < $3", &[cutoff_timestamp])
            .await
    }

    // --- Pending inbound: scope = chat, key = (sender, id), n1 = stored at ---

    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        self.store_pending_inbound_batch(&[PendingInboundRow {
            chat,
            sender,
            id,
            message,
        }])
        .await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        self.get(Ns::PendingInbound, chat, &pair_key(sender, id))
            .await
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete(Ns::PendingInbound, chat, &pair_key(sender, id))
            .await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_where(Ns::PendingInbound, "n1 < $3", &[cutoff_timestamp])
            .await
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        let now = now_secs();
        let keys: Vec<String> = rows.iter().map(|r| pair_key(r.sender, r.id)).collect();
        let puts = rows
            .iter()
            .zip(&keys)
            .map(|(row, key)| {
                Put::new(Ns::PendingInbound, row.chat, key, row.message).nums(Some(now), None)
            })
            .collect();
        self.put_all(puts).await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        let encoded: Vec<String> = keys.iter().map(|k| pair_key(k.sender, k.id)).collect();
        let rows = keys
            .iter()
            .zip(&encoded)
            .map(|(k, key)| (k.chat, key.as_str()))
            .collect();
        self.delete_all(Ns::PendingInbound, rows).await
    }
}

impl WaSessionStore {
    /// Writes a trusted-contact token; the caller holds the RMW lock.
    async fn write_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        let value = to_json(entry)?;
        let token_time = (!entry.token.is_empty()).then_some(entry.token_timestamp);
        self.put(Put::new(Ns::TcToken, "", jid, &value).nums(token_time, entry.sender_timestamp))
            .await
    }
}
