//! Typed settings, read once from the environment (and `.env` when present).
//!
//! Every invalid value stops start-up with an error that names the variable,
//! and secrets are wrapped so that `Debug` and logs print `[REDACTED]`.

mod billing;
mod live;

pub use billing::{BillingSettings, DodoBilling};
pub use live::LiveSettings;
use secrecy::SecretString;
use std::{net::IpAddr, path::PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{var} is invalid: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub host: IpAddr,
    /// 0 asks the OS for a free port (tests).
    pub port: u16,
    pub log_format: LogFormat,
    pub database: DatabaseSettings,
    /// The public origin when behind a proxy (`https://tldw.example`); used
    /// for links we hand out and to decide whether cookies are `Secure`.
    pub public_url: Option<url::Url>,
    pub auth: AuthSettings,
    /// Proxies whose `X-Forwarded-For` we believe (`TLDW_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpAddr>,
    /// `TLDW_CORS_ORIGINS`: origins (`https://app.example`) whose pages may
    /// call `/api/v1` with a Bearer key; empty (the default): no CORS.
    pub cors_origins: Vec<String>,
    /// `SMTP_URL`: send invitation emails through it; unset, links are shown.
    pub smtp_url: Option<SecretString>,
    /// `SMTP_FROM`: the sender of those emails.
    pub smtp_from: String,
    pub summaries: SummarySettings,
    pub billing: BillingSettings,
    /// `LEPTOS_SITE_ROOT`: where the built site (the hashed bundle, hash.txt,
    /// public files) is; unset, Leptos.toml's `site-root`.
    pub site_root: Option<PathBuf>,
    /// `METRICS_ADDR` (`127.0.0.1:9100`): serve Prometheus metrics at
    /// `/metrics` on this address, apart from the public port; unset: off.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `TLDW_LIVE_*`: the org event streams (see `config::live`).
    pub live: LiveSettings,
    /// `TLDW_ORGS_PER_ACCOUNT_PER_DAY`: orgs one account may create a day
    /// (default 5; 0: no limit). Each org starts with a free quota.
    pub orgs_per_day: i32,
    /// `TLDW_SIGN_UPS_PER_ADDRESS_PER_HOUR`: built-in sign-ups one client
    /// address (an IPv6 /64) may make an hour (default 10).
    pub sign_ups_per_hour: u32,
}

/// How summaries are made and counted.
#[derive(Clone, Debug)]
pub struct SummarySettings {
    pub youtube: crate::server::clients::youtube::YouTubeSettings,
    /// `OPENAI_API_KEY` (+ `OPENAI_BASE_URL`, `OPENAI_MODEL`); `None`: the
    /// built-in extractive summarizer.
    pub openai: Option<crate::server::summarizer::OpenAiSettings>,
    /// `TLDW_SUMMARY_LEASE_SECONDS`: how long a silent worker keeps a video.
    pub lease: std::time::Duration,
    /// `TLDW_NEGATIVE_CACHE_SECONDS`: how long "no captions" and the like are cached.
    pub negative_ttl: std::time::Duration,
    /// `TLDW_MODEL_PRICES`: `model=input/output` in USD per million tokens.
    pub prices: Vec<(String, f64, f64)>,
    /// `TLDW_FAILURE_COOLDOWN_SECONDS`: after a transient failure, how long
    /// the failure is served to everyone before anyone may try again; it
    /// doubles with each consecutive failure, up to
    /// `TLDW_FAILURE_COOLDOWN_MAX_SECONDS`. 0 turns it off.
    pub failure_cooldown: std::time::Duration,
    pub failure_cooldown_max: std::time::Duration,
    /// `TLDW_SUMMARY_REQUESTS_PER_MINUTE`: summary requests one member may
    /// make per minute, across every process (0: no throttle).
    pub requests_per_minute: u32,
    /// `TLDW_API_KEY_SUMMARY_REQUESTS_PER_MINUTE`: the same for each API key
    /// (programs have their own bucket, apart from their creator's).
    pub api_key_requests_per_minute: u32,
    /// Per-plan token caps and YouTube throttling (see `SpendLimits`).
    pub spend: crate::server::services::summaries::limits::SpendLimits,
}

