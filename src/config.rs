//! Typed settings, read once from the environment and validated at start.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;

/// The JWT secret used when `APP_ENV=development` and no `JWT_SECRET` is set.
/// Public on purpose: it protects nothing and must never reach production.
pub const DEVELOPMENT_JWT_SECRET: &str = "infusion-api-development-secret-never-use-in-production";

/// The longest a token may live (`exp` − `iat`) unless `JWT_MAX_LIFETIME_MINUTES`
/// says otherwise: 12 hours, the development token `make run` prints.
pub const DEFAULT_JWT_MAX_LIFETIME_MINUTES: u32 = 12 * 60;

/// The most `JWT_MAX_LIFETIME_MINUTES` (and `infusion-api token --ttl-minutes`)
/// may be: a year.
pub const JWT_MAX_LIFETIME_MINUTES_LIMIT: u32 = 525_600;

/// Where the embedded SQLite database lives when `DATABASE_URL` is not set.
pub const DEFAULT_SQLITE_PATH: &str = "data/infusion-api.sqlite3";

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the data lives, decided from the URL's scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A `postgres://` or `postgresql://` URL, kept whole for libpq.
    Postgres(Secret),
    /// A SQLite file (`sqlite://path`, `sqlite:path` or a plain path).
    Sqlite(PathBuf),
}

impl DatabaseTarget {
    /// Parses a `DATABASE_URL`. Any scheme other than PostgreSQL's or SQLite's
    /// is an error, never a silent fallback to SQLite.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("DATABASE_URL is empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(Secret::new(url)));
        }
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() || path == ":memory:" {
                return Err(
                    "DATABASE_URL: a SQLite URL needs a file path (an in-memory database is one per connection)"
                        .into(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = url.split_once(':') {
            let looks_like_scheme = !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if looks_like_scheme {
                return Err(format!(
                    "DATABASE_URL has the unsupported scheme `{scheme}`: use postgres://, postgresql://, sqlite:// or a file path"
                ));
            }
        }
        Ok(Self::Sqlite(PathBuf::from(url)))
    }

    /// `postgresql` or `sqlite`, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgresql",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

/// Whether the process runs for a developer or for real.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

/// Everything the service reads from its environment.
#[derive(Clone, Debug)]
pub struct Settings {
    pub app_env: AppEnv,
    pub database: DatabaseTarget,
    pub bind_addr: String,
    pub jwt_secret: Secret,
    /// True when the development secret is in use (no `JWT_SECRET` given).
    pub jwt_secret_is_development: bool,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// The longest a token may live, `exp` − `iat`, in minutes.
    pub jwt_max_lifetime_minutes: u32,
    pub clinic_timezone: Tz,
    pub clinic_days: Vec<Weekday>,
    pub morning_start: NaiveTime,
    /// When the morning session ends (`MORNING_END`): after it starts, no
    /// later than the afternoon starts.
    pub morning_end: NaiveTime,
    pub afternoon_start: NaiveTime,
    /// When the afternoon session ends (`AFTERNOON_END`): after it starts.
    pub afternoon_end: NaiveTime,
    pub booking_horizon_weeks: u32,
    pub screening_valid_days: u32,
    pub referral_valid_days: u32,
    /// Age at which an ongoing-treatment attestation stops counting.
    pub attestation_valid_days: u32,
    /// Database connections per process (`DB_POOL_SIZE`): by default
    /// [`default_pool_size`].
    pub db_pool_size: u32,
    /// The fraction a course's score must improve by at its response check
    /// (0.3 is 30%) before no clinician review is flagged.
    pub response_improvement: f64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Days audit records are kept before `infusion-api audit prune` may
    /// delete them (six years by default, HIPAA's retention of documentation).
    pub audit_retention_days: u32,
    /// How long a request body may take to arrive, whole (`BODY_TIMEOUT_MS`).
    pub body_timeout: Duration,
    /// TLS is terminated in front of this server (`TLS_TERMINATED`): every
    /// response then carries `Strict-Transport-Security`.
    pub tls_terminated: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client
    /// (`TRUSTED_PROXIES`); from any other peer the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Failed authentications an address may make per window before its
    /// `/v1` requests are refused (`AUTH_FAILURE_LIMIT`); 0 is no limit.
    pub auth_failure_limit: u32,
    /// The window of [`Self::auth_failure_limit`] (`AUTH_FAILURE_WINDOW_SECONDS`).
    pub auth_failure_window: Duration,
    /// Requests a caller (a token's role and `sub`) may make per minute
    /// (`RATE_LIMIT_PER_MINUTE`); 0 is no limit.
    pub rate_limit_per_minute: u32,
    /// Hours the answer to a request sent with an `Idempotency-Key` is kept
    /// and replayed (`IDEMPOTENCY_KEY_TTL_HOURS`, 24 by default).
    pub idempotency_key_ttl_hours: u32,
    /// Identity providers whose asymmetric tokens are taken beside our own
    /// HS256 ones (`TRUSTED_ISSUERS_FILE`).
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// The browser origins that may call the API (`CORS_ALLOWED_ORIGINS`,
    /// and loopback in development); none is CORS off.
    pub cors_origins: CorsOrigins,
    /// How long a browser may reuse a preflight's answer
    /// (`CORS_MAX_AGE_SECONDS`).
    pub cors_max_age_seconds: u32,
    /// Whether `serve` seeds a demo clinic into an empty database
    /// (`DEMO_CLINIC`): on by default in development, never in production.
    pub demo_clinic: bool,
    /// The API's own signing key for the access tokens of backend clients
    /// (`SIGNING_KEY_FILE`, an EC P-256 private key in PEM). Development
    /// makes one in [`DEFAULT_SIGNING_KEY_PATH`] on first start; without
    /// one, production issues no access tokens (SMART Backend Services off).
    pub signing_key: Option<SigningKeyFile>,
    /// Keys that signed before the current one (`RETIRED_SIGNING_KEY_FILES`):
    /// published and verifying, never signing, until their tokens expire.
    pub retired_signing_keys: Vec<PathBuf>,
    /// The API's address as clients reach it (`PUBLIC_URL`), without a
    /// trailing slash: the token endpoint is `{PUBLIC_URL}/oauth/token`,
    /// the `aud` of every client assertion.
    pub public_url: Option<String>,
    /// How long an access token from the token endpoint lives
    /// (`ACCESS_TOKEN_LIFETIME_SECONDS`, 300 by default, as SMART advises).
    pub access_token_lifetime_seconds: u32,
    /// Webhook endpoints may be `http` and loopback or private addresses
    /// (`WEBHOOK_ALLOW_PRIVATE`): for development and tests only.
    pub webhook_allow_private: bool,
    /// Seconds between a failed delivery's attempts
    /// (`WEBHOOK_RETRY_SCHEDULE`); spent, the delivery has failed.
    pub webhook_retry_schedule: Vec<u32>,
    /// Hours an endpoint may fail every attempt before it is disabled
    /// (`WEBHOOK_DISABLE_AFTER_HOURS`, 72 by default).
    pub webhook_disable_after_hours: u32,
}

/// The default of `WEBHOOK_RETRY_SCHEDULE`: ten retries over about a day.
pub const DEFAULT_WEBHOOK_RETRY_SCHEDULE: &[u32] =
    &[5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 36000];

/// Where the API's signing key is, and whether to make it when it is not
/// there (development only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyFile {
    pub path: PathBuf,
    pub generate: bool,
}

/// Where development keeps the signing key it makes: under the working
/// directory, as the default database is.
pub const DEFAULT_SIGNING_KEY_PATH: &str = "data/signing-key.pem";

/// The browser origins allowed to call the API across origins (CORS), from
/// `CORS_ALLOWED_ORIGINS` and the mode. `http::cors::allows` decides a
/// request's `Origin` against it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsOrigins {
    /// Exact origins, as browsers send them: lower-case
    /// `scheme://host[:port]`, no default port.
    pub exact: Vec<String>,
    /// `*` was listed: any origin (development only).
    pub any: bool,
    /// `http://localhost` and `http://127.0.0.1` on any port (development).
    pub loopback: bool,
}

