//! Row mapping: the column lists each query selects and their conversion to
//! domain types, shared by every query so the two cannot drift apart.

use sqlx::{Row as _, any::AnyRow};
use zapgate_core::{
    Error, Result,
    account::Account,
    error::Cause,
    instance::{ConnectionState, Instance, InstanceSettings, SessionStatus, WebhookConfig},
};

use crate::backend::Backend;

/// The `accounts` columns [`account`] reads, qualified by `a.`.
pub(crate) const ACCOUNT_COLUMNS: &str =
    "a.id, a.name, a.max_instances, a.rate_limit_per_minute, a.created_at";

/// The `instances` columns [`instance`] reads, qualified by `i.`.
pub(crate) const INSTANCE_COLUMNS: &str = "i.id, i.account_id, i.name, i.settings, i.webhook, \
     i.connection_state, i.number_jid, i.created_at";

pub(crate) fn account(row: &AnyRow) -> Result<Account> {
    Ok(Account {
        id: get(row, "id")?,
        name: get(row, "name")?,
        max_instances: to_u32(get::<i64>(row, "max_instances")?, "max_instances")?,
        rate_limit_per_minute: get::<Option<i64>>(row, "rate_limit_per_minute")?
            .map(|v| to_u32(v, "rate_limit_per_minute"))
            .transpose()?,
        created_at_ms: get(row, "created_at")?,
    })
}

pub(crate) fn instance(row: &AnyRow) -> Result<Instance> {
    let settings: String = get(row, "settings")?;
    let webhook: String = get(row, "webhook")?;
    instance_of((
        get(row, "id")?,
        get(row, "account_id")?,
        get(row, "name")?,
        serde_json::from_str(&settings).map_err(Error::internal)?,
        serde_json::from_str(&webhook).map_err(Error::internal)?,
        get(row, "connection_state")?,
        get(row, "number_jid")?,
        get(row, "created_at")?,
    ))
}

/// One instance as [`instance_list`] gives it: the [`INSTANCE_COLUMNS`] in
/// their order, settings and webhook as JSON objects.
pub(crate) type InstanceCells = (
    String,
    String,
    String,
    InstanceSettings,
    WebhookConfig,
    String,
    Option<String>,
    i64,
);

/// A whole result read as one row: the column `list`, a JSON array with
/// one array of `cells` per row (`order` is an `ORDER BY ...` or empty),
/// built by the database and parsed once by [`list_of`]. sqlx's SQLite
/// driver copies each value and hands rows over one by one from its
/// thread, and the `Any` driver converts each again: about 11 µs a row, so
/// a list of 10,000 instances spent its time there, not in the database.
pub(crate) fn json_list(backend: Backend, cells: &str, order: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_group_array(json_array({cells}) {order}) AS list"),
        Backend::Postgres => format!(
            "CAST(COALESCE(json_agg(json_build_array({cells}) {order}), '[]') AS TEXT) AS list"
        ),
    }
}

/// A JSON text column as a JSON value inside [`json_list`]'s cells.
pub(crate) fn json_cell(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json({column})"),
        Backend::Postgres => format!("CAST({column} AS json)"),
    }
}

/// The rows of a [`json_list`] row.
pub(crate) fn list_of<T: serde::de::DeserializeOwned>(row: &AnyRow) -> Result<Vec<T>> {
    let list: String = get(row, "list")?;
    serde_json::from_str(&list).map_err(Error::internal)
}

/// The account's instances (`i`) as a [`json_list`] of [`InstanceCells`],
/// oldest first.
pub(crate) fn instance_list(backend: Backend) -> String {
    let cells = format!(
        "i.id, i.account_id, i.name, {}, {}, i.connection_state, i.number_jid, i.created_at",
        json_cell(backend, "i.settings"),
        json_cell(backend, "i.webhook")
    );
    json_list(backend, &cells, "ORDER BY i.created_at, i.name")
}

/// The instances of an [`instance_list`] row.
pub(crate) fn instances_of_list(row: &AnyRow) -> Result<Vec<Instance>> {
    list_of::<InstanceCells>(row)?
        .into_iter()
        .map(instance_of)
        .collect()
}

fn instance_of(
    (id, account_id, name, settings, webhook, state, number_jid, created_at_ms): InstanceCells,
) -> Result<Instance> {
    let state = ConnectionState::parse(&state).ok_or_else(|| {
        Error::internal(Cause(format!(
            "instance {id} has unknown connection_state {state:?}"
        )))
    })?;
    Ok(Instance {
        account_id,
        name,
        settings: as_read(settings),
        webhook,
        session: SessionStatus { state, number_jid },
        created_at_ms,
        id,
    })
}

/// The stored settings. History sync has always been off; a row written
/// before `disableHistorySync: false` was refused may still say `false`,
/// so it reads as what zapgate does.
pub(crate) fn settings_of(json: &str) -> Result<InstanceSettings> {
    serde_json::from_str(json)
        .map(as_read)
        .map_err(Error::internal)
}

fn as_read(mut settings: InstanceSettings) -> InstanceSettings {
    settings.disable_history_sync = true;
    settings
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(Error::internal)
}

pub(crate) fn to_u32(value: i64, column: &str) -> Result<u32> {
    u32::try_from(value)
        .map_err(|_| Error::internal(Cause(format!("{column} out of range: {value}"))))
}

/// `u32` columns are stored as 64-bit integers on both backends.
pub(crate) fn from_u32(value: u32) -> i64 {
    i64::from(value)
}
