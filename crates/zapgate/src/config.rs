//! Configuration from the environment variables in [`VARIABLES`] (a `.env`
//! file is read first when present), validated once at start. Every error
//! names the variable at fault.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use base64::Engine;
use tracing_subscriber::EnvFilter;
use url::Url;
use zapgate_chatwoot::{BridgeConfig, ChatwootTimeouts};
use zapgate_events::DeliverySettings;
use zapgate_http::{BodyLimits, RateLimitConfig};
use zapgate_store::redact_url;
use zapgate_whatsapp::web::WebConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub enum Provider {
    /// WhatsApp Web: a real phone links this server as a device.
    Web(WebConfig),
    /// The in-process stand-in, for trying things out and for tests.
    Sandbox,
}

/// Where the master key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    Given([u8; 32]),
    /// Embedded default only: read from this file, generated on first start.
    File(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Given(_) => f.write_str("Given(<redacted>)"),
            Self::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: String,
    pub key: KeySource,
    pub retired_keys: Vec<[u8; 32]>,
    pub public_url: Url,
    pub admin_token: Option<String>,
    pub provider: Provider,
    pub chatwoot_enabled: bool,
    pub allow_private_urls: bool,
    pub log_format: LogFormat,
    /// `RUST_LOG`, checked at start.
    pub log_filter: String,
    pub rate_limit: RateLimitConfig,
    pub body_limits: BodyLimits,
    /// Inbound WhatsApp media downloads at once (either provider).
    pub media_downloads: usize,
    pub connect_timeout: Duration,
    pub chatwoot_timeouts: ChatwootTimeouts,
    pub bridge: BridgeConfig,
    pub deliveries: DeliverySettings,
    pub server: ServerLimits,
    /// Outbound clients use `HTTP(S)_PROXY`/`ALL_PROXY` (off: the address
    /// guard cannot see through a proxy).
    pub honor_proxy_env: bool,
}

/// What one client may hold of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// A request's headers must arrive within this (also closes idle
    /// keep-alive connections): a slowloris holds a connection no longer.
    pub header_timeout: Duration,
    /// A whole request, body included, answers within this (408 after).
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// A bad variable and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn bad(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// One environment variable the server reads. The loader reads variables
/// only through these rows, and `--help` and the README's table are
/// rendered from them, so none can be missing from either.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    pub default: Fallback,
    /// Markdown (backticks only), shown in `--help` and the README.
    pub meaning: &'static str,
}

