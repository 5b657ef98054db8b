//! Configuration from `ZAPGATE_*` environment variables (a `.env` file is
//! read first when present), validated once at start. Every error names the
//! variable at fault.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use base64::Engine;
use url::Url;
use zapgate_chatwoot::{BridgeConfig, ChatwootTimeouts};
use zapgate_http::{BodyLimits, RateLimitConfig};
use zapgate_whatsapp::web::{DEFAULT_VERSION, WebConfig};

pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/zapgate.db";

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

#[derive(Debug, Clone)]
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
    pub rate_limit: RateLimitConfig,
    pub body_limits: BodyLimits,
    pub connect_timeout: Duration,
    pub chatwoot_timeouts: ChatwootTimeouts,
    pub bridge: BridgeConfig,
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

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            // Above the 60 s deadlines of connect and chatwoot/set, and long
            // enough for a 64 MiB media body at ~2 Mbit/s.
            request_timeout: Duration::from_secs(300),
            max_connections: 1024,
        }
    }
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

/// One row of the table `zapgate --help` and the README show.
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "ZAPGATE_ADDR",
        default: DEFAULT_ADDR,
        meaning: "address the HTTP server listens on",
    },
    Variable {
        name: "ZAPGATE_DATABASE_URL",
        default: DEFAULT_DATABASE_URL,
        meaning: "sqlite://<file> (folder and file created) or postgres://...",
    },
    Variable {
        name: "ZAPGATE_ENCRYPTION_KEY",
        default: "(generated into <data dir>/secret.key on SQLite; required on PostgreSQL)",
        meaning: "base64 of 32 bytes: the AES-256-GCM key for secrets at rest",
    },
    Variable {
        name: "ZAPGATE_ENCRYPTION_KEYS_OLD",
        default: "(none)",
        meaning: "comma-separated retired keys, used only to decrypt; see `zapgate secrets rekey`",
    },
    Variable {
        name: "ZAPGATE_PUBLIC_URL",
        default: "http://<ZAPGATE_ADDR>",
        meaning: "base URL at which Chatwoot reaches this server",
    },
    Variable {
        name: "ZAPGATE_ADMIN_TOKEN",
        default: "(none: admin API off)",
        meaning: "operator token for /admin/*",
    },
    Variable {
        name: "ZAPGATE_WHATSAPP_PROVIDER",
        default: "web",
        meaning: "web (WhatsApp Web: link a real phone) or sandbox (in-process, no phone)",
    },
    Variable {
        name: "ZAPGATE_WA_VERSION",
        default: "2.3000.1026131876",
        meaning: "WhatsApp Web client version the web provider announces; raise it when the log says WhatsApp refuses the client version",
    },
    Variable {
        name: "ZAPGATE_WA_SOCKET_URL",
        default: "(WhatsApp's own)",
        meaning: "WhatsApp Web socket URL (web provider), for a relay",
    },
    Variable {
        name: "ZAPGATE_WA_LEASE_SECS",
        default: "30",
        meaning: "how long a WhatsApp session stays with a process that stopped renewing its lease before another process takes it over",
    },
    Variable {
        name: "ZAPGATE_CHATWOOT_ENABLED",
        default: "true",
        meaning: "the Chatwoot module switch",
    },
    Variable {
        name: "ZAPGATE_ALLOW_PRIVATE_URLS",
        default: "false",
        meaning: "allow customer URLs on loopback/private addresses",
    },
    Variable {
        name: "ZAPGATE_LOG_FORMAT",
        default: "pretty",
        meaning: "pretty or json",
    },
    Variable {
        name: "ZAPGATE_RATE_LIMIT",
        default: "on",
        meaning: "on or off (off for benchmarks)",
    },
    Variable {
        name: "ZAPGATE_RATE_LIMIT_PER_MINUTE",
        default: "100",
        meaning: "requests per minute per token (per IP without a valid token)",
    },
    Variable {
        name: "ZAPGATE_RATE_LIMIT_CREATE_PER_MINUTE",
        default: "20",
        meaning: "POST /api/instance/new per minute per token",
    },
    Variable {
        name: "ZAPGATE_MAX_BODY_BYTES",
        default: "1048576",
        meaning: "request body limit",
    },
    Variable {
        name: "ZAPGATE_MAX_MEDIA_BODY_BYTES",
        default: "67108864",
        meaning: "request body limit on media routes",
    },
    Variable {
        name: "ZAPGATE_CONNECT_TIMEOUT_SECS",
        default: "60",
        meaning: "how long connect waits for the first QR or pairing code",
    },
    Variable {
        name: "ZAPGATE_HEADER_TIMEOUT_SECS",
        default: "10",
        meaning: "a request's headers must arrive within this; idle keep-alive connections close after it",
    },
    Variable {
        name: "ZAPGATE_REQUEST_TIMEOUT_SECS",
        default: "300",
        meaning: "a whole request (body included) is answered within this, else 408",
    },
    Variable {
        name: "ZAPGATE_MAX_CONNECTIONS",
        default: "1024",
        meaning: "HTTP connections served at once; more wait to be accepted",
    },
    Variable {
        name: "ZAPGATE_HONOR_PROXY_ENV",
        default: "false",
        meaning: "fetch customer URLs (Chatwoot, media) through HTTP(S)_PROXY/ALL_PROXY; the private-address guard then sees only IP literals",
    },
];

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
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let addr_raw = get("ZAPGATE_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr: SocketAddr = addr_raw.parse().map_err(|_| {
            bad(
                "ZAPGATE_ADDR",
                format!("'{addr_raw}' is not host:port (e.g. 127.0.0.1:8080)"),
            )
        })?;

        let database_url =
            get("ZAPGATE_DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let sqlite_file = sqlite_file(&database_url);
        let is_postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if sqlite_file.is_none() && !is_postgres {
            return Err(bad(
                "ZAPGATE_DATABASE_URL",
                "expected sqlite://<file> or postgres://...",
            ));
        }

        let key = match get("ZAPGATE_ENCRYPTION_KEY") {
            Some(raw) => KeySource::Given(decode_key("ZAPGATE_ENCRYPTION_KEY", &raw)?),
            None => match &sqlite_file {
                Some(file) => KeySource::File(data_dir(file).join("secret.key")),
                None => {
                    return Err(bad(
                        "ZAPGATE_ENCRYPTION_KEY",
                        "required with PostgreSQL (base64 of 32 bytes, e.g. `openssl rand -base64 32`)",
                    ));
                }
            },
        };
        let retired_keys = get("ZAPGATE_ENCRYPTION_KEYS_OLD")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(|k| decode_key("ZAPGATE_ENCRYPTION_KEYS_OLD", k))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let public_raw = get("ZAPGATE_PUBLIC_URL").unwrap_or_else(|| format!("http://{addr}"));
        let public_url = Url::parse(public_raw.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                bad(
                    "ZAPGATE_PUBLIC_URL",
                    format!("'{public_raw}' is not an absolute http(s) URL"),
                )
            })?;

        let log_format = match get("ZAPGATE_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "ZAPGATE_LOG_FORMAT",
                    format!("'{other}' is not pretty or json"),
                ));
            }
        };

        let defaults = RateLimitConfig::default();
        let rate_limit = RateLimitConfig {
            enabled: match get("ZAPGATE_RATE_LIMIT").as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(bad(
                        "ZAPGATE_RATE_LIMIT",
                        format!("'{other}' is not on or off"),
                    ));
                }
            },
            per_minute: number(
                &get,
                "ZAPGATE_RATE_LIMIT_PER_MINUTE",
                defaults.per_minute,
                1,
            )?,
            create_per_minute: number(
                &get,
                "ZAPGATE_RATE_LIMIT_CREATE_PER_MINUTE",
                defaults.create_per_minute,
                1,
            )?,
        };
        let body_defaults = BodyLimits::default();
        let body_limits = BodyLimits {
            default: number(&get, "ZAPGATE_MAX_BODY_BYTES", body_defaults.default, 1024)?,
            media: number(
                &get,
                "ZAPGATE_MAX_MEDIA_BODY_BYTES",
                body_defaults.media,
                1024,
            )?,
        };
        let provider = match get("ZAPGATE_WHATSAPP_PROVIDER").as_deref() {
            None | Some("web") => Provider::Web(WebConfig {
                socket_url: get("ZAPGATE_WA_SOCKET_URL"),
                version: match get("ZAPGATE_WA_VERSION") {
                    Some(raw) => parse_version(&raw).ok_or_else(|| {
                        bad(
                            "ZAPGATE_WA_VERSION",
                            format!("'{raw}' is not three numbers like 2.3000.1026131876"),
                        )
                    })?,
                    None => DEFAULT_VERSION,
                },
                // Inbound media may be as large as what the API accepts.
                media_limit: body_limits.media,
                lease_ttl: Duration::from_secs(number(&get, "ZAPGATE_WA_LEASE_SECS", 30u64, 3)?),
            }),
            Some("sandbox") => Provider::Sandbox,
            Some(other) => {
                return Err(bad(
                    "ZAPGATE_WHATSAPP_PROVIDER",
                    format!("unknown provider '{other}' (web or sandbox)"),
                ));
            }
        };

        let connect_timeout =
            Duration::from_secs(number(&get, "ZAPGATE_CONNECT_TIMEOUT_SECS", 60u64, 1)?);

        let cw = ChatwootTimeouts::default();
        let seconds =
            |variable: &'static str, default: Duration| -> Result<Duration, ConfigError> {
                Ok(Duration::from_secs(number(
                    &get,
                    variable,
                    default.as_secs(),
                    1,
                )?))
            };
        let chatwoot_timeouts = ChatwootTimeouts {
            activate: seconds("ZAPGATE_CHATWOOT_SET_TIMEOUT_SECS", cw.activate)?,
            info: seconds("ZAPGATE_CHATWOOT_INFO_TIMEOUT_SECS", cw.info)?,
            deactivate: seconds("ZAPGATE_CHATWOOT_DELETE_TIMEOUT_SECS", cw.deactivate)?,
            info_cache: Duration::from_secs(number(
                &get,
                "ZAPGATE_CHATWOOT_CACHE_SECS",
                cw.info_cache.as_secs(),
                0,
            )?),
        };

        let b = BridgeConfig::default();
        let millis = |variable: &'static str,
                      default: Duration,
                      min: u64|
         -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(number(
                &get,
                variable,
                default.as_millis() as u64,
                min,
            )?))
        };
        let bridge = BridgeConfig {
            retry_base: millis("ZAPGATE_BRIDGE_RETRY_BASE_MS", b.retry_base, 1)?,
            retry_max: millis("ZAPGATE_BRIDGE_RETRY_MAX_MS", b.retry_max, 1)?,
            max_attempts: number(&get, "ZAPGATE_BRIDGE_MAX_ATTEMPTS", b.max_attempts, 1)?,
            lease: seconds("ZAPGATE_BRIDGE_LEASE_SECS", b.lease)?,
            poll: millis("ZAPGATE_BRIDGE_POLL_MS", b.poll, 1)?,
            batch: b.batch,
            wait_poll: millis("ZAPGATE_BRIDGE_WAIT_POLL_MS", b.wait_poll, 1)?,
            outbound_expiry: seconds("ZAPGATE_OUTBOUND_EXPIRY_SECS", b.outbound_expiry)?,
            refused_retry: seconds("ZAPGATE_BRIDGE_REFUSED_RETRY_SECS", b.refused_retry)?,
            reconcile_interval: Duration::from_secs(number(
                &get,
                "ZAPGATE_RECONCILE_INTERVAL_SECS",
                b.reconcile_interval.as_secs(),
                0,
            )?),
            reconcile_grace: Duration::from_secs(number(
                &get,
                "ZAPGATE_RECONCILE_GRACE_SECS",
                b.reconcile_grace.as_secs(),
                0,
            )?),
            media_limit: body_limits.media,
        };

        let limits = ServerLimits::default();
        let server = ServerLimits {
            header_timeout: seconds("ZAPGATE_HEADER_TIMEOUT_SECS", limits.header_timeout)?,
            request_timeout: seconds("ZAPGATE_REQUEST_TIMEOUT_SECS", limits.request_timeout)?,
            max_connections: number(&get, "ZAPGATE_MAX_CONNECTIONS", limits.max_connections, 1)?,
        };

        Ok(Self {
            addr,
            database_url,
            key,
            retired_keys,
            public_url,
            admin_token: get("ZAPGATE_ADMIN_TOKEN"),
            provider,
            chatwoot_enabled: boolean(&get, "ZAPGATE_CHATWOOT_ENABLED", true)?,
            allow_private_urls: boolean(&get, "ZAPGATE_ALLOW_PRIVATE_URLS", false)?,
            log_format,
            rate_limit,
            body_limits,
            connect_timeout,
            chatwoot_timeouts,
            bridge,
            server,
            honor_proxy_env: boolean(&get, "ZAPGATE_HONOR_PROXY_ENV", false)?,
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

fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(variable).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(bad(variable, format!("'{other}' is not true or false"))),
    }
}

/// `2.3000.1026131876` as its three numbers.
fn parse_version(raw: &str) -> Option<(u32, u32, u32)> {
    let mut parts = raw.split('.').map(|p| p.parse::<u32>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

fn number<T>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: T,
    min: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = get(variable) else {
        return Ok(default);
    };
    match raw.parse::<T>() {
        Ok(value) if value >= min => Ok(value),
        _ => Err(bad(
            variable,
            format!("'{raw}' is not a whole number >= {min}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
        assert_eq!(c.server, ServerLimits::default());
        assert!(!c.honor_proxy_env);
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
