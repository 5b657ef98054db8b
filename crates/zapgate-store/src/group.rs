//! Group commit for the bridge's hot writes (stored jobs, finished jobs):
//! a write that arrives while a batch is being stored waits for it, and the
//! next statement stores every write that gathered meanwhile. Under load one
//! round trip, one commit and one pass over the touched pages serve many
//! writes; one write alone costs what it did before. Batches are stored by a
//! task of their own, so a caller that gives up (a client that hangs up)
//! cancels nobody else's write.

use std::{future::Future, sync::Mutex};

use tokio::sync::oneshot;
use zapgate_core::{Error, Result, error::Cause};

use crate::SqlStore;

/// Most writes one statement stores (bounds its parameters).
const MAX_BATCH: usize = 128;

/// A kind of write that can be stored in batches.
pub(crate) trait Batch: Sized + Send + Sync + 'static {
    type Item: Send + 'static;
    type Outcome: Send + 'static;

    /// Its queue in the store.
    fn queue(store: &SqlStore) -> &GroupCommit<Self>;

    /// Stores `items` in one statement; one outcome per item, in order.
    fn store(
        store: &SqlStore,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<Vec<Self::Outcome>>> + Send;
}

/// Stores `item` with the writes of its kind waiting alongside it.
pub(crate) async fn submit<B: Batch>(store: &SqlStore, item: B::Item) -> Result<B::Outcome> {
    let (done, outcome) = oneshot::channel();
    let start = {
        let mut queue = B::queue(store).lock();
        queue.pending.push((item, done));
        !std::mem::replace(&mut queue.storing, true)
    };
    if start {
        let store = store.clone();
        tokio::spawn(async move { B::queue(&store).store_all(&store).await });
    }
    match outcome.await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(failure)) => Err(Error::internal(Cause(failure))),
        Err(_) => Err(Error::internal(Cause(
            "a write was dropped before it was stored".to_owned(),
        ))),
    }
}

pub(crate) struct GroupCommit<B: Batch> {
    queue: Mutex<Queue<B>>,
}

/// Where a waiting write learns its outcome, or why it failed.
type Reply<B> = oneshot::Sender<Result<<B as Batch>::Outcome, String>>;

struct Queue<B: Batch> {
    pending: Vec<(B::Item, Reply<B>)>,
    /// A task is storing batches until `pending` is empty.
    storing: bool,
}

impl<B: Batch> Default for GroupCommit<B> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                storing: false,
            }),
        }
    }
}

impl<B: Batch> GroupCommit<B> {
    async fn store_all(&self, store: &SqlStore) {
        let _unstick = Unstick(self);
        loop {
            let batch: Vec<_> = {
                let mut queue = self.lock();
                if queue.pending.is_empty() {
                    queue.storing = false;
                    return;
                }
                let n = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..n).collect()
            };
            let (items, waiting): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match B::store(store, &items).await {
                Ok(outcomes) => {
                    for (done, outcome) in waiting.into_iter().zip(outcomes) {
                        let _ = done.send(Ok(outcome));
                    }
                }
                Err(err) => {
                    let failure = err.to_string();
                    for done in waiting {
                        let _ = done.send(Err(failure.clone()));
                    }
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<B>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Should storing panic, the next write starts a new task instead of waiting
/// for this one forever.
struct Unstick<'a, B: Batch>(&'a GroupCommit<B>);

impl<B: Batch> Drop for Unstick<'_, B> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().storing = false;
        }
    }
}
