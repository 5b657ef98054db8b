//! Client-facing texts of the contract (`spec/API.md`), matched byte for byte
//! by clients. Kept in one place so a typo cannot hide in a handler.

pub const MISSING_TOKEN: &str = "Missing token in header";
pub const MISSING_TOKEN_WEBSOCKET: &str =
    "Missing token in header, Authorization header, or query parameter";
pub const INVALID_TOKEN: &str = "Invalid token";
pub const RATE_LIMITED: &str = "Rate limit exceeded. Try again later.";
pub const INVALID_REQUEST_BODY: &str = "Invalid request body";
pub const ROUTE_NOT_FOUND: &str = "Not found";
pub const METHOD_NOT_ALLOWED: &str = "Method not allowed";
pub const BODY_TOO_LARGE: &str = "Request body too large";
pub const JSON_CONTENT_TYPE: &str = "Content-Type must be application/json";

pub const INSTANCE_NOT_FOUND: &str = "Instance not found";
pub const INVALID_INSTANCE_NAME: &str = "Invalid instance name";
pub const INSTANCE_NAME_TAKEN: &str = "Instance name already exists";
pub const INSTANCE_QUOTA_EXCEEDED: &str = "Account instance quota exceeded";
pub const CUSTOM_TOKEN_TOO_SHORT: &str = "Invalid token: at least 16 characters";
pub const TOKEN_IN_USE: &str = "Token already in use";
pub const INSTANCE_NAME_REQUIRED: &str = "Instance name is required";
pub const INSTANCE_NOT_CONNECTED: &str = "Instance is not connected to WhatsApp";
pub const FAILED_TO_LOGOUT: &str = "Failed to logout instance";
pub const FAILED_TO_DELETE: &str = "Failed to delete instance";

pub const SETTINGS_RETRIEVED: &str = "Settings retrieved successfully";
pub const SETTINGS_UPDATED: &str = "Settings updated successfully";
pub const NO_SETTING_PROVIDED: &str = "At least one setting must be provided";
pub const FAILED_TO_GET_SETTINGS: &str = "Failed to get settings configuration";
pub const FAILED_TO_UPDATE_SETTINGS: &str = "Failed to update settings configuration";
/// zapgate keeps WhatsApp's history sync off: importing old messages is not
/// built, and accepting `false` without acting on it would mislead.
pub const HISTORY_SYNC_UNSUPPORTED: &str = "Invalid disableHistorySync: false is not supported yet (zapgate does not import message history)";