impl CorsOrigins {
    /// Whether CORS is on: some origin may call the API from a browser.
    pub fn is_on(&self) -> bool {
        self.any || self.loopback || !self.exact.is_empty()
    }
}

/// An origin as a browser serializes it in `Origin`: `scheme://host[:port]`
/// in lower case, without a path, a trailing slash, credentials or the
/// scheme's default port. Returns it lower-cased, or what is wrong with it.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let origin = text.trim().to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://").ok_or("it is not `scheme://host[:port]`")?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_lowercase())
        && scheme
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !scheme_ok {
        return Err(format!("`{scheme}` is not a URL scheme"));
    }
    if authority.contains(['/', '?', '#']) {
        return Err("an origin has no path, query or trailing slash".into());
    }
    if authority.contains('@') {
        return Err("an origin has no user name or password".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        // A bare IPv6 address: its colons are not a port's.
        Some((host, _)) if !host.ends_with(']') && host.contains(':') => (authority, None),
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
    };
    if !host_ok {
        return Err(format!("`{host}` is not a host name or IP address"));
    }
    if let Some(port) = port {
        let number = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0 && !port.starts_with('0'))
            .ok_or_else(|| format!("`{port}` is not a port (1 to 65535)"))?;
        if (scheme, number) == ("http", 80) || (scheme, number) == ("https", 443) {
            return Err(format!(
                "leave out the default port :{number}: browsers send `{scheme}://{host}`"
            ));
        }
    }
    Ok(origin)
}

/// The default of `AUDIT_RETENTION_DAYS`: six years.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 2190;

/// `AUDIT_RETENTION_DAYS` as `lookup` gives it: 1 to 36,500 days.
pub fn audit_retention_days(lookup: impl Fn(&str) -> Option<String>) -> Result<u32, String> {
    match lookup("AUDIT_RETENTION_DAYS").filter(|v| !v.trim().is_empty()) {
        None => Ok(DEFAULT_AUDIT_RETENTION_DAYS),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(days) if (1..=36_500).contains(&days) => Ok(days),
            _ => {
                Err(format!("AUDIT_RETENTION_DAYS `{text}` must be a whole number from 1 to 36500"))
            }
        },
    }
}

/// An identity provider whose tokens the API takes (`TRUSTED_ISSUERS_FILE`
/// lists them, as a JSON array).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The `iss` its tokens carry, exactly.
    pub issuer: String,
    /// The `aud` its tokens must carry for this API.
    pub audience: String,
    /// Its public keys, as a JWKS file (`{"keys": [...]}`), read at start
    /// and again when a token names a key not in it (at most once a minute).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// Or as a URL (`https`, or `http` to a loopback address), fetched at
    /// start and again as a file is read.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The algorithms taken from it: asymmetric only (`RS256`, `RS384`,
    /// `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384`, `EdDSA`).
    pub algorithms: Vec<String>,
    /// Where the role is: a claim, or a dotted path into nested claims
    /// (`realm_access.roles`); a string or an array of strings.
    pub role_claim: String,
    /// The provider's group names and the role each is, in order: the
    /// first that the token carries decides its role.
    pub roles: Vec<GroupRole>,
}

/// One line of [`TrustedIssuer::roles`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRole {
    pub group: String,
    pub role: String,
}

/// The algorithms a [`TrustedIssuer`] may allow: asymmetric only, so that a
/// public key can never be taken for an HMAC secret.
pub const ISSUER_ALGORITHMS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// The roles an identity provider's token may carry: every staff role and
/// integrations, not `patient` (a patient token's subject is the patient's
/// id here, which no provider knows).
pub const ISSUER_ROLES: &[&str] = &["admin", "clinician", "scheduler", "integration"];

pub use crate::domain::client::jwks_url;

/// `PUBLIC_URL` checked: `https://host[:port][/path]` (or `http`), no
/// query, fragment, user name or trailing slash. Returned as given.
fn public_url(url: &str) -> Result<String, String> {
    let (scheme, rest) = url.split_once("://").ok_or("it is not an http(s) URL")?;
    if scheme != "https" && scheme != "http" {
        return Err(format!("`{url}` is not an http or https URL"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("`{url}` needs a host, and no user name"));
    }
    if url.contains(['?', '#']) || url.ends_with('/') {
        return Err(format!("`{url}` must end without a query, fragment or trailing slash"));
    }
    Ok(url.to_owned())
}

/// `TRUSTED_ISSUERS_FILE` read and checked: every problem, by issuer.
fn trusted_issuers(path: &std::path::Path) -> Result<Vec<TrustedIssuer>, Vec<String>> {
    let name = format!("TRUSTED_ISSUERS_FILE {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{name}: {e}")])?;
    let issuers: Vec<TrustedIssuer> = serde_json::from_str(&text)
        .map_err(|e| vec![format!("{name}: not a JSON array of issuers: {e}")])?;
    let mut errors = Vec::new();
    for (i, issuer) in issuers.iter().enumerate() {
        let at = format!("{name}, issuer {i} ({})", issuer.issuer);
        if issuer.issuer.trim().is_empty() || issuer.audience.trim().is_empty() {
            errors.push(format!("{at}: `issuer` and `audience` must not be blank"));
        }
        if issuers[..i].iter().any(|other| other.issuer == issuer.issuer) {
            errors.push(format!("{at}: listed twice"));
        }
        if issuer.algorithms.is_empty() {
            errors.push(format!("{at}: `algorithms` must list at least one"));
        }
        for algorithm in &issuer.algorithms {
            if !ISSUER_ALGORITHMS.contains(&algorithm.as_str()) {
                errors.push(format!(
                    "{at}: algorithm `{algorithm}` is not one of {} (never HS* with a JWKS)",
                    ISSUER_ALGORITHMS.join(", ")
                ));
            }
        }
        if issuer.role_claim.split('.').any(str::is_empty) {
            errors.push(format!("{at}: `role_claim` must be a claim name or a dotted path"));
        }
        if issuer.roles.is_empty() {
            errors.push(format!("{at}: `roles` must map at least one group"));
        }
        for line in &issuer.roles {
            if !ISSUER_ROLES.contains(&line.role.as_str()) {
                errors.push(format!(
                    "{at}: group `{}` maps to `{}`, not one of {}",
                    line.group,
                    line.role,
                    ISSUER_ROLES.join(", ")
                ));
            }
        }
        match (&issuer.jwks_file, &issuer.jwks_url) {
            (Some(file), None) => match std::fs::read_to_string(file) {
                Err(e) => errors.push(format!("{at}: jwks_file {}: {e}", file.display())),
                Ok(jwks) => {
                    if serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(&jwks).is_err() {
                        errors.push(format!(
                            "{at}: jwks_file {} is not a JWKS (`{{\"keys\": [...]}}`)",
                            file.display()
                        ));
                    }
                }
            },
            (None, Some(url)) => {
                if let Err(e) = jwks_url(url) {
                    errors.push(format!("{at}: jwks_url {e}"));
                }
            }
            _ => errors.push(format!("{at}: give one of `jwks_file` and `jwks_url`")),
        }
    }
    if errors.is_empty() {
        Ok(issuers)
    } else {
        Err(errors)
    }
}