/// Who signs people in.
#[derive(Clone, Debug)]
pub enum AuthSettings {
    /// Email + password accounts stored here (the default).
    Builtin,
    /// Clerk issues session JWTs; we verify them.
    Clerk(Box<ClerkSettings>),
}

#[derive(Clone, Debug)]
pub struct ClerkSettings {
    /// `CLERK_ISSUER`: the Frontend API URL, compared exactly with `iss`.
    pub issuer: String,
    /// `CLERK_JWKS_URL`, default `{issuer}/.well-known/jwks.json`.
    pub jwks_url: url::Url,
    /// `CLERK_JWT_KEY`: a PEM public key; when set, no JWKS is fetched.
    pub jwt_key_pem: Option<SecretString>,
    /// `CLERK_AUTHORIZED_PARTIES`: comma-separated origins allowed in `azp`.
    pub authorized_parties: Vec<String>,
    /// `CLERK_SECRET_KEY` (`sk_live_…`/`sk_test_…`): lets us ask Clerk's
    /// Backend API for a user's primary email, which session tokens do not
    /// carry. Unset: Clerk users have no email here (no checkout, no
    /// invitations), and the doctor says so.
    pub secret_key: Option<SecretString>,
    /// `CLERK_API_URL`, default `https://api.clerk.com` (tests point it at a fake).
    pub api_url: url::Url,
    /// `CLERK_WEBHOOK_SECRET` (`whsec_…`, Dashboard → Webhooks → Signing
    /// Secret): verifies `POST /webhooks/clerk`. Unset: that route answers 503.
    pub webhooks: Option<crate::server::webhooks::signature::WebhookVerifier>,
}

#[derive(Clone, Debug)]
pub enum DatabaseSettings {
    /// Start (or reuse) a private PostgreSQL cluster in `data_dir`.
    Embedded {
        data_dir: PathBuf,
        /// Where `initdb`/`pg_ctl` live; found automatically when unset.
        pg_bin_dir: Option<PathBuf>,
        max_connections: u32,
    },
    /// Use a server someone else runs.
    External {
        /// The runtime role: subject to row level security.
        app_url: SecretString,
        /// The owner role that applies migrations.
        migration_url: SecretString,
        max_connections: u32,
        /// `DATABASE_STATEMENT_CACHE` (default on); `0` behind a transaction
        /// pooler (PgBouncer before 1.21), see `db::Pooling`.
        statement_cache: bool,
        /// `DATABASE_LISTEN_URL`: a direct connection for LISTEN (a
        /// transaction pooler keeps no session); unset: `app_url`.
        listen_url: Option<SecretString>,
    },
}

