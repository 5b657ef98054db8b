//! The WebSocket hub: every event, once stored, is handed to the live
//! WebSocket clients of its instance. A client that falls behind by more
//! than the channel holds is told it lagged and dropped (it resumes from the
//! log with `?after=`), so a slow reader never grows memory.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::broadcast;
use zapgate_core::event_log::StoredEvent;

/// Events a client may be behind before it is dropped.
const CLIENT_BACKLOG: usize = 1024;

#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<StoredEvent>>>>,
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Live events of the instance from now on.
    pub fn subscribe(&self, instance_id: &str) -> broadcast::Receiver<Arc<StoredEvent>> {
        let mut channels = self.channels.lock().expect("hub lock");
        channels
            .entry(instance_id.to_owned())
            .or_insert_with(|| broadcast::channel(CLIENT_BACKLOG).0)
            .subscribe()
    }

    /// Hands a stored event to the instance's clients, if any.
    pub fn publish(&self, event: StoredEvent) {
        let mut channels = self.channels.lock().expect("hub lock");
        let Some(sender) = channels.get(&event.instance_id) else {
            return;
        };
        let instance_id = event.instance_id.clone();
        if sender.send(Arc::new(event)).is_err() {
            // Nobody listens any more: forget the channel.
            channels.remove(&instance_id);
        }
    }
}