/// Every bad setting found, one message each.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings:\n  - {}", .0.join("\n  - "))]
pub struct SettingsError(pub Vec<String>);

impl Settings {
    /// Reads the process environment (after `.env` in development, see `main`).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment. Collects every error instead of stopping at the first.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let mut errors = Vec::new();

        let app_env = match get("APP_ENV").as_deref().map(str::trim) {
            None | Some("production") => AppEnv::Production,
            Some("development") => AppEnv::Development,
            Some(other) => {
                errors
                    .push(format!("APP_ENV must be `development` or `production`, not `{other}`"));
                AppEnv::Production
            }
        };

        let database = match DatabaseTarget::parse(
            &get("DATABASE_URL").unwrap_or_else(|| DEFAULT_SQLITE_PATH.to_owned()),
        ) {
            Ok(target) => target,
            Err(message) => {
                errors.push(message);
                DatabaseTarget::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))
            }
        };

        let (jwt_secret, jwt_secret_is_development) = match get("JWT_SECRET") {
            Some(secret) if secret.len() < 32 => {
                errors.push("JWT_SECRET must be at least 32 characters long".into());
                (Secret::new(secret), false)
            }
            Some(secret) if secret == DEVELOPMENT_JWT_SECRET => {
                if app_env == AppEnv::Production {
                    errors.push(
                        "JWT_SECRET is the published development secret (rule: not the development secret), which production refuses: set a secret of your own (e.g. `head -c 32 /dev/urandom | base64`)"
                            .into(),
                    );
                }
                (Secret::new(secret), true)
            }
            Some(secret) => {
                if let (AppEnv::Production, Some((rule, found))) = (app_env, weakness(&secret)) {
                    errors.push(format!(
                        "JWT_SECRET is plainly weak (rule: {rule}; {found}), which production refuses: use a random secret (e.g. `head -c 32 /dev/urandom | base64`)"
                    ));
                }
                (Secret::new(secret), false)
            }
            None if app_env == AppEnv::Development => (Secret::new(DEVELOPMENT_JWT_SECRET), true),
            None => {
                errors.push(
                    "JWT_SECRET is not set: set it (32+ characters), or run with APP_ENV=development for a development secret"
                        .into(),
                );
                (Secret::new(String::new()), false)
            }
        };

        let clinic_timezone = match get("CLINIC_TIMEZONE") {
            None => chrono_tz::America::New_York,
            Some(name) => name.trim().parse::<Tz>().unwrap_or_else(|_| {
                errors.push(format!(
                    "CLINIC_TIMEZONE `{name}` is not an IANA time zone name (e.g. America/New_York)"
                ));
                chrono_tz::America::New_York
            }),
        };

        let clinic_days = match get("CLINIC_DAYS") {
            None => vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            Some(list) => parse_weekdays(&list).unwrap_or_else(|message| {
                errors.push(message);
                Vec::new()
            }),
        };

        let mut time = |key: &str, default: NaiveTime| match get(key) {
            None => default,
            Some(text) => NaiveTime::parse_from_str(text.trim(), "%H:%M").unwrap_or_else(|_| {
                errors.push(format!("{key} `{text}` is not a time of day as HH:MM (24-hour)"));
                default
            }),
        };
        let morning_start = time("MORNING_START", hm(8, 0));
        let morning_end = time("MORNING_END", hm(12, 0));
        let afternoon_start = time("AFTERNOON_START", hm(13, 0));
        let afternoon_end = time("AFTERNOON_END", hm(17, 0));
        let session_rules = [
            (
                morning_start < afternoon_start,
                "MORNING_START",
                morning_start,
                "earlier than AFTERNOON_START",
                afternoon_start,
            ),
            (
                morning_end > morning_start,
                "MORNING_END",
                morning_end,
                "later than MORNING_START",
                morning_start,
            ),
            (
                afternoon_end > afternoon_start,
                "AFTERNOON_END",
                afternoon_end,
                "later than AFTERNOON_START",
                afternoon_start,
            ),
            (
                morning_end <= afternoon_start,
                "MORNING_END",
                morning_end,
                "no later than AFTERNOON_START",
                afternoon_start,
            ),
        ];
        for (holds, key, value, rule, other) in session_rules {
            if !holds {
                errors.push(format!(
                    "{key} ({}) must be {rule} ({})",
                    value.format("%H:%M"),
                    other.format("%H:%M")
                ));
            }
        }

        let mut number = |key: &str, default: u32, min: u32, max: u32| match get(key) {
            None => default,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    errors
                        .push(format!("{key} `{text}` must be a whole number from {min} to {max}"));
                    default
                }
            },
        };
        let body_timeout_ms = number("BODY_TIMEOUT_MS", 10_000, 10, 600_000);
        let auth_failure_limit = number("AUTH_FAILURE_LIMIT", 20, 0, 1_000_000);
        let auth_failure_window_seconds = number("AUTH_FAILURE_WINDOW_SECONDS", 60, 1, 86_400);
        let rate_limit_per_minute = number("RATE_LIMIT_PER_MINUTE", 1200, 0, 10_000_000);
        let idempotency_key_ttl_hours = number("IDEMPOTENCY_KEY_TTL_HOURS", 24, 1, 24 * 30);
        let cors_max_age_seconds = number("CORS_MAX_AGE_SECONDS", 600, 0, 86_400);
        let access_token_lifetime_seconds = number("ACCESS_TOKEN_LIFETIME_SECONDS", 300, 30, 3600);
        let webhook_disable_after_hours = number("WEBHOOK_DISABLE_AFTER_HOURS", 72, 1, 8760);
        let booking_horizon_weeks = number("BOOKING_HORIZON_WEEKS", 26, 1, 104);
        let screening_valid_days = number("SCREENING_VALID_DAYS", 30, 1, 3650);
        let referral_valid_days = number("REFERRAL_VALID_DAYS", 365, 1, 3650);
        let attestation_valid_days = number("ATTESTATION_VALID_DAYS", 365, 1, 3650);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let db_pool_size = number("DB_POOL_SIZE", default_pool_size(&database, cores), 1, 256);
        let jwt_max_lifetime_minutes = number(
            "JWT_MAX_LIFETIME_MINUTES",
            DEFAULT_JWT_MAX_LIFETIME_MINUTES,
            1,
            JWT_MAX_LIFETIME_MINUTES_LIMIT,
        );
        let max_body_bytes = number("MAX_BODY_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024) as usize;
        let audit_retention_days = audit_retention_days(&lookup).unwrap_or_else(|message| {
            errors.push(message);
            DEFAULT_AUDIT_RETENTION_DAYS
        });

        let response_improvement = match get("RESPONSE_IMPROVEMENT_FRACTION") {
            None => 0.3,
            Some(text) => match text.trim().parse::<f64>() {
                Ok(f) if (0.0..=1.0).contains(&f) => f,
                _ => {
                    errors.push(format!(
                        "RESPONSE_IMPROVEMENT_FRACTION `{text}` must be a number from 0 to 1 (0.3 is 30%)"
                    ));
                    0.3
                }
            },
        };
        let tls_terminated = match get("TLS_TERMINATED").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            Some(other) => {
                errors.push(format!("TLS_TERMINATED must be `true` or `false`, not `{other}`"));
                false
            }
        };
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .filter_map(|address| match address.parse::<IpAddr>() {
                    Ok(ip) => Some(ip.to_canonical()),
                    Err(_) => {
                        errors.push(format!(
                            "TRUSTED_PROXIES: `{address}` is not an IP address (list addresses, not names or networks)"
                        ));
                        None
                    }
                })
                .collect(),
        };
        let jwt_issuer = get("JWT_ISSUER").unwrap_or_else(|| "infusion-api".into());
        let trusted_issuers = match get("TRUSTED_ISSUERS_FILE") {
            None => Vec::new(),
            Some(path) => trusted_issuers(std::path::Path::new(path.trim())).unwrap_or_else(|e| {
                errors.extend(e);
                Vec::new()
            }),
        };
        if trusted_issuers.iter().any(|issuer| issuer.issuer == jwt_issuer) {
            errors.push(format!(
                "TRUSTED_ISSUERS_FILE lists `{jwt_issuer}`, this server's own JWT_ISSUER: a provider needs an `iss` of its own"
            ));
        }
        let cors_origins = cors_origins(get("CORS_ALLOWED_ORIGINS").as_deref(), app_env)
            .unwrap_or_else(|mut messages| {
                errors.append(&mut messages);
                CorsOrigins::default()
            });
        let demo_clinic = match (get("DEMO_CLINIC").map(|v| v.trim().to_ascii_lowercase()), app_env)
        {
            (None, env) => env == AppEnv::Development,
            (Some(v), AppEnv::Development) if v == "true" || v == "1" => true,
            (Some(v), _) if v == "false" || v == "0" => false,
            (Some(v), AppEnv::Production) if v == "true" || v == "1" => {
                errors.push(
                    "DEMO_CLINIC=true is for development only (APP_ENV=development): production never seeds a demo clinic"
                        .into(),
                );
                false
            }
            (Some(other), _) => {
                errors.push(format!("DEMO_CLINIC must be `true` or `false`, not `{other}`"));
                false
            }
        };
        let bind_addr = get("BIND_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into());
        if jwt_secret_is_development && !is_loopback(&bind_addr) {
            errors.push(format!(
                "BIND_ADDR {bind_addr} is not a loopback address: the public development JWT secret is only allowed on 127.0.0.1, ::1 or localhost; set JWT_SECRET"
            ));
        }

        let signing_key = match (get("SIGNING_KEY_FILE"), app_env) {
            (Some(path), _) => {
                Some(SigningKeyFile { path: PathBuf::from(path.trim()), generate: false })
            }
            (None, AppEnv::Development) => Some(SigningKeyFile {
                path: PathBuf::from(DEFAULT_SIGNING_KEY_PATH),
                generate: true,
            }),
            (None, AppEnv::Production) => None,
        };
        let retired_signing_keys = get("RETIRED_SIGNING_KEY_FILES")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let public_url_given = get("PUBLIC_URL").is_some();
        let public_url = match get("PUBLIC_URL") {
            Some(url) => match public_url(url.trim()) {
                Ok(url) => Some(url),
                Err(e) => {
                    errors.push(format!("PUBLIC_URL: {e}"));
                    None
                }
            },
            None if app_env == AppEnv::Development => {
                Some(format!("http://{}", bind_addr.replace("0.0.0.0", "127.0.0.1")))
            }
            None => None,
        };
        if app_env == AppEnv::Production && signing_key.is_some() && !public_url_given {
            errors.push(
                "SIGNING_KEY_FILE is set without PUBLIC_URL: clients sign their assertions for the token endpoint's URL, `{PUBLIC_URL}/oauth/token`"
                    .into(),
            );
        }
        if u64::from(access_token_lifetime_seconds) > u64::from(jwt_max_lifetime_minutes) * 60 {
            errors.push(
                "ACCESS_TOKEN_LIFETIME_SECONDS is longer than JWT_MAX_LIFETIME_MINUTES allows a token to live"
                    .into(),
            );
        }

        let webhook_allow_private =
            match get("WEBHOOK_ALLOW_PRIVATE").map(|v| v.trim().to_ascii_lowercase()) {
                None => false,
                Some(v) if v == "true" || v == "1" => true,
                Some(v) if v == "false" || v == "0" => false,
                Some(other) => {
                    errors.push(format!(
                        "WEBHOOK_ALLOW_PRIVATE must be `true` or `false`, not `{other}`"
                    ));
                    false
                }
            };
        let webhook_retry_schedule = match get("WEBHOOK_RETRY_SCHEDULE") {
            None => DEFAULT_WEBHOOK_RETRY_SCHEDULE.to_vec(),
            Some(list) => {
                let parsed: Result<Vec<u32>, _> =
                    list.split(',').map(|s| s.trim().parse::<u32>()).collect();
                match parsed {
                    Ok(waits)
                        if !waits.is_empty()
                            && waits.len() <= 30
                            && waits.iter().all(|w| (1..=86_400).contains(w)) =>
                    {
                        waits
                    }
                    _ => {
                        errors.push(format!(
                            "WEBHOOK_RETRY_SCHEDULE must be 1 to 30 comma-separated waits of 1 to 86400 seconds, not `{list}`"
                        ));
                        DEFAULT_WEBHOOK_RETRY_SCHEDULE.to_vec()
                    }
                }
            }
        };

        let settings = Settings {
            app_env,
            database,
            bind_addr,
            jwt_secret,
            jwt_secret_is_development,
            jwt_issuer,
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "infusion-api".into()),
            jwt_max_lifetime_minutes,
            clinic_timezone,
            clinic_days,
            morning_start,
            morning_end,
            afternoon_start,
            afternoon_end,
            booking_horizon_weeks,
            screening_valid_days,
            referral_valid_days,
            attestation_valid_days,
            db_pool_size,
            response_improvement,
            max_body_bytes,
            audit_retention_days,
            body_timeout: Duration::from_millis(body_timeout_ms.into()),
            tls_terminated,
            trusted_proxies,
            auth_failure_limit,
            auth_failure_window: Duration::from_secs(auth_failure_window_seconds.into()),
            rate_limit_per_minute,
            idempotency_key_ttl_hours,
            cors_origins,
            cors_max_age_seconds,
            demo_clinic,
            trusted_issuers,
            signing_key,
            retired_signing_keys,
            public_url,
            access_token_lifetime_seconds,
            webhook_allow_private,
            webhook_retry_schedule,
            webhook_disable_after_hours,
        };
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError(errors))
        }
    }
}

