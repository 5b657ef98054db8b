//! Accounts: the tenants. Each owns instances up to its quota and holds one
//! TokenAccount, stored only as a hash.

use serde::Serialize;

use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub name: String,
    pub max_instances: u32,
    /// Requests per minute for this account's tokens; `None`: the server default.
    pub rate_limit_per_minute: Option<u32>,
    /// Milliseconds since the Unix epoch.
    #[serde(skip)]
    pub created_at_ms: i64,
}

/// A validated request to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub max_instances: u32,
    pub rate_limit_per_minute: Option<u32>,
}

pub const MAX_ACCOUNT_NAME_LEN: usize = 128;

impl NewAccount {
    pub fn parse(
        name: &str,
        max_instances: u32,
        rate_limit_per_minute: Option<u32>,
    ) -> Result<Self> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_ACCOUNT_NAME_LEN {
            return Err(Error::bad_request(format!(
                "Invalid account name: 1-{MAX_ACCOUNT_NAME_LEN} characters"
            )));
        }
        if rate_limit_per_minute == Some(0) {
            return Err(Error::bad_request(
                "Invalid rateLimitPerMinute: must be at least 1",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            max_instances,
            rate_limit_per_minute,
        })
    }
}