impl Settings {
    /// Reads `.env` (if present) and then the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(error) if error.not_found() => {}
            Err(error) => {
                return Err(ConfigError {
                    var: ".env",
                    reason: error.to_string(),
                });
            }
        }
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from any variable source, so tests need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let host = match get("HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                var: "HOST",
                reason: format!("expected an IP address such as 127.0.0.1 or 0.0.0.0, got {v:?}"),
            })?,
        };
        let port = match get("PORT") {
            None => 3000,
            Some(v) => v.trim().parse().map_err(|_| ConfigError {
                var: "PORT",
                reason: format!("expected a port number from 0 to 65535, got {v:?}"),
            })?,
        };
        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") | Some("pretty") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    reason: format!("expected \"text\" or \"json\", got {other:?}"),
                });
            }
        };
        let max_connections = match get("DATABASE_MAX_CONNECTIONS") {
            None => 10,
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ConfigError {
                    var: "DATABASE_MAX_CONNECTIONS",
                    reason: format!("expected a number from 1 to 1000, got {v:?}"),
                })?,
        };
        let database = match (get("DATABASE_URL"), get("DATABASE_MIGRATION_URL")) {
            (None, None) => DatabaseSettings::Embedded {
                data_dir: get("TLDW_DATA_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(".tldw")),
                pg_bin_dir: get("TLDW_PG_BIN_DIR").map(PathBuf::from),
                max_connections,
            },
            (Some(app_url), Some(migration_url)) => {
                check_postgres_url("DATABASE_URL", &app_url)?;
                check_postgres_url("DATABASE_MIGRATION_URL", &migration_url)?;
                let listen_url = get("DATABASE_LISTEN_URL");
                if let Some(url) = &listen_url {
                    check_postgres_url("DATABASE_LISTEN_URL", url)?;
                }
                DatabaseSettings::External {
                    app_url: app_url.into(),
                    migration_url: migration_url.into(),
                    max_connections,
                    statement_cache: switch(
                        get("DATABASE_STATEMENT_CACHE"),
                        "DATABASE_STATEMENT_CACHE",
                        true,
                    )?,
                    listen_url: listen_url.map(SecretString::from),
                }
            }
            (Some(_), None) => {
                return Err(ConfigError {
                    var: "DATABASE_MIGRATION_URL",
                    reason: "must be set together with DATABASE_URL: migrations run as the owner role, the app as a role without table ownership".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    var: "DATABASE_URL",
                    reason: "must be set together with DATABASE_MIGRATION_URL".into(),
                });
            }
        };
        let public_url = match get("PUBLIC_URL") {
            None => None,
            Some(v) => Some(
                url::Url::parse(v.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| ConfigError {
                        var: "PUBLIC_URL",
                        reason: "expected an http(s) URL such as https://tldw.example.com".into(),
                    })?,
            ),
        };
        let auth = match get("CLERK_ISSUER") {
            None => AuthSettings::Builtin,
            Some(issuer) => {
                let issuer = issuer.trim().trim_end_matches('/').to_owned();
                let issuer_url = url::Url::parse(&issuer)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| ConfigError {
                        var: "CLERK_ISSUER",
                        reason:
                            "expected your Clerk Frontend API URL, e.g. https://clerk.example.com"
                                .into(),
                    })?;
                let jwks_url = match get("CLERK_JWKS_URL") {
                    Some(v) => url::Url::parse(v.trim()).map_err(|_| ConfigError {
                        var: "CLERK_JWKS_URL",
                        reason: format!("expected a URL, got {v:?}"),
                    })?,
                    None => issuer_url
                        .join("/.well-known/jwks.json")
                        .map_err(|_| ConfigError {
                            var: "CLERK_ISSUER",
                            reason: "cannot derive the JWKS URL from it".into(),
                        })?,
                };
                let jwt_key_pem = get("CLERK_JWT_KEY").map(SecretString::from);
                if let Some(pem) = &jwt_key_pem {
                    use secrecy::ExposeSecret;
                    if !pem.expose_secret().contains("-----BEGIN PUBLIC KEY-----") {
                        return Err(ConfigError {
                            var: "CLERK_JWT_KEY",
                            reason: "expected a PEM public key (-----BEGIN PUBLIC KEY-----…)"
                                .into(),
                        });
                    }
                }
                let authorized_parties: Vec<String> = get("CLERK_AUTHORIZED_PARTIES")
                    .unwrap_or_default()
                    .split(',')
                    .map(|p| p.trim().trim_end_matches('/').to_owned())
                    .filter(|p| !p.is_empty())
                    .collect();
                if authorized_parties.is_empty() {
                    return Err(ConfigError {
                        var: "CLERK_AUTHORIZED_PARTIES",
                        reason: "list the origins of your frontend (e.g. https://app.example.com), comma-separated; tokens minted for other sites are refused".into(),
                    });
                }
                let secret_key = get("CLERK_SECRET_KEY")
                    .map(|key| key.trim().to_owned())
                    .filter(|key| !key.is_empty())
                    .map(SecretString::from);
                let api_url = match get("CLERK_API_URL") {
                    Some(v) => url::Url::parse(v.trim())
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .ok_or_else(|| ConfigError {
                            var: "CLERK_API_URL",
                            reason: format!("expected an http(s) URL, got {v:?}"),
                        })?,
                    None => url::Url::parse("https://api.clerk.com").expect("a valid URL"),
                };
                let webhook_var = if get("CLERK_WEBHOOK_SECRET").is_some() {
                    "CLERK_WEBHOOK_SECRET"
                } else {
                    // The name Clerk's own docs use.
                    "CLERK_WEBHOOK_SIGNING_SECRET"
                };
                let webhooks = match get(webhook_var) {
                    None => None,
                    Some(value) => {
                        let secret =
                            crate::server::webhooks::signature::WebhookSecret::parse(value.trim())
                                .map_err(|error| ConfigError {
                                    var: webhook_var,
                                    reason: error.to_string(),
                                })?;
                        Some(crate::server::webhooks::signature::WebhookVerifier::new(
                            secret, None,
                        ))
                    }
                };
                AuthSettings::Clerk(Box::new(ClerkSettings {
                    issuer,
                    jwks_url,
                    jwt_key_pem,
                    authorized_parties,
                    secret_key,
                    api_url,
                    webhooks,
                }))
            }
        };
        let trusted_proxies = get("TLDW_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse().map_err(|_| ConfigError {
                    var: "TLDW_TRUSTED_PROXIES",
                    reason: format!("expected comma-separated IP addresses, got {p:?}"),
                })
            })
            .collect::<Result<Vec<IpAddr>, _>>()?;
        let cors_origins = cors_origins(get("TLDW_CORS_ORIGINS"))?;
        let smtp_url = get("SMTP_URL").map(SecretString::from);
        let smtp_from = get("SMTP_FROM").unwrap_or_else(|| "tldw <no-reply@localhost>".into());
        if smtp_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError {
                var: "SMTP_FROM",
                reason: format!(
                    "expected a mailbox like `tldw <no-reply@example.com>`, got {smtp_from:?}"
                ),
            });
        }
        let summaries = summary_settings(&get)?;
        let billing = billing::billing_settings(&get)?;
        let site_root = get("LEPTOS_SITE_ROOT").map(PathBuf::from);
        let metrics_addr = metrics_addr(get("METRICS_ADDR"), host, port)?;
        let live = live::live_settings(&get)?;
        let orgs_per_day = match get("TLDW_ORGS_PER_ACCOUNT_PER_DAY") {
            None => 5,
            Some(raw) => raw
                .trim()
                .parse::<u16>()
                .map(i32::from)
                .map_err(|_| ConfigError {
                    var: "TLDW_ORGS_PER_ACCOUNT_PER_DAY",
                    reason: format!("expected a whole number (0 for no limit), got {raw:?}"),
                })?,
        };
        let sign_ups_per_hour = match get("TLDW_SIGN_UPS_PER_ADDRESS_PER_HOUR") {
            None => 10,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError {
                    var: "TLDW_SIGN_UPS_PER_ADDRESS_PER_HOUR",
                    reason: format!("expected a whole number above 0, got {raw:?}"),
                })?,
        };
        Ok(Settings {
            host,
            port,
            log_format,
            database,
            public_url,
            auth,
            trusted_proxies,
            cors_origins,
            smtp_url,
            smtp_from,
            summaries,
            billing,
            site_root,
            metrics_addr,
            live,
            orgs_per_day,
            sign_ups_per_hour,
        })
    }
}