/// `CORS_ALLOWED_ORIGINS` in `app_env`: comma-separated exact origins, or
/// `*` in development; development adds loopback on any port. Every bad
/// entry is named.
fn cors_origins(list: Option<&str>, app_env: AppEnv) -> Result<CorsOrigins, Vec<String>> {
    let development = app_env == AppEnv::Development;
    let mut origins = CorsOrigins { loopback: development, ..CorsOrigins::default() };
    let mut errors = Vec::new();
    for entry in list.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if entry == "*" {
            if development {
                origins.any = true;
            } else {
                errors.push(
                    "CORS_ALLOWED_ORIGINS: `*` (any origin) is allowed in development only: list the origins of your front-ends"
                        .into(),
                );
            }
            continue;
        }
        match parse_origin(entry) {
            Ok(origin) if !origins.exact.contains(&origin) => origins.exact.push(origin),
            Ok(_) => {}
            Err(why) => errors.push(format!(
                "CORS_ALLOWED_ORIGINS: `{entry}` is not an origin ({why}); write `https://app.example.org` or `http://host:port`"
            )),
        }
    }
    if errors.is_empty() {
        Ok(origins)
    } else {
        Err(errors)
    }
}

/// Fewer distinct characters than this make a secret plainly weak.
const MIN_DISTINCT_SECRET_CHARACTERS: usize = 10;