/// What an unset (or empty) variable means.
#[derive(Debug, Clone, Copy)]
pub enum Fallback {
    /// This value, parsed exactly as if it had been set.
    Value(&'static str),
    /// No value; the text says what happens instead.
    Absent(&'static str),
}

impl Variable {
    /// The default as `--help` shows it.
    pub fn default_text(&self) -> &'static str {
        match self.default {
            Fallback::Value(value) | Fallback::Absent(value) => value,
        }
    }
}

/// Declares one constant per variable and `VARIABLES`, the list of them
/// all, in one place: a variable cannot exist outside the list.
macro_rules! variables {
    ($($id:ident = $name:literal, $default:expr, $meaning:literal;)*) => {
        $(pub const $id: Variable = Variable { name: $name, default: $default, meaning: $meaning };)*
        /// Every variable the server reads, in the order `--help` shows them.
        pub const VARIABLES: &[Variable] = &[$($id),*];
    };
}

use Fallback::{Absent, Value};

variables! {
    ADDR = "ZAPGATE_ADDR", Value("127.0.0.1:8080"),
        "listen address (port `0`: any free port, logged as `zapgate listening addr=...`)";
    DATABASE_URL = "ZAPGATE_DATABASE_URL", Value("sqlite://./data/zapgate.db"),
        "`sqlite://<file>` (folder and file created) or `postgres://...`";
    ENCRYPTION_KEY = "ZAPGATE_ENCRYPTION_KEY",
        Absent("generated into `<data dir>/secret.key` on SQLite; required on PostgreSQL"),
        "base64 of 32 bytes (`openssl rand -base64 32`): the key of secrets at rest";
    ENCRYPTION_KEYS_OLD = "ZAPGATE_ENCRYPTION_KEYS_OLD", Absent("none"),
        "comma-separated retired keys, used only to decrypt (see `zapgate secrets rekey`)";
    PUBLIC_URL = "ZAPGATE_PUBLIC_URL", Absent("`http://<ZAPGATE_ADDR>`"),
        "base URL at which Chatwoot reaches this server (a loopback address is logged as a warning)";
    ADMIN_TOKEN = "ZAPGATE_ADMIN_TOKEN", Absent("none: the admin API is off"),
        "operator token for `/admin/*`, at least 16 characters";
    WHATSAPP_PROVIDER = "ZAPGATE_WHATSAPP_PROVIDER", Value("web"),
        "`web` (WhatsApp Web: link a real phone) or `sandbox` (in-process, no phone)";
    WA_VERSION = "ZAPGATE_WA_VERSION", Value("2.3000.1026131876"),
        "the WhatsApp Web version the `web` provider announces (pinned, so nothing is fetched at start); raise it when the log says WhatsApp refuses the client version";
    WA_SOCKET_URL = "ZAPGATE_WA_SOCKET_URL", Absent("WhatsApp's own"),
        "the WhatsApp Web socket, for a relay";
    WA_LEASE_SECS = "ZAPGATE_WA_LEASE_SECS", Value("30"),
        "several processes on one PostgreSQL: how long a session stays with a process that stopped renewing its lease before another takes it over";
    MEDIA_DOWNLOADS = "ZAPGATE_MEDIA_DOWNLOADS", Value("4"),
        "inbound WhatsApp media downloads at once (each holds at most `ZAPGATE_MAX_MEDIA_BODY_BYTES` in memory)";
    CHATWOOT_ENABLED = "ZAPGATE_CHATWOOT_ENABLED", Value("true"),
        "the Chatwoot module switch";
    ALLOW_PRIVATE_URLS = "ZAPGATE_ALLOW_PRIVATE_URLS", Value("false"),
        "allow customer URLs on loopback/private addresses";
    LOG_FORMAT = "ZAPGATE_LOG_FORMAT", Value("pretty"),
        "`pretty` or `json`";
    LOG_FILTER = "RUST_LOG", Value("info,sqlx=warn,tower_http=info"),
        "log filter (`tracing` directives)";
    RATE_LIMIT = "ZAPGATE_RATE_LIMIT", Value("on"),
        "`off` for benchmarks";
    RATE_LIMIT_PER_MINUTE = "ZAPGATE_RATE_LIMIT_PER_MINUTE", Value("100"),
        "requests per minute per token (per client IP without a valid token); accounts can override (`rateLimitPerMinute`)";
    RATE_LIMIT_CREATE_PER_MINUTE = "ZAPGATE_RATE_LIMIT_CREATE_PER_MINUTE", Value("20"),
        "`POST /api/instance/new` per minute per token";
    MAX_BODY_BYTES = "ZAPGATE_MAX_BODY_BYTES", Value("1048576"),
        "request body limit (413 above)";
    MAX_MEDIA_BODY_BYTES = "ZAPGATE_MAX_MEDIA_BODY_BYTES", Value("67108864"),
        "body limit on media routes, and the largest media downloaded";
    MEDIA_SENDS = "ZAPGATE_MEDIA_SENDS", Value("8"),
        "`POST /api/message/media` and `/api/message/sticker` requests handled at once (their bodies included); one more is answered 429 with `Retry-After`";
    CONNECT_TIMEOUT_SECS = "ZAPGATE_CONNECT_TIMEOUT_SECS", Value("60"),
        "how long connect waits for the first QR or pairing code";
    HEADER_TIMEOUT_SECS = "ZAPGATE_HEADER_TIMEOUT_SECS", Value("10"),
        "a request's headers must arrive within this; idle keep-alive connections close after it";
    REQUEST_TIMEOUT_SECS = "ZAPGATE_REQUEST_TIMEOUT_SECS", Value("300"),
        "a whole request (body included) is answered within this, else 408";
    MAX_CONNECTIONS = "ZAPGATE_MAX_CONNECTIONS", Value("1024"),
        "HTTP connections served at once; more wait to be accepted";
    HONOR_PROXY_ENV = "ZAPGATE_HONOR_PROXY_ENV", Value("false"),
        "fetch customer URLs (Chatwoot, media, webhooks) through HTTP(S)_PROXY/ALL_PROXY; the private-address guard then sees only IP literals";
    CHATWOOT_SET_TIMEOUT_SECS = "ZAPGATE_CHATWOOT_SET_TIMEOUT_SECS", Value("60"),
        "deadline of `POST /api/chatwoot/set` (504 after it)";
    CHATWOOT_INFO_TIMEOUT_SECS = "ZAPGATE_CHATWOOT_INFO_TIMEOUT_SECS", Value("10"),
        "deadline of the live check in `GET /api/chatwoot/list`";
    CHATWOOT_DELETE_TIMEOUT_SECS = "ZAPGATE_CHATWOOT_DELETE_TIMEOUT_SECS", Value("30"),
        "deadline of the webhook clean-up on deactivation";
    CHATWOOT_CACHE_SECS = "ZAPGATE_CHATWOOT_CACHE_SECS", Value("30"),
        "how long the live state may be served from memory";
    BRIDGE_RETRY_BASE_MS = "ZAPGATE_BRIDGE_RETRY_BASE_MS", Value("1000"),
        "first retry delay of a delivery (doubling, ±20% jitter)";
    BRIDGE_RETRY_MAX_MS = "ZAPGATE_BRIDGE_RETRY_MAX_MS", Value("300000"),
        "longest retry delay of a delivery";
    BRIDGE_MAX_ATTEMPTS = "ZAPGATE_BRIDGE_MAX_ATTEMPTS", Value("10"),
        "attempts before a delivery is parked as a dead letter";
    BRIDGE_LEASE_SECS = "ZAPGATE_BRIDGE_LEASE_SECS", Value("60"),
        "how long a worker owns a delivery; a crashed worker's work is taken again after it";
    BRIDGE_DRAIN_MS = "ZAPGATE_BRIDGE_DRAIN_MS", Value("4000"),
        "on shutdown, how long running deliveries may finish before they are released to the next start (inside the 10 s grace of `serve`)";
    BRIDGE_POLL_MS = "ZAPGATE_BRIDGE_POLL_MS", Value("200"),
        "how often an idle worker looks for work (stored work wakes it at once)";
    BRIDGE_WAIT_POLL_MS = "ZAPGATE_BRIDGE_WAIT_POLL_MS", Value("30000"),
        "how often a reply waiting for WhatsApp looks again (a reconnect wakes it)";
    OUTBOUND_EXPIRY_SECS = "ZAPGATE_OUTBOUND_EXPIRY_SECS", Value("86400"),
        "how long an agent reply waits for WhatsApp before it is marked failed";
    BRIDGE_REFUSED_RETRY_SECS = "ZAPGATE_BRIDGE_REFUSED_RETRY_SECS", Value("60"),
        "retry delay while Chatwoot refuses the token (a new `set` wakes it)";
    BRIDGE_CALL_TIMEOUT_SECS = "ZAPGATE_BRIDGE_CALL_TIMEOUT_SECS", Value("30"),
        "deadline of each Chatwoot call a delivery makes (a slow Chatwoot is retried later)";
    BRIDGE_JOBS_PER_INTEGRATION = "ZAPGATE_BRIDGE_JOBS_PER_INTEGRATION", Value("8"),
        "deliveries of one integration running at once in a process (of 32), so a slow Chatwoot cannot hold them all";
    BRIDGE_MAX_QUEUED_PER_INTEGRATION = "ZAPGATE_BRIDGE_MAX_QUEUED_PER_INTEGRATION", Value("1000"),
        "agent replies of one integration queued (or running) past which its Chatwoot webhook answers 429; the reconciler sends the refused ones later (WhatsApp messages are never refused)";
    RECONCILE_INTERVAL_SECS = "ZAPGATE_RECONCILE_INTERVAL_SECS", Value("60"),
        "how often lost agent replies are looked for (`0`: off)";
    RECONCILE_GRACE_SECS = "ZAPGATE_RECONCILE_GRACE_SECS", Value("15"),
        "how old a reply must be before the reconciler sends it";
    WEBHOOK_TIMEOUT_SECS = "ZAPGATE_WEBHOOK_TIMEOUT_SECS", Value("30"),
        "how long one webhook delivery attempt may take";
    WEBHOOK_RETRY_BASE_MS = "ZAPGATE_WEBHOOK_RETRY_BASE_MS", Value("1000"),
        "first retry delay of a webhook delivery (doubling, ±20% jitter)";
    WEBHOOK_RETRY_MAX_MS = "ZAPGATE_WEBHOOK_RETRY_MAX_MS", Value("3600000"),
        "longest retry delay of a webhook delivery";
    WEBHOOK_RETRY_FOR_SECS = "ZAPGATE_WEBHOOK_RETRY_FOR_SECS", Value("86400"),
        "how long after its event a webhook delivery is retried before it is parked";
    WEBHOOK_CONCURRENCY = "ZAPGATE_WEBHOOK_CONCURRENCY", Value("16"),
        "deliveries waiting at once for one webhook's receiver to answer (a slow receiver holds back only its own)";
    WEBHOOK_POLL_MS = "ZAPGATE_WEBHOOK_POLL_MS", Value("200"),
        "how often an idle delivery worker looks for due work (new work wakes it at once)";
    EVENT_RETENTION_HOURS = "ZAPGATE_EVENT_RETENTION_HOURS", Value("72"),
        "how long the event log keeps events and their delivery history";
    MESSAGE_RETENTION_DAYS = "ZAPGATE_MESSAGE_RETENTION_DAYS", Value("30"),
        "how long the message store keeps messages (`0`: no message is stored, and `replyTo` is not checked)";
}

/// The shortest admin token accepted: a short one is guessable.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

impl Provider {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Web(_) => "web",
            Self::Sandbox => "sandbox",
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process
    /// environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);

