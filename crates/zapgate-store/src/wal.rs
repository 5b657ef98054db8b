//! SQLite's write-ahead log is copied back into the database file (a
//! checkpoint) by a task of its own, not by the commit that crossed
//! `wal_autocheckpoint`'s 1,000 pages. That commit ran the checkpoint, page
//! writes and two fsyncs, before it returned, inside the writer's turn
//! ([`crate::conn::WriteTurn`]), so every hot write queued behind it waited
//! as well; the messages that met one made the SQLite rows' p99
//! (bench/README.md).
//!
//! The task copies the pending frames on a connection of its own, beside the
//! writer. The log starts over only when a write begins with every frame
//! copied, which a checkpoint racing a steady stream of writes never sees.
//! So once the log is long, the frames that came in during the copy are
//! copied again inside the writer's turn: a short wait for a few frames, and
//! the log stays bounded under any load.

use std::{sync::Mutex, time::Duration};

use tokio::{task::JoinHandle, time::MissedTickBehavior};
use zapgate_core::Result;

use crate::{SqlStore, conn::StoreQuery as _, rows::get};

/// How often pending frames are copied.
const INTERVAL: Duration = Duration::from_millis(250);
/// A log this long (frames of a 4 KiB page: 16 MiB) is caught up inside the
/// writer's turn.
pub(crate) const CATCH_UP_FRAMES: i64 = 4096;

/// Copies as much as it can without waiting for readers or writers.
const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";

/// The checkpoint task, stopped when the last clone of its store goes.
pub(crate) struct Checkpoints(Mutex<Option<JoinHandle<()>>>);

impl Checkpoints {
    /// Stops the task and waits until it has: a checkpoint in flight holds
    /// a connection, which it would give back to the store's spares after
    /// [`SqlStore::close`] emptied them, and the pool's close would wait
    /// for it for ever.
    pub(crate) async fn stop(&self) {
        let task = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        let task = self.0.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

/// Starts the task on `store`, a clone that does not hold the returned
/// handle (or the task would keep itself alive).
pub(crate) fn start(store: SqlStore) -> Checkpoints {
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticks.tick().await;
            match checkpoint(&store).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("WAL checkpoints work again");
                }
                Ok(_) => {}
                Err(_) if store.pool.is_closed() => break,
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!(error = %err, "WAL checkpoint failed; the log grows until one works");
                }
                Err(_) => {}
            }
        }
    });
    Checkpoints(Mutex::new(Some(task)))
}

/// Copies the log's pending frames into the database file. A long log is
/// caught up again inside the writer's turn, between two of its
/// transactions: every frame copied when a write begins is what lets the
/// write start the log over (a copy that merely ended with every frame
/// copied does not: the write in flight adds more).
///
/// Answers the log's length in frames.
pub(crate) async fn checkpoint(store: &SqlStore) -> Result<i64> {
    let frames = get(&sqlx::query(CHECKPOINT).fetch_one_on(store).await?, "log")?;
    if frames < CATCH_UP_FRAMES {
        return Ok(frames);
    }
    let mut turn = store.write_turn().await;
    match turn.fetch_all(sqlx::query(CHECKPOINT)).await?.first() {
        Some(row) => get(row, "log"),
        None => Ok(frames),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use super::*;
    use crate::SecretBox;

    async fn store_without_task(dir: &tempfile::TempDir) -> SqlStore {
        let url = format!("sqlite:{}", dir.path().join("z.db").display());
        let store = SqlStore::open(&url, SecretBox::new([1; 32], vec![]))
            .await
            .unwrap();
        create_filler(&store).await;
        store
    }

    async fn create_filler(store: &SqlStore) {
        let mut turn = store.write_turn().await;
        turn.execute(sqlx::query("CREATE TABLE filler (bytes BLOB NOT NULL)"))
            .await
            .unwrap();
    }

    async fn write_rows(store: &SqlStore, n: usize) {
        for _ in 0..n {
            let mut turn = store.write_turn().await;
            turn.execute(sqlx::query(
                "INSERT INTO filler (bytes) VALUES (zeroblob(3000))",
            ))
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn commits_leave_the_log_to_the_checkpoint_task_which_lets_it_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_without_task(&dir).await;
        // About 2,000 frames: past the 1,000 at which a commit would have
        // checkpointed (and the next one started the log over).
        write_rows(&store, 2_000).await;
        let frames = checkpoint(&store).await.unwrap();
        assert!(
            frames > 1_500,
            "the commits checkpointed themselves: {frames} frames in the log"
        );
        // Every frame was copied, so the next write starts the log over.
        write_rows(&store, 1).await;
        let frames = checkpoint(&store).await.unwrap();
        assert!(frames < 10, "the log did not start over: {frames} frames");
    }

    #[tokio::test]
    async fn a_connected_store_checkpoints_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.db");
        let store = SqlStore::connect(
            &format!("sqlite:{}", path.display()),
            SecretBox::new([1; 32], vec![]),
        )
        .await
        .unwrap();
        create_filler(&store).await;
        write_rows(&store, 2_000).await;
        // The rows reach the database file only through a checkpoint.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() < 2_000 * 3_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the log"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_under_steady_writes_is_caught_up_and_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_without_task(&dir).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn({
            let (store, stop) = (store.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    write_rows(&store, 1).await;
                }
            }
        });
        // Beside a steady writer, a checkpoint rarely ends with every
        // frame copied, and even then the write in flight adds more: without
        // the catch-up this log grew to 5,000-80,000 frames, found long by
        // 104 to 1,589 checkpoints, before it started over. With it, the
        // first checkpoint that finds the log long catches up, and the
        // writer's next transaction starts it over (a busy machine may let
        // a second or third find it first).
        let (mut longest, mut long_checkpoints) = (0, 0);
        let mut started_over = false;
        for _ in 0..4_000 {
            let frames = checkpoint(&store).await.unwrap();
            if frames < longest && longest >= CATCH_UP_FRAMES {
                started_over = true;
                break;
            }
            long_checkpoints += i32::from(frames >= CATCH_UP_FRAMES);
            longest = longest.max(frames);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop.store(true, Ordering::Relaxed);
        writer.await.unwrap();
        assert!(
            started_over && long_checkpoints <= 3 && longest < 2 * CATCH_UP_FRAMES,
            "the log grew to {longest} frames over {long_checkpoints} checkpoints, started over: {started_over}"
        );
    }
}