/// So few runs of neighbouring characters make a secret plainly weak.
const MAX_SECRET_RUNS: usize = 4;

/// The rule a secret breaks if it is plainly weak, and how: what people type
/// by hand as a placeholder (`aaaa…`, `secretsecret…`, `abcdef…`, `0123…`).
/// Not a strength meter: any random secret of 32 or more characters passes.
fn weakness(secret: &str) -> Option<(String, String)> {
    let bytes = secret.as_bytes();
    let distinct = bytes.iter().collect::<std::collections::BTreeSet<_>>().len();
    if distinct < MIN_DISTINCT_SECRET_CHARACTERS {
        return Some((
            format!("at least {MIN_DISTINCT_SECRET_CHARACTERS} distinct characters"),
            format!("it has {distinct}"),
        ));
    }
    // A piece repeated: every byte equals the one a period before it.
    if let Some(period) = (1..=bytes.len() / 2)
        .find(|&p| bytes.iter().skip(p).zip(bytes).all(|(later, earlier)| later == earlier))
    {
        return Some((
            "no repeated piece".into(),
            format!("it repeats its first {period} characters"),
        ));
    }
    // Runs of neighbouring characters: each byte one above or below the one before.
    let runs = 1 + bytes.windows(2).filter(|w| w[0].abs_diff(w[1]) != 1).count();
    if runs <= MAX_SECRET_RUNS {
        return Some((
            format!("more than {MAX_SECRET_RUNS} runs of neighbouring characters"),
            format!("it is {runs} run(s) such as `abcd…`, `0123…` or `9876…`"),
        ));
    }
    None
}

/// Whether a `host:port` listens on loopback only.
fn is_loopback(bind_addr: &str) -> bool {
    let host = bind_addr
        .rsplit_once(':')
        .map_or(bind_addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN)
}

fn parse_weekdays(list: &str) -> Result<Vec<Weekday>, String> {
    let mut days = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let day = name.parse::<Weekday>().map_err(|_| {
            format!("CLINIC_DAYS: `{name}` is not a weekday (use mon,tue,wed,thu,fri,sat,sun)")
        })?;
        if days.contains(&day) {
            return Err(format!("CLINIC_DAYS names `{name}` twice"));
        }
        days.push(day);
    }
    if days.is_empty() {
        return Err("CLINIC_DAYS must name at least one weekday".into());
    }
    days.sort_by_key(|d| d.num_days_from_monday());
    Ok(days)
}