        let addr_raw = env.value(ADDR);
        let addr: SocketAddr = addr_raw.parse().map_err(|_| {
            bad(
                ADDR.name,
                format!("'{addr_raw}' is not host:port (e.g. 127.0.0.1:8080)"),
            )
        })?;

        let database_url = env.value(DATABASE_URL);
        let sqlite_file = sqlite_file(&database_url);
        let is_postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if sqlite_file.is_none() && !is_postgres {
            return Err(bad(
                DATABASE_URL.name,
                "expected sqlite://<file> or postgres://...",
            ));
        }

        let key = match env.get(ENCRYPTION_KEY) {
            Some(raw) => KeySource::Given(decode_key(ENCRYPTION_KEY.name, &raw)?),
            None => match &sqlite_file {
                Some(file) => KeySource::File(data_dir(file).join("secret.key")),
                None => {
                    return Err(bad(
                        ENCRYPTION_KEY.name,
                        "required with PostgreSQL (base64 of 32 bytes, e.g. `openssl rand -base64 32`)",
                    ));
                }
            },
        };
        let retired_keys = env
            .get(ENCRYPTION_KEYS_OLD)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(|k| decode_key(ENCRYPTION_KEYS_OLD.name, k))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let public_raw = env
            .get(PUBLIC_URL)
            .unwrap_or_else(|| format!("http://{addr}"));
        let public_url = Url::parse(public_raw.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                bad(
                    PUBLIC_URL.name,
                    format!("'{public_raw}' is not an absolute http(s) URL"),
                )
            })?;

