//! Inbound media downloads, bounded: a file WhatsApp declares larger than
//! the limit is never fetched, a download stops at the limit whatever the
//! file turns out to be, and only so many run at once (each holds at most
//! the limit in memory). Both providers download through it, so a customer
//! sending a 2 GB document raises zapgate's memory by the limit at most.

use std::{
    future::Future,
    io::{self, Cursor, Seek, SeekFrom, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::sync::Semaphore;
use zapgate_core::whatsapp::MediaKind;

/// The first allocation of a download: a declared length is not trusted
/// further (the buffer grows as bytes come, up to the limit).
const FIRST_ALLOCATION: u64 = 1024 * 1024;

/// Every inbound download of the process goes through one of these.
#[derive(Clone)]
pub struct MediaDownloads {
    limit: usize,
    slots: Arc<Semaphore>,
}

/// Why a message arrives without its media; the message says it in its place
/// ([`Skipped::note`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// Declared larger than the limit: not a byte was fetched.
    Declared(u64),
    /// It turned out larger than the limit: the download stopped there.
    OverLimit,
    /// WhatsApp's servers did not give it (expired, purged, unreachable).
    Failed(String),
}

impl MediaDownloads {
    /// `limit` bytes per file, `at_once` downloads at a time.
    pub fn new(limit: usize, at_once: usize) -> Self {
        Self {
            limit,
            slots: Arc::new(Semaphore::new(at_once.max(1))),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The file, when it may be had: declared (`declared`, when WhatsApp
    /// said) within the limit, then fetched by `download` once a slot is
    /// free, into a buffer that refuses to grow past the limit (a write over
    /// it fails, which ends the download).
    pub async fn fetch<F, Fut>(
        &self,
        declared: Option<u64>,
        download: F,
    ) -> Result<Vec<u8>, Skipped>
    where
        F: FnOnce(CappedBuffer) -> Fut,
        Fut: Future<Output = Result<CappedBuffer, String>>,
    {
        if let Some(length) = declared.filter(|l| *l > self.limit as u64) {
            return Err(Skipped::Declared(length));
        }
        // The semaphore is never closed.
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| Skipped::Failed(e.to_string()))?;
        let buffer = CappedBuffer::new(self.limit, declared);
        let over = buffer.over.clone();
        match download(buffer).await {
            Ok(buffer) => Ok(buffer.cursor.into_inner()),
            Err(_) if over.load(Ordering::SeqCst) => Err(Skipped::OverLimit),
            Err(error) => Err(Skipped::Failed(error)),
        }
    }
}

impl Skipped {
    /// What the message carries in place of its media (the `kind` of
    /// `Extra::Unsupported`): the media kind and why it is missing.
    /// The answer to a client that asked for the media (`chat/base64`).
    pub fn into_error(self, limit: usize) -> zapgate_core::Error {
        match self {
            Self::Declared(_) | Self::OverLimit => zapgate_core::Error::PayloadTooLarge(format!(
                "Media is larger than the {} media limit",
                size(limit as u64)
            )),
            Self::Failed(error) => zapgate_core::Error::BadGateway(format!(
                "Media could not be downloaded from WhatsApp: {error}"
            )),
        }
    }

    pub fn note(&self, kind: MediaKind, limit: usize) -> String {
        let kind = kind.as_str();
        match self {
            Self::Declared(length) => format!(
                "{kind} (not downloaded: its {} are over the {} media limit)",
                size(*length),
                size(limit as u64)
            ),
            Self::OverLimit => format!(
                "{kind} (not downloaded: larger than the {} media limit)",
                size(limit as u64)
            ),
            Self::Failed(_) => format!("{kind} (media unavailable)"),
        }
    }
}

/// `1.5 MiB`, `2.0 GiB`, `512 bytes`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// An in-memory file that refuses to grow past its limit.
pub struct CappedBuffer {
    cursor: Cursor<Vec<u8>>,
    limit: usize,
    /// Set by the write that was refused.
    over: Arc<AtomicBool>,
}

impl CappedBuffer {
    fn new(limit: usize, declared: Option<u64>) -> Self {
        let first = declared
            .unwrap_or(0)
            .min(limit as u64)
            .min(FIRST_ALLOCATION);
        Self {
            cursor: Cursor::new(Vec::with_capacity(first as usize)),
            limit,
            over: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Shortens it to `len` bytes (a retried download starts over).
    pub fn truncate(&mut self, len: u64) {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.cursor.get_mut().truncate(len);
    }
}

impl Write for CappedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let end = self.cursor.position().saturating_add(buf.len() as u64);
        if end > self.limit as u64 {
            self.over.store(true, Ordering::SeqCst);
            return Err(io::Error::other("the file is larger than the media limit"));
        }
        self.cursor.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for CappedBuffer {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.cursor.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn write_all(mut buffer: CappedBuffer, bytes: &[u8]) -> Result<CappedBuffer, String> {
        for chunk in bytes.chunks(7) {
            buffer.write_all(chunk).map_err(|e| e.to_string())?;
        }
        Ok(buffer)
    }

    #[tokio::test]
    async fn a_file_declared_over_the_limit_is_never_fetched() {
        let downloads = MediaDownloads::new(100, 2);
        let outcome = downloads
            .fetch(Some(101), |_| async { panic!("fetched") })
            .await;
        assert_eq!(outcome, Err(Skipped::Declared(101)));
        let fits = downloads
            .fetch(Some(100), |b| write_all(b, &[1; 100]))
            .await;
        assert_eq!(fits.map(|d| d.len()), Ok(100));
    }

    #[tokio::test]
    async fn a_download_stops_at_the_limit_whatever_was_declared() {
        let downloads = MediaDownloads::new(100, 2);
        let outcome = downloads
            .fetch(Some(10), |b| write_all(b, &[1; 1000]))
            .await;
        assert_eq!(outcome, Err(Skipped::OverLimit));
        let failed = downloads
            .fetch(None, |_| async { Err("gone".to_owned()) })
            .await;
        assert_eq!(failed, Err(Skipped::Failed("gone".to_owned())));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_wait_for_a_free_slot() {
        let downloads = MediaDownloads::new(100, 2);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut fetches = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (downloads, running, most) = (downloads.clone(), running.clone(), most.clone());
            fetches.spawn(async move {
                let fetched = downloads.fetch(None, move |b| async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(b)
                });
                fetched.await.is_ok()
            });
        }
        let mut done = 0;
        while let Some(ok) = fetches.join_next().await {
            done += usize::from(ok.unwrap());
        }
        assert_eq!(done, 6);
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn notes_say_why() {
        assert_eq!(
            Skipped::Declared(2 * 1024 * 1024 * 1024).note(MediaKind::Document, 64 * 1024 * 1024),
            "document (not downloaded: its 2.0 GiB are over the 64.0 MiB media limit)"
        );
        assert_eq!(
            Skipped::OverLimit.note(MediaKind::Video, 1000),
            "video (not downloaded: larger than the 1000 bytes media limit)"
        );
    }
}