/// Connections per process when `DB_POOL_SIZE` is unset: 8 on PostgreSQL;
/// on SQLite one more than the machine's cores, and no more than 8. SQLite
/// admits one writer at a time, so connections beyond the cores only let the
/// scheduler pause the writer whose turn it is while the others wait on it:
/// on 2 cores, 3 connections booked 10% faster than 8, with a p99 of 17.5 ms
/// against 23.5 (`make bench`'s booking scenario, interleaved runs).
pub fn default_pool_size(database: &DatabaseTarget, cores: usize) -> u32 {
    match database {
        DatabaseTarget::Postgres(_) => 8,
        DatabaseTarget::Sqlite(_) => u32::try_from(cores).map_or(8, |n| n.saturating_add(1).min(8)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|key| map.get(key).cloned())
    }

    fn errors(pairs: &[(&str, &str)]) -> Vec<String> {
        match settings(pairs) {
            Ok(_) => Vec::new(),
            Err(SettingsError(errors)) => errors,
        }
    }

    const SECRET: (&str, &str) = ("JWT_SECRET", "k7Qw9zR2pL4xV8nB1mT6yH3cF5jD0sGe");

    #[test]
    fn the_pool_of_sqlite_follows_the_cores_and_postgres_keeps_eight() {
        let sqlite = DatabaseTarget::Sqlite("data/x.db".into());
        let postgres = DatabaseTarget::parse("postgres://u@h/db").unwrap();
        for (database, cores, size) in [
            (&sqlite, 1, 2),
            (&sqlite, 2, 3),
            (&sqlite, 7, 8),
            (&sqlite, 64, 8),
            (&postgres, 2, 8),
            (&postgres, 64, 8),
        ] {
            assert_eq!(default_pool_size(database, cores), size, "{database:?} on {cores} cores");
        }
        let chosen = settings(&[SECRET, ("DB_POOL_SIZE", "5")]).unwrap();
        assert_eq!(chosen.db_pool_size, 5);
    }

    #[test]
    fn defaults_follow_the_domain() {
        let s = settings(&[SECRET]).unwrap();
        assert_eq!(s.clinic_timezone, chrono_tz::America::New_York);
        assert_eq!(s.clinic_days.len(), 5);
        assert_eq!(s.morning_start, hm(8, 0));
        assert_eq!(s.morning_end, hm(12, 0));
        assert_eq!(s.afternoon_start, hm(13, 0));
        assert_eq!(s.afternoon_end, hm(17, 0));
        assert_eq!(s.booking_horizon_weeks, 26);
        assert_eq!(s.screening_valid_days, 30);
        assert_eq!(s.referral_valid_days, 365);
        assert_eq!(s.bind_addr, "127.0.0.1:8080");
        assert_eq!(s.database, DatabaseTarget::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH)));
        assert_eq!(s.app_env, AppEnv::Production);
        assert_eq!(s.jwt_max_lifetime_minutes, 720);
    }

    #[test]
    fn production_without_secret_is_refused_and_development_uses_the_fixed_one() {
        let errs = errors(&[]);
        assert!(errs.iter().any(|e| e.contains("JWT_SECRET is not set")), "{errs:?}");
        let dev = settings(&[("APP_ENV", "development")]).unwrap();
        assert!(dev.jwt_secret_is_development);
        assert_eq!(dev.jwt_secret.expose(), DEVELOPMENT_JWT_SECRET);
    }

    #[test]
    fn every_bad_value_is_named() {
        let errs = errors(&[
            SECRET,
            ("DATABASE_URL", "mysql://localhost/db"),
            ("CLINIC_TIMEZONE", "Mars/Olympus"),
            ("MORNING_START", "8am"),
            ("DB_POOL_SIZE", "0"),
            ("CLINIC_DAYS", "mon,funday"),
            ("APP_ENV", "staging"),
        ]);
        for needle in [
            "unsupported scheme `mysql`",
            "Mars/Olympus",
            "MORNING_START `8am`",
            "DB_POOL_SIZE `0`",
            "funday",
            "staging",
        ] {
            assert!(errs.iter().any(|e| e.contains(needle)), "{needle}: {errs:?}");
        }
        assert_eq!(errs.len(), 6);
    }

    #[test]
    fn the_development_secret_stays_on_loopback() {
        let dev = |addr: &str| settings(&[("APP_ENV", "development"), ("BIND_ADDR", addr)]);
        assert!(dev("127.0.0.1:8080").is_ok());
        assert!(dev("[::1]:8080").is_ok());
        assert!(dev("localhost:9000").is_ok());
        assert!(errors(&[("APP_ENV", "development"), ("BIND_ADDR", "0.0.0.0:8080")])[0]
            .contains("loopback"));
        let with_secret =
            settings(&[("APP_ENV", "development"), ("BIND_ADDR", "0.0.0.0:8080"), SECRET]);
        assert!(with_secret.is_ok());
    }

    #[test]
    fn morning_must_precede_afternoon() {
        let errs = errors(&[SECRET, ("MORNING_START", "14:00")]);
        assert!(errs[0].contains("earlier than AFTERNOON_START"), "{errs:?}");
    }

    /// Settings as sent, and the errors they must give.
    type Case = (&'static [(&'static str, &'static str)], &'static [&'static str]);

    #[test]
    fn each_session_ends_after_it_starts_and_the_morning_before_the_afternoon() {
        #[rustfmt::skip]
        let table: [Case; 8] = [
            (&[], &[]),
            (&[("MORNING_END", "13:00")], &[]),
            (&[("MORNING_START", "07:30"), ("MORNING_END", "11:45"), ("AFTERNOON_START", "12:30"),
               ("AFTERNOON_END", "18:15")], &[]),
            (&[("MORNING_END", "08:00")], &["MORNING_END (08:00) must be later than MORNING_START (08:00)"]),
            (&[("MORNING_END", "07:00")], &["MORNING_END (07:00) must be later than MORNING_START (08:00)"]),
            (&[("AFTERNOON_END", "12:00")], &["AFTERNOON_END (12:00) must be later than AFTERNOON_START (13:00)"]),
            (&[("MORNING_END", "13:30")], &["MORNING_END (13:30) must be no later than AFTERNOON_START (13:00)"]),
            (&[("MORNING_END", "noon"), ("AFTERNOON_END", "5pm")],
                &["MORNING_END `noon` is not a time of day as HH:MM (24-hour)",
                  "AFTERNOON_END `5pm` is not a time of day as HH:MM (24-hour)"]),
        ];
        for (pairs, expected) in table {
            let pairs: Vec<_> = [SECRET].into_iter().chain(pairs.iter().copied()).collect();
            assert_eq!(errors(&pairs), expected.to_vec(), "{pairs:?}");
        }
    }

    #[test]
    fn short_secret_is_refused_and_secrets_never_print() {
        assert!(errors(&[("JWT_SECRET", "short")])[0].contains("32"));
        let s = settings(&[SECRET, ("DATABASE_URL", "postgres://u:pw@h/db")]).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains(SECRET.1));
        assert!(!printed.contains("pw@h"));
    }

    #[test]
    fn database_url_schemes() {
        assert!(matches!(
            DatabaseTarget::parse("postgresql://h/db"),
            Ok(DatabaseTarget::Postgres(_))
        ));
        assert_eq!(
            DatabaseTarget::parse("sqlite://data/x.db"),
            Ok(DatabaseTarget::Sqlite("data/x.db".into()))
        );
        assert_eq!(
            DatabaseTarget::parse("/tmp/x.db"),
            Ok(DatabaseTarget::Sqlite("/tmp/x.db".into()))
        );
        assert!(DatabaseTarget::parse("sqlite://:memory:").is_err());
        assert!(DatabaseTarget::parse("redis://h").is_err());
    }

    #[test]
    fn the_http_limits_default_to_generous_values_and_parse() {
        let s = settings(&[SECRET]).unwrap();
        assert_eq!(s.body_timeout, Duration::from_secs(10));
        assert!(!s.tls_terminated);
        assert!(s.trusted_proxies.is_empty());
        assert_eq!((s.auth_failure_limit, s.auth_failure_window), (20, Duration::from_secs(60)));
        assert_eq!(s.rate_limit_per_minute, 1200);

        let s = settings(&[
            SECRET,
            ("BODY_TIMEOUT_MS", "250"),
            ("TLS_TERMINATED", "TRUE"),
            ("TRUSTED_PROXIES", "127.0.0.1, ::1,::ffff:10.0.0.7"),
            ("AUTH_FAILURE_LIMIT", "0"),
            ("AUTH_FAILURE_WINDOW_SECONDS", "600"),
            ("RATE_LIMIT_PER_MINUTE", "0"),
        ])
        .unwrap();
        assert_eq!(s.body_timeout, Duration::from_millis(250));
        assert!(s.tls_terminated);
        let proxies: Vec<IpAddr> =
            ["127.0.0.1", "::1", "10.0.0.7"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(s.trusted_proxies, proxies, "an IPv4-mapped address is held as IPv4");
        assert_eq!((s.auth_failure_limit, s.auth_failure_window), (0, Duration::from_secs(600)));
        assert_eq!(s.rate_limit_per_minute, 0);
    }

    #[test]
    fn every_bad_http_limit_is_named() {
        let errs = errors(&[
            SECRET,
            ("BODY_TIMEOUT_MS", "2.5s"),
            ("TLS_TERMINATED", "yes please"),
            ("TRUSTED_PROXIES", "127.0.0.1,proxy.internal,10.0.0.0/8"),
            ("AUTH_FAILURE_LIMIT", "-1"),
            ("AUTH_FAILURE_WINDOW_SECONDS", "0"),
            ("RATE_LIMIT_PER_MINUTE", "lots"),
        ]);
        for needle in [
            "BODY_TIMEOUT_MS `2.5s`",
            "TLS_TERMINATED must be `true` or `false`, not `yes please`",
            "`proxy.internal` is not an IP address",
            "`10.0.0.0/8` is not an IP address",
            "AUTH_FAILURE_LIMIT `-1`",
            "AUTH_FAILURE_WINDOW_SECONDS `0`",
            "RATE_LIMIT_PER_MINUTE `lots`",
        ] {
            assert!(errs.iter().any(|e| e.contains(needle)), "{needle}: {errs:?}");
        }
        assert_eq!(errs.len(), 7, "{errs:?}");
    }

    #[test]
    fn clinic_days_parse_in_week_order() {
        let s = settings(&[SECRET, ("CLINIC_DAYS", "fri, mon,wed")]).unwrap();
        assert_eq!(s.clinic_days, vec![Weekday::Mon, Weekday::Wed, Weekday::Fri]);
        assert!(errors(&[SECRET, ("CLINIC_DAYS", "mon,mon")])[0].contains("twice"));
    }

    #[test]
    fn production_refuses_the_development_secret() {
        let errs = errors(&[("JWT_SECRET", DEVELOPMENT_JWT_SECRET)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("rule: not the development secret"), "{errs:?}");
        // Given explicitly in development, it is still the development
        // secret: held to loopback like the built-in one.
        let dev = settings(&[("APP_ENV", "development"), ("JWT_SECRET", DEVELOPMENT_JWT_SECRET)]);
        assert!(dev.unwrap().jwt_secret_is_development);
        let exposed = errors(&[
            ("APP_ENV", "development"),
            ("JWT_SECRET", DEVELOPMENT_JWT_SECRET),
            ("BIND_ADDR", "0.0.0.0:8080"),
        ]);
        assert!(exposed[0].contains("loopback"), "{exposed:?}");
    }

    #[test]
    fn production_refuses_plainly_weak_secrets_and_names_the_rule() {
        let many_a = "a".repeat(32);
        let two_letters = "ab".repeat(16);
        let repeated = "0123456789abcdef".repeat(2);
        let placeholder = "change-me-now!".repeat(3);
        for (secret, rule) in [
            (many_a.as_str(), "rule: at least 10 distinct characters; it has 1"),
            (two_letters.as_str(), "rule: at least 10 distinct characters; it has 2"),
            (repeated.as_str(), "rule: no repeated piece; it repeats its first 16 characters"),
            (placeholder.as_str(), "rule: no repeated piece; it repeats its first 14 characters"),
            ("abcdefghijklmnopqrstuvwxyz012345", "rule: more than 4 runs of neighbouring"),
            ("0123456789abcdefghijklmnopqrstuvwxyz", "rule: more than 4 runs of neighbouring"),
            ("zyxwvutsrqponmlkjihgfedcba9876543210", "rule: more than 4 runs of neighbouring"),
        ] {
            let errs = errors(&[("JWT_SECRET", secret)]);
            assert_eq!(errs.len(), 1, "{secret}: {errs:?}");
            assert!(errs[0].contains("plainly weak") && errs[0].contains(rule), "{errs:?}");
            assert!(!errs[0].contains(secret), "the secret is printed: {errs:?}");
            // Development takes any secret of 32 characters.
            assert!(settings(&[("APP_ENV", "development"), ("JWT_SECRET", secret)]).is_ok());
        }
        // Random secrets pass, and so do those the tests, the benchmarks and
        // the fuzzing use.
        for secret in [
            SECRET.1,
            "test-secret-0123456789abcdef-0123456789",
            "3q2+7wAAAAB1c2VyLXNlY3JldC0xMjM0NTY3ODkwYWJj",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "fuzz-5b1e0c7a9d3f2e4c8a6b0d1f3e5c7a9b2d4f6e8a0c1b3d5f7e9a2c4b6d8f0e1a",
        ] {
            assert!(settings(&[("JWT_SECRET", secret)]).is_ok(), "{secret}");
        }
    }

    #[test]
    fn the_maximum_token_lifetime_is_bounded() {
        let s = settings(&[SECRET, ("JWT_MAX_LIFETIME_MINUTES", "60")]).unwrap();
        assert_eq!(s.jwt_max_lifetime_minutes, 60);
        for bad in ["0", "525601", "12h", "-5"] {
            let errs = errors(&[SECRET, ("JWT_MAX_LIFETIME_MINUTES", bad)]);
            assert!(
                errs.len() == 1
                    && errs[0].contains("JWT_MAX_LIFETIME_MINUTES")
                    && errs[0].contains("1 to 525600"),
                "{bad}: {errs:?}"
            );
        }
    }

    #[test]
    fn cors_is_off_unless_origins_are_listed_or_in_development() {
        let s = settings(&[SECRET]).unwrap();
        assert!(!s.cors_origins.is_on());
        assert_eq!(s.cors_max_age_seconds, 600);
        let s = settings(&[SECRET, ("CORS_ALLOWED_ORIGINS", " , ")]).unwrap();
        assert!(!s.cors_origins.is_on(), "an empty list is off");
        let s = settings(&[
            SECRET,
            (
                "CORS_ALLOWED_ORIGINS",
                "https://App.Example.org, http://10.0.0.7:3000,https://app.example.org",
            ),
            ("CORS_MAX_AGE_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(
            s.cors_origins,
            CorsOrigins {
                exact: vec!["https://app.example.org".into(), "http://10.0.0.7:3000".into()],
                any: false,
                loopback: false,
            }
        );
        assert_eq!(s.cors_max_age_seconds, 60);
        let dev = settings(&[("APP_ENV", "development")]).unwrap();
        assert_eq!(dev.cors_origins, CorsOrigins { loopback: true, ..CorsOrigins::default() });
        let dev = settings(&[("APP_ENV", "development"), ("CORS_ALLOWED_ORIGINS", "*")]).unwrap();
        assert!(dev.cors_origins.any && dev.cors_origins.loopback);
    }

    #[test]
    fn production_refuses_any_origin_and_every_malformed_origin_is_named() {
        let errs = errors(&[SECRET, ("CORS_ALLOWED_ORIGINS", "*")]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("`*` (any origin) is allowed in development only"), "{errs:?}");
        let errs = errors(&[
            SECRET,
            (
                "CORS_ALLOWED_ORIGINS",
                "https://ok.example, https://app.example/, app.example, https://app.example/path, \
                 https://u:p@app.example, https://app.example:443, http://app.example:99999, \
                 https://bad_host.example, 1http://x.example, null",
            ),
            ("CORS_MAX_AGE_SECONDS", "forever"),
        ]);
        for needle in [
            "`https://app.example/` is not an origin (an origin has no path",
            "`app.example` is not an origin (it is not `scheme://host[:port]`)",
            "`https://app.example/path` is not an origin",
            "`https://u:p@app.example` is not an origin (an origin has no user name",
            "`https://app.example:443` is not an origin (leave out the default port :443",
            "`http://app.example:99999` is not an origin (`99999` is not a port",
            "`https://bad_host.example` is not an origin",
            "`1http://x.example` is not an origin (`1http` is not a URL scheme)",
            "`null` is not an origin",
            "CORS_MAX_AGE_SECONDS `forever`",
        ] {
            assert!(errs.iter().any(|e| e.contains(needle)), "{needle}: {errs:?}");
        }
        assert_eq!(errs.len(), 10, "{errs:?}");
    }

    #[test]
    fn origins_parse_as_browsers_send_them() {
        for (text, parsed) in [
            ("https://app.example.org", "https://app.example.org"),
            ("HTTP://LOCALHOST:5173", "http://localhost:5173"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("capacitor://localhost", "capacitor://localhost"),
            ("http://app.example:443", "http://app.example:443"),
        ] {
            assert_eq!(parse_origin(text).as_deref(), Ok(parsed), "{text}");
        }
        for text in ["", "https://", "https://:80", "http://[::1", "https://a..b", "https://-a.b"] {
            assert!(parse_origin(text).is_err(), "{text}");
        }
    }

    #[test]
    fn the_demo_clinic_is_for_development_only() {
        assert!(!settings(&[SECRET]).unwrap().demo_clinic);
        assert!(!settings(&[SECRET, ("DEMO_CLINIC", "false")]).unwrap().demo_clinic);
        let errs = errors(&[SECRET, ("DEMO_CLINIC", "true")]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("DEMO_CLINIC=true is for development only"), "{errs:?}");
        let dev = |value: &str| {
            settings(&[("APP_ENV", "development"), ("DEMO_CLINIC", value)]).map(|s| s.demo_clinic)
        };
        assert!(settings(&[("APP_ENV", "development")]).unwrap().demo_clinic);
        assert!(dev("TRUE").unwrap() && dev("1").unwrap());
        assert!(!dev("false").unwrap() && !dev("0").unwrap());
        assert!(dev("maybe").is_err());
    }

    #[test]
    fn trusted_issuers_are_checked_at_start() {
        let file = |name: &str, text: &str| {
            let path =
                std::env::temp_dir().join(format!("{}-{name}", uuid::Uuid::now_v7().simple()));
            std::fs::write(&path, text).unwrap();
            path
        };
        let good = serde_json::json!({
            "issuer": "https://idp.example.org", "audience": "infusion-api",
            "jwks_file": "tests/fixtures/idp/jwks.json", "algorithms": ["RS256"],
            "role_claim": "realm_access.roles", "roles": [{"group": "desk", "role": "scheduler"}]
        });
        let with = |changes: serde_json::Value| {
            let mut issuer = good.clone();
            for (k, v) in changes.as_object().unwrap() {
                issuer[k] = v.clone();
            }
            issuer
        };
        let path = file("good.json", &serde_json::json!([good]).to_string());
        assert_eq!(trusted_issuers(&path).unwrap().len(), 1);
        // (issuer, a word the message must hold)
        let table = [
            (with(serde_json::json!({"algorithms": ["HS256"]})), "never HS"),
            (with(serde_json::json!({"algorithms": []})), "at least one"),
            (with(serde_json::json!({"roles": [{"group": "p", "role": "patient"}]})), "patient"),
            (with(serde_json::json!({"roles": []})), "at least one group"),
            (with(serde_json::json!({"role_claim": "realm_access..roles"})), "dotted path"),
            (
                with(serde_json::json!({"jwks_file": "tests/fixtures/idp/missing.json"})),
                "missing.json",
            ),
            (with(serde_json::json!({"jwks_file": "tests/fixtures/idp/README.md"})), "not a JWKS"),
            (with(serde_json::json!({"issuer": " "})), "blank"),
            (with(serde_json::json!({"jwks_url": "https://idp.example.org/certs"})), "one of"),
            (
                with(
                    serde_json::json!({"jwks_file": null, "jwks_url": "http://idp.example.org/certs"}),
                ),
                "https",
            ),
        ];
        for (issuer, word) in table {
            let path = file("bad.json", &serde_json::json!([issuer]).to_string());
            let errors = trusted_issuers(&path).unwrap_err();
            assert!(errors.iter().any(|e| e.contains(word)), "{word}: {errors:?}");
        }
        // Not this server's own issuer: its tokens are HS256 with JWT_SECRET.
        let ours = file(
            "ours.json",
            &serde_json::json!([with(serde_json::json!({"issuer": "infusion-api"}))]).to_string(),
        );
        let lookup = |key: &str| match key {
            "JWT_SECRET" => Some("k7Qw9zR2pL4xV8nB1mT6yH3cF5jD0sGe".to_owned()),
            "TRUSTED_ISSUERS_FILE" => Some(ours.display().to_string()),
            _ => None,
        };
        let errors = Settings::from_lookup(lookup).unwrap_err().0;
        assert!(errors.iter().any(|e| e.contains("JWT_ISSUER")), "{errors:?}");
        let twice = file("twice.json", &serde_json::json!([good, good]).to_string());
        assert!(trusted_issuers(&twice).unwrap_err()[0].contains("listed twice"));
        let url = with(
            serde_json::json!({"jwks_file": null, "jwks_url": "https://idp.example.org/certs"}),
        );
        let by_url = file("url.json", &serde_json::json!([url]).to_string());
        assert_eq!(trusted_issuers(&by_url).unwrap()[0].jwks_file, None);
        let unknown = file(
            "unknown.json",
            &serde_json::json!([with(serde_json::json!({"jwks": {}}))]).to_string(),
        );
        assert!(trusted_issuers(&unknown).unwrap_err()[0].contains("jwks"));
    }

    #[test]
    fn a_jwks_url_is_https_or_http_to_loopback_without_a_user() {
        // (url, taken)
        let table = [
            ("https://sso.example.org/realms/c/certs", true),
            ("https://sso.example.org", true),
            ("http://127.0.0.1:8180/certs", true),
            ("http://localhost/certs", true),
            ("http://[::1]:8180/certs", true),
            ("http://sso.example.org/certs", false),
            ("http://127.0.0.1:80@evil.example/certs", false),
            ("http://127.0.0.1@evil.example/", false),
            ("http://localhost.evil.example/", false),
            ("https://user:pass@sso.example.org/", false),
            ("https://", false),
            ("ftp://127.0.0.1/certs", false),
            ("sso.example.org", false),
        ];
        for (url, taken) in table {
            assert_eq!(jwks_url(url).is_ok(), taken, "{url}");
        }
    }

    #[test]
    fn a_signing_key_needs_a_public_url_in_production_and_development_makes_both() {
        let key = ("SIGNING_KEY_FILE", "/etc/infusion-api/signing-key.pem");
        // (settings, the errors' words, or None when accepted)
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let table: [(Pairs, Option<&str>); 6] = [
            (&[SECRET], None),
            (&[SECRET, key, ("PUBLIC_URL", "https://api.clinic.example")], None),
            (&[SECRET, key], Some("without PUBLIC_URL")),
            (&[SECRET, key, ("PUBLIC_URL", "https://api.clinic.example/")], Some("trailing slash")),
            (&[SECRET, key, ("PUBLIC_URL", "api.clinic.example")], Some("not an http(s) URL")),
            (&[SECRET, ("ACCESS_TOKEN_LIFETIME_SECONDS", "7200")], Some("ACCESS_TOKEN_LIFETIME")),
        ];
        for (pairs, words) in table {
            let found = errors(pairs);
            match words {
                None => assert!(found.is_empty(), "{pairs:?}: {found:?}"),
                // One error, naming what is wrong: a bad PUBLIC_URL is not
                // also reported as a missing one.
                Some(words) => {
                    assert!(found.len() == 1 && found[0].contains(words), "{pairs:?}: {found:?}")
                }
            }
        }
        let production = settings(&[SECRET]).unwrap();
        assert_eq!((production.signing_key, production.public_url), (None, None));
        let development = settings(&[("APP_ENV", "development")]).unwrap();
        assert_eq!(
            development.signing_key,
            Some(SigningKeyFile { path: DEFAULT_SIGNING_KEY_PATH.into(), generate: true })
        );
        assert_eq!(development.public_url.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(development.access_token_lifetime_seconds, 300);
    }
}