        let admin_token = env.get(ADMIN_TOKEN);
        if let Some(token) = &admin_token
            && token.chars().count() < MIN_ADMIN_TOKEN_LEN
        {
            return Err(bad(
                ADMIN_TOKEN.name,
                format!(
                    "{} characters; at least {MIN_ADMIN_TOKEN_LEN} are required (e.g. `openssl rand -hex 24`)",
                    token.chars().count()
                ),
            ));
        }

        let log_format = match env.value(LOG_FORMAT).as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    LOG_FORMAT.name,
                    format!("'{other}' is not pretty or json"),
                ));
            }
        };
        let log_filter = env.value(LOG_FILTER);
        if let Err(err) = EnvFilter::try_new(&log_filter) {
            return Err(bad(
                LOG_FILTER.name,
                format!("'{log_filter}' is not a log filter: {err}"),
            ));
        }

        let rate_limit = RateLimitConfig {
            enabled: match env.value(RATE_LIMIT).as_str() {
                "on" => true,
                "off" => false,
                other => {
                    return Err(bad(RATE_LIMIT.name, format!("'{other}' is not on or off")));
                }
            },
            per_minute: env.number(RATE_LIMIT_PER_MINUTE, 1)?,
            create_per_minute: env.number(RATE_LIMIT_CREATE_PER_MINUTE, 1)?,
        };
        let body_limits = BodyLimits {
            default: env.number(MAX_BODY_BYTES, 1024)?,
            media: env.number(MAX_MEDIA_BODY_BYTES, 1024)?,
            media_sends: env.number(MEDIA_SENDS, 1)?,
        };
        let media_downloads = env.number(MEDIA_DOWNLOADS, 1)?;
        let provider = match env.value(WHATSAPP_PROVIDER).as_str() {
            "web" => Provider::Web(WebConfig {
                socket_url: env.get(WA_SOCKET_URL),
                version: {
                    let raw = env.value(WA_VERSION);
                    parse_version(&raw).ok_or_else(|| {
                        bad(
                            WA_VERSION.name,
                            format!("'{raw}' is not three numbers like 2.3000.1026131876"),
                        )
                    })?
                },
                // Inbound media may be as large as what the API accepts.
                media_limit: body_limits.media,
                media_downloads,
                lease_ttl: env.seconds(WA_LEASE_SECS, 3)?,
            }),
            "sandbox" => Provider::Sandbox,
            other => {
                return Err(bad(
                    WHATSAPP_PROVIDER.name,
                    format!("unknown provider '{other}' (web or sandbox)"),
                ));
            }
        };

        let chatwoot_timeouts = ChatwootTimeouts {
            activate: env.seconds(CHATWOOT_SET_TIMEOUT_SECS, 1)?,
            info: env.seconds(CHATWOOT_INFO_TIMEOUT_SECS, 1)?,
            deactivate: env.seconds(CHATWOOT_DELETE_TIMEOUT_SECS, 1)?,
            info_cache: env.seconds(CHATWOOT_CACHE_SECS, 0)?,
        };
        let bridge = BridgeConfig {
            retry_base: env.millis(BRIDGE_RETRY_BASE_MS, 1)?,
            retry_max: env.millis(BRIDGE_RETRY_MAX_MS, 1)?,
            max_attempts: env.number(BRIDGE_MAX_ATTEMPTS, 1)?,
            lease: env.seconds(BRIDGE_LEASE_SECS, 1)?,
            poll: env.millis(BRIDGE_POLL_MS, 1)?,
            wait_poll: env.millis(BRIDGE_WAIT_POLL_MS, 1)?,
            outbound_expiry: env.seconds(OUTBOUND_EXPIRY_SECS, 1)?,
            refused_retry: env.seconds(BRIDGE_REFUSED_RETRY_SECS, 1)?,
            call_timeout: env.seconds(BRIDGE_CALL_TIMEOUT_SECS, 1)?,
            per_integration: env.number(BRIDGE_JOBS_PER_INTEGRATION, 1)?,
            max_queued: env.number(BRIDGE_MAX_QUEUED_PER_INTEGRATION, 1)?,
            reconcile_interval: env.seconds(RECONCILE_INTERVAL_SECS, 0)?,
            reconcile_grace: env.seconds(RECONCILE_GRACE_SECS, 0)?,
            media_limit: body_limits.media,
            drain: env.millis(BRIDGE_DRAIN_MS, 0)?,
            // Not a knob: how many jobs a worker claims at once.
            ..BridgeConfig::default()
        };
        let deliveries = DeliverySettings {
            timeout: env.seconds(WEBHOOK_TIMEOUT_SECS, 1)?,
            retry_base: env.millis(WEBHOOK_RETRY_BASE_MS, 1)?,
            retry_max: env.millis(WEBHOOK_RETRY_MAX_MS, 1)?,
            retry_for: env.seconds(WEBHOOK_RETRY_FOR_SECS, 1)?,
            per_webhook: env.number(WEBHOOK_CONCURRENCY, 1)?,
            // Not a knob: deliveries in flight in this process. Each holds
            // its place from before its event's commit until its outcome's:
            // at 4,000 events/s with 30 ms commits, ~260 of them (256 made
            // deliveries spill into claims there).
            max_in_flight: 1024,
            poll: env.millis(WEBHOOK_POLL_MS, 1)?,
            retention: Duration::from_secs(env.number::<u64>(EVENT_RETENTION_HOURS, 1)? * 3600),
            message_retention: Duration::from_secs(
                env.number::<u64>(MESSAGE_RETENTION_DAYS, 0)?
                    .saturating_mul(86_400),
            ),
        };

        let server = ServerLimits {
            header_timeout: env.seconds(HEADER_TIMEOUT_SECS, 1)?,
            request_timeout: env.seconds(REQUEST_TIMEOUT_SECS, 1)?,
            max_connections: env.number(MAX_CONNECTIONS, 1)?,
        };

        Ok(Self {
            addr,
            database_url,
            key,
            retired_keys,
            public_url,
            admin_token,
            provider,
            chatwoot_enabled: env.boolean(CHATWOOT_ENABLED)?,
            allow_private_urls: env.boolean(ALLOW_PRIVATE_URLS)?,
            log_format,
            log_filter,
            rate_limit,
            body_limits,
            media_downloads,
            connect_timeout: env.seconds(CONNECT_TIMEOUT_SECS, 1)?,
            chatwoot_timeouts,
            bridge,
            deliveries,
            server,
            honor_proxy_env: env.boolean(HONOR_PROXY_ENV)?,
        })
    }

    /// The folder for the embedded database's files, when there is one.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        sqlite_file(&self.database_url)
    }

    pub fn public_url_is_loopback(&self) -> bool {
        match self.public_url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }
}