/// An on/off setting: `1`/`on`/`true` or `0`/`off`/`false`.
fn switch(raw: Option<String>, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match raw
        .as_deref()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None => Ok(default),
        Some("1" | "on" | "true" | "yes") => Ok(true),
        Some("0" | "off" | "false" | "no") => Ok(false),
        Some(_) => Err(ConfigError {
            var,
            reason: format!(
                "expected 1 (on) or 0 (off), got {:?}",
                raw.unwrap_or_default()
            ),
        }),
    }
}

/// `METRICS_ADDR`: an address and port of its own; metrics are operator
/// data, so never the public HOST:PORT.
fn metrics_addr(
    raw: Option<String>,
    host: IpAddr,
    port: u16,
) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let address: std::net::SocketAddr = raw.trim().parse().map_err(|_| ConfigError {
        var: "METRICS_ADDR",
        reason: format!("expected an address and port such as 127.0.0.1:9100, got {raw:?}"),
    })?;
    if address.port() != 0 && address.port() == port {
        let clash = address.ip() == host || address.ip().is_unspecified() || host.is_unspecified();
        if clash {
            return Err(ConfigError {
                var: "METRICS_ADDR",
                reason: format!(
                    "must not be the public address ({host}:{port}); metrics get a listener of their own"
                ),
            });
        }
    }
    Ok(Some(address))
}

