//! Services: the use cases the HTTP layer and the CLI call.

mod instances;
mod lifecycle;
mod session_recorder;

pub use instances::{CreateInstance, Created, InstanceService, InstanceViews};
pub use lifecycle::{AccountService, SessionCloser};
pub use session_recorder::SessionRecorder;