/// Secrets stay out of logs and panics: the admin token is hidden and the
/// database URL's password masked.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so a new field cannot be forgotten here.
        let Self {
            addr,
            database_url,
            key,
            retired_keys,
            public_url,
            admin_token,
            provider,
            chatwoot_enabled,
            allow_private_urls,
            log_format,
            log_filter,
            rate_limit,
            body_limits,
            media_downloads,
            connect_timeout,
            chatwoot_timeouts,
            bridge,
            deliveries,
            server,
            honor_proxy_env,
        } = self;
        f.debug_struct("Config")
            .field("addr", addr)
            .field("database_url", &redact_url(database_url))
            .field("key", key)
            .field(
                "retired_keys",
                &format_args!("<{} redacted>", retired_keys.len()),
            )
            .field("public_url", &public_url.as_str())
            .field(
                "admin_token",
                &admin_token.as_ref().map(|_| format_args!("<redacted>")),
            )
            .field("provider", provider)
            .field("chatwoot_enabled", chatwoot_enabled)
            .field("allow_private_urls", allow_private_urls)
            .field("log_format", log_format)
            .field("log_filter", log_filter)
            .field("rate_limit", rate_limit)
            .field("body_limits", body_limits)
            .field("media_downloads", media_downloads)
            .field("connect_timeout", connect_timeout)
            .field("chatwoot_timeouts", chatwoot_timeouts)
            .field("bridge", bridge)
            .field("deliveries", deliveries)
            .field("server", server)
            .field("honor_proxy_env", honor_proxy_env)
            .finish()
    }
}

