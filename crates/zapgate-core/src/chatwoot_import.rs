//! A history import into a Chatwoot inbox: the last N days of the messages
//! the instance holds (its message store, fed by live traffic and by
//! WhatsApp's history), written chat by chat, oldest first. Its progress is
//! one row per instance, so an import survives a restart and resumes after
//! the last chat it finished.

/// Most days an import reaches back.
pub const MAX_IMPORT_DAYS: u32 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportState {
    Running,
    Done,
    Failed,
    Cancelled,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// An import as stored (`chatwoot_imports`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProgress {
    pub instance_id: String,
    /// The integration it writes into: another one (a new activation) ends it.
    pub integration_id: String,
    pub state: ImportState,
    pub days: u32,
    pub contacts: bool,
    /// The window, Unix seconds, fixed when it started so a resumed import
    /// reads the same messages; later ones are the live bridge's.
    pub since_secs: i64,
    pub until_secs: i64,
    /// Chats in the window.
    pub chats: u64,
    /// The last chat finished (chats go in JID order): where a resume starts.
    pub last_chat: Option<String>,
    pub messages_done: u64,
    pub messages_total: u64,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub error: Option<String>,
    /// Until when the process running it holds it (Unix ms); a process
    /// that finds a running import past this takes it over.
    pub locked_until_ms: i64,
}