/// `https://a.example,http://localhost:5173`: each an origin (scheme, host,
/// optional port; no path), as browsers send it in `Origin`.
fn cors_origins(raw: Option<String>) -> Result<Vec<String>, ConfigError> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let bad = || ConfigError {
                var: "TLDW_CORS_ORIGINS",
                reason: format!(
                    "expected comma-separated origins like https://app.example, got {o:?}"
                ),
            };
            let url = url::Url::parse(o).map_err(|_| bad())?;
            let origin = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "http" | "https") || origin != o.trim_end_matches('/') {
                return Err(bad());
            }
            Ok(origin)
        })
        .collect()
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<std::time::Duration, ConfigError> {
    match get(var) {
        None => Ok(std::time::Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| ConfigError {
                var,
                reason: format!("expected a whole number of seconds, got {v:?}"),
            }),
    }
}

/// A whole number, 0 allowed (it means "off" where a setting allows that).
fn whole_number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u64>().map_err(|_| ConfigError {
            var,
            reason: format!("expected a whole number, got {v:?}"),
        }),
    }
}

fn summary_settings(get: &impl Fn(&str) -> Option<String>) -> Result<SummarySettings, ConfigError> {
    let youtube =
        crate::server::clients::youtube::YouTubeSettings::from_vars(get).map_err(|error| {
            ConfigError {
                var: "TLDW_YOUTUBE_*",
                reason: format!("{error:#}"),
            }
        })?;
    let openai = crate::server::summarizer::OpenAiSettings::from_lookup(get)?;
    let prices = match get("TLDW_MODEL_PRICES") {
        None => vec![
            ("gpt-4o-mini".to_owned(), 0.15, 0.60),
            ("gpt-4o".to_owned(), 2.50, 10.00),
            ("gpt-4.1-mini".to_owned(), 0.40, 1.60),
            ("gpt-4.1".to_owned(), 2.00, 8.00),
        ],
        Some(v) => v
            .split(',')
            .filter(|e| !e.trim().is_empty())
            .map(|entry| {
                let parsed = entry.split_once('=').and_then(|(model, prices)| {
                    let (input, output) = prices.split_once('/')?;
                    Some((
                        model.trim().to_owned(),
                        input.trim().parse().ok()?,
                        output.trim().parse().ok()?,
                    ))
                });
                parsed.ok_or_else(|| ConfigError {
                    var: "TLDW_MODEL_PRICES",
                    reason: format!(
                        "expected model=input/output (USD per million tokens), got {entry:?}"
                    ),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(SummarySettings {
        youtube,
        openai,
        lease: seconds(get, "TLDW_SUMMARY_LEASE_SECONDS", 120)?,
        negative_ttl: seconds(get, "TLDW_NEGATIVE_CACHE_SECONDS", 6 * 3600)?,
        prices,
        failure_cooldown: std::time::Duration::from_secs(whole_number(
            get,
            "TLDW_FAILURE_COOLDOWN_SECONDS",
            30,
        )?),
        failure_cooldown_max: std::time::Duration::from_secs(whole_number(
            get,
            "TLDW_FAILURE_COOLDOWN_MAX_SECONDS",
            600,
        )?),
        requests_per_minute: whole_number(get, "TLDW_SUMMARY_REQUESTS_PER_MINUTE", 10)?
            .try_into()
            .unwrap_or(u32::MAX),
        api_key_requests_per_minute: whole_number(
            get,
            "TLDW_API_KEY_SUMMARY_REQUESTS_PER_MINUTE",
            30,
        )?
        .try_into()
        .unwrap_or(u32::MAX),
        spend: crate::server::services::summaries::limits::SpendLimits::from_lookup(get)?,
    })
}

/// Only the shape is checked here (the value is secret, so it is not echoed);
/// connecting reports the rest.
fn check_postgres_url(var: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value.trim()) {
        Ok(url) if matches!(url.scheme(), "postgres" | "postgresql") => Ok(()),
        _ => Err(ConfigError {
            var,
            reason:
                "expected a postgres:// URL (the value is not shown because it may hold a password)"
                    .into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_to_loopback_3000_and_an_embedded_database() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.host.to_string(), "127.0.0.1");
        assert_eq!(s.port, 3000);
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(
            matches!(s.database, DatabaseSettings::Embedded { ref data_dir, .. } if data_dir == &PathBuf::from(".tldw"))
        );
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (var, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("HOST", "localhost:3000"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("PUBLIC_URL", "ftp://x"),
            ("METRICS_ADDR", "9100"),
            ("METRICS_ADDR", "127.0.0.1:3000"),
        ] {
            let error = settings(&[(var, value)]).unwrap_err();
            assert_eq!(error.var, var);
            assert!(error.to_string().starts_with(var), "{error}");
        }
    }

    #[test]
    fn external_database_needs_both_urls_and_hides_them() {
        let error = settings(&[("DATABASE_URL", "postgres://app:pw@db/tldw")]).unwrap_err();
        assert_eq!(error.var, "DATABASE_MIGRATION_URL");

        let error = settings(&[
            ("DATABASE_URL", "mysql://app:hunter2@db/tldw"),
            ("DATABASE_MIGRATION_URL", "postgres://owner:pw@db/tldw"),
        ])
        .unwrap_err();
        assert_eq!(error.var, "DATABASE_URL");
        assert!(!error.to_string().contains("hunter2"));

        let s = settings(&[
            ("DATABASE_URL", "postgres://app:hunter2@db/tldw"),
            (
                "DATABASE_MIGRATION_URL",
                "postgres://owner:swordfish@db/tldw",
            ),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("swordfish"),
            "{debug}"
        );
        let DatabaseSettings::External { app_url, .. } = s.database else {
            panic!("expected an external database");
        };
        assert_eq!(app_url.expose_secret(), "postgres://app:hunter2@db/tldw");
    }

    #[test]
    fn statement_cache_and_listen_url_for_a_pooler() {
        let urls = [
            ("DATABASE_URL", "postgres://app:pw@pooler/tldw"),
            ("DATABASE_MIGRATION_URL", "postgres://owner:pw@db/tldw"),
        ];
        let DatabaseSettings::External {
            statement_cache,
            listen_url,
            ..
        } = settings(&urls).unwrap().database
        else {
            panic!("expected an external database");
        };
        assert!(statement_cache);
        assert!(listen_url.is_none());

        let mut vars = urls.to_vec();
        vars.push(("DATABASE_STATEMENT_CACHE", "0"));
        vars.push(("DATABASE_LISTEN_URL", "postgres://app:pw@db/tldw"));
        let DatabaseSettings::External {
            statement_cache,
            listen_url,
            ..
        } = settings(&vars).unwrap().database
        else {
            panic!("expected an external database");
        };
        assert!(!statement_cache);
        assert_eq!(
            listen_url.unwrap().expose_secret(),
            "postgres://app:pw@db/tldw"
        );

        for (var, value) in [
            ("DATABASE_STATEMENT_CACHE", "sometimes"),
            ("DATABASE_LISTEN_URL", "mysql://db"),
        ] {
            let mut vars = urls.to_vec();
            vars.push((var, value));
            let error = settings(&vars).unwrap_err();
            assert_eq!(error.var, var);
        }
    }

    #[test]
    fn metrics_are_off_unless_given_an_address_of_their_own() {
        assert_eq!(settings(&[]).unwrap().metrics_addr, None);
        assert_eq!(
            settings(&[("METRICS_ADDR", "127.0.0.1:9100")])
                .unwrap()
                .metrics_addr,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        let error =
            settings(&[("HOST", "0.0.0.0"), ("METRICS_ADDR", "127.0.0.1:3000")]).unwrap_err();
        assert_eq!(error.var, "METRICS_ADDR");
    }

    #[test]
    fn json_logs_on_request() {
        assert_eq!(
            settings(&[("LOG_FORMAT", "json")]).unwrap().log_format,
            LogFormat::Json
        );
    }
}