/// The environment, read only through the table's rows.
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The set value, else the row's default value; empty counts as unset.
    fn get(&self, variable: Variable) -> Option<String> {
        (self.0)(variable.name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| match variable.default {
                Value(value) => Some(value.to_owned()),
                Absent(_) => None,
            })
    }

    /// For rows with a default value, which always give one.
    fn value(&self, variable: Variable) -> String {
        self.get(variable).unwrap_or_default()
    }

    fn number<T>(&self, variable: Variable, min: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display,
    {
        let raw = self.value(variable);
        match raw.parse::<T>() {
            Ok(value) if value >= min => Ok(value),
            _ => Err(bad(
                variable.name,
                format!("'{raw}' is not a whole number >= {min}"),
            )),
        }
    }

    fn seconds(&self, variable: Variable, min: u64) -> Result<Duration, ConfigError> {
        self.number(variable, min).map(Duration::from_secs)
    }

    fn millis(&self, variable: Variable, min: u64) -> Result<Duration, ConfigError> {
        self.number(variable, min).map(Duration::from_millis)
    }

    fn boolean(&self, variable: Variable) -> Result<bool, ConfigError> {
        match self.value(variable).as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => Err(bad(
                variable.name,
                format!("'{other}' is not true or false"),
            )),
        }
    }
}

/// `sqlite://./data/zapgate.db` → `./data/zapgate.db` (query string dropped).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn data_dir(file: &std::path::Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn decode_key(variable: &'static str, raw: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| bad(variable, "not valid base64"))?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        bad(
            variable,
            format!("decodes to {} bytes; 32 are required", b.len()),
        )
    })
}

/// `2.3000.1026131876` as its three numbers.
fn parse_version(raw: &str) -> Option<(u32, u32, u32)> {
    let mut parts = raw.split('.').map(|p| p.parse::<u32>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

#[cfg(test)]
mod tests {
    use std::{
        cell::RefCell,
        collections::{BTreeSet, HashMap},
    };

    use zapgate_whatsapp::web::DEFAULT_VERSION;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = config(&[]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://./data/zapgate.db");
        assert_eq!(c.key, KeySource::File(PathBuf::from("./data/secret.key")));
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
        assert!(c.public_url_is_loopback());
        assert!(c.chatwoot_enabled && !c.allow_private_urls && c.rate_limit.enabled);
        assert_eq!(c.admin_token, None);
        assert_eq!(c.connect_timeout, Duration::from_secs(60));
        let Provider::Web(web) = &c.provider else {
            panic!("web is the default provider, got {:?}", c.provider);
        };
        assert_eq!(web.version, DEFAULT_VERSION);
        assert_eq!(web.socket_url, None);
        assert_eq!(web.media_limit, c.body_limits.media);
        assert_eq!(web.lease_ttl, Duration::from_secs(30));
        assert_eq!(
            c.server,
            ServerLimits {
                header_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(300),
                max_connections: 1024,
            }
        );
        assert!(!c.honor_proxy_env);
    }

    #[test]
    fn the_table_defaults_are_the_defaults_of_the_crates() {
        let c = config(&[]).unwrap();
        // No PartialEq on these; their Debug shows every field.
        let same = |ours: &dyn fmt::Debug, theirs: &dyn fmt::Debug| {
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
        };
        same(&c.rate_limit, &RateLimitConfig::default());
        same(&c.body_limits, &BodyLimits::default());
        same(&c.chatwoot_timeouts, &ChatwootTimeouts::default());
        same(&c.bridge, &BridgeConfig::default());
        assert_eq!(c.log_filter, "info,sqlx=warn,tower_http=info");
        assert_eq!(c.log_format, LogFormat::Pretty);
    }

    #[test]
    fn the_loader_reads_every_variable_of_the_table_and_no_other() {
        for provider in ["web", "sandbox"] {
            let asked = RefCell::new(BTreeSet::new());
            Config::from_lookup(|name| {
                asked.borrow_mut().insert(name.to_owned());
                (name == WHATSAPP_PROVIDER.name).then(|| provider.to_owned())
            })
            .unwrap();
            let asked = asked.into_inner();
            let table: BTreeSet<String> = VARIABLES.iter().map(|v| v.name.to_owned()).collect();
            assert!(asked.is_subset(&table), "{provider}: {asked:?}");
            if provider == "web" {
                assert_eq!(asked, table, "a row the loader never reads");
            }
        }
        let unique: BTreeSet<_> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(unique.len(), VARIABLES.len(), "a variable listed twice");
    }

    #[test]
    fn the_admin_token_needs_16_characters() {
        let err = config(&[("ZAPGATE_ADMIN_TOKEN", "fifteen-chars-x")]).unwrap_err();
        assert_eq!(err.variable, "ZAPGATE_ADMIN_TOKEN");
        assert!(
            err.to_string()
                .starts_with("ZAPGATE_ADMIN_TOKEN: 15 characters; at least 16 are required"),
            "{err}"
        );
        let c = config(&[("ZAPGATE_ADMIN_TOKEN", "sixteen-chars-xx")]).unwrap();
        assert_eq!(c.admin_token.as_deref(), Some("sixteen-chars-xx"));
        // Unset or empty: the admin API is off, which is not an error.
        assert_eq!(
            config(&[("ZAPGATE_ADMIN_TOKEN", "")]).unwrap().admin_token,
            None
        );
    }

    #[test]
    fn debug_hides_the_admin_token_and_the_database_password() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let c = config(&[
            ("ZAPGATE_ADMIN_TOKEN", "the-admin-token-itself"),
            (
                "ZAPGATE_DATABASE_URL",
                "postgres://zap:db-pass-word@db:5432/zapgate?sslmode=disable",
            ),
            ("ZAPGATE_ENCRYPTION_KEY", &key),
            ("ZAPGATE_ENCRYPTION_KEYS_OLD", &key),
        ])
        .unwrap();
        let debug = format!("{c:?}");
        for secret in ["the-admin-token-itself", "db-pass-word", key.as_str()] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("admin_token: Some(<redacted>)"), "{debug}");
        assert!(
            debug.contains("postgres://zap:***@db:5432/zapgate?sslmode=disable"),
            "{debug}"
        );
        assert!(debug.contains("retired_keys: <1 redacted>"), "{debug}");
    }

    #[test]
    fn the_sandbox_and_the_web_settings_are_selectable() {
        let c = config(&[("ZAPGATE_WHATSAPP_PROVIDER", "sandbox")]).unwrap();
        assert!(matches!(c.provider, Provider::Sandbox));
        let c = config(&[
            ("ZAPGATE_WA_VERSION", "2.3000.42"),
            ("ZAPGATE_WA_SOCKET_URL", "ws://127.0.0.1:9/ws/chat"),
            ("ZAPGATE_WA_LEASE_SECS", "12"),
        ])
        .unwrap();
        let Provider::Web(web) = c.provider else {
            panic!("expected web");
        };
        assert_eq!(web.version, (2, 3000, 42));
        assert_eq!(web.socket_url.as_deref(), Some("ws://127.0.0.1:9/ws/chat"));
        assert_eq!(web.lease_ttl, Duration::from_secs(12));
    }

    #[test]
    fn postgres_needs_a_key() {
        let err = config(&[("ZAPGATE_DATABASE_URL", "postgres://db/zapgate")]).unwrap_err();
        assert_eq!(err.variable, "ZAPGATE_ENCRYPTION_KEY");
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let ok = config(&[
            ("ZAPGATE_DATABASE_URL", "postgres://db/zapgate"),
            ("ZAPGATE_ENCRYPTION_KEY", &key),
        ])
        .unwrap();
        assert_eq!(ok.key, KeySource::Given([7u8; 32]));
    }

    #[test]
    fn every_error_names_its_variable() {
        let short_key = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        for (variable, value) in [
            ("ZAPGATE_ADDR", "nope"),
            ("ZAPGATE_DATABASE_URL", "mysql://x"),
            ("ZAPGATE_ENCRYPTION_KEY", short_key.as_str()),
            ("ZAPGATE_ENCRYPTION_KEYS_OLD", "!!"),
            ("ZAPGATE_PUBLIC_URL", "ftp://x"),
            ("ZAPGATE_WHATSAPP_PROVIDER", "telegram"),
            ("ZAPGATE_WA_VERSION", "2.3000"),
            ("ZAPGATE_WA_VERSION", "2.3000.1.4"),
            ("ZAPGATE_WA_LEASE_SECS", "1"),
            ("ZAPGATE_CHATWOOT_ENABLED", "maybe"),
            ("ZAPGATE_ALLOW_PRIVATE_URLS", "2"),
            ("ZAPGATE_LOG_FORMAT", "xml"),
            ("ZAPGATE_RATE_LIMIT", "sometimes"),
            ("ZAPGATE_RATE_LIMIT_PER_MINUTE", "0"),
            ("ZAPGATE_MAX_BODY_BYTES", "-1"),
            ("ZAPGATE_CONNECT_TIMEOUT_SECS", "soon"),
            ("ZAPGATE_ADMIN_TOKEN", "short"),
            ("ZAPGATE_BRIDGE_POLL_MS", "0"),
            ("ZAPGATE_CHATWOOT_CACHE_SECS", "-1"),
            ("RUST_LOG", "info,sqlx=loud"),
            ("ZAPGATE_HEADER_TIMEOUT_SECS", "0"),
            ("ZAPGATE_MAX_CONNECTIONS", "0"),
            ("ZAPGATE_HONOR_PROXY_ENV", "perhaps"),
        ] {
            let err = config(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value}: {err}");
            assert!(err.to_string().starts_with(variable));
        }
    }

    #[test]
    fn the_key_file_sits_beside_the_database() {
        let c = config(&[(
            "ZAPGATE_DATABASE_URL",
            "sqlite:///var/lib/zg/db.sqlite?mode=rwc",
        )])
        .unwrap();
        assert_eq!(
            c.key,
            KeySource::File(PathBuf::from("/var/lib/zg/secret.key"))
        );
    }

    #[test]
    fn public_url_follows_the_address_and_drops_a_trailing_slash() {
        let c = config(&[("ZAPGATE_ADDR", "0.0.0.0:9000")]).unwrap();
        assert_eq!(c.public_url.as_str(), "http://0.0.0.0:9000/");
        let c = config(&[("ZAPGATE_PUBLIC_URL", "https://zap.example.com/")]).unwrap();
        assert_eq!(c.public_url.host_str(), Some("zap.example.com"));
        assert!(!c.public_url_is_loopback());
    }
}
