//! The `infusion-api` command: `serve` (the default), `migrate`, `token`,
//! `client register`, `openapi`, `audit prune`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpServer};
use clap::{Parser, Subcommand};

use infusion_api::config::{
    self, AppEnv, DatabaseTarget, Settings, DEFAULT_SQLITE_PATH, JWT_MAX_LIFETIME_MINUTES_LIMIT,
};
use infusion_api::demo::{self, Seeding};
use infusion_api::domain::access::Role;
use infusion_api::domain::audit;
use infusion_api::domain::clock::SystemClock;
use infusion_api::http::{self, auth::JwtKeys, AppState};
use infusion_api::store::{self, migrations};

#[derive(Parser)]
#[command(
    name = "infusion-api",
    version,
    about = "Intake and scheduling API for a ketamine infusion clinic"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve the API (the default).
    Serve,
    /// Apply pending migrations to DATABASE_URL and exit.
    Migrate,
    /// Print a bearer token signed with the configured JWT settings.
    Token {
        /// admin, clinician, scheduler, integration or patient.
        #[arg(long)]
        role: String,
        /// The token's subject; a patient token's is its patient id.
        #[arg(long)]
        sub: Option<String>,
        /// Minutes until the token expires: 60 by default, at most
        /// JWT_MAX_LIFETIME_MINUTES (720 by default), as the server refuses
        /// longer-lived tokens.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(JWT_MAX_LIFETIME_MINUTES_LIMIT)))]
        ttl_minutes: Option<u32>,
    },
    /// Backend clients (SMART Backend Services).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// The audit trail's upkeep.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a backend client in DATABASE_URL without a token (the first
    /// one, say), and print its id: its assertions' `iss` and `sub`.
    Register {
        /// What the client is, e.g. "Riverside EHR".
        #[arg(long)]
        name: String,
        /// A file holding the client's public JWKS.
        #[arg(long, conflicts_with = "jwks_url", required_unless_present = "jwks_url")]
        jwks: Option<std::path::PathBuf>,
        /// Or the https URL the client publishes its JWKS at.
        #[arg(long)]
        jwks_url: Option<String>,
        /// integration (the default), scheduler or clinician.
        #[arg(long, default_value = "integration")]
        role: String,
        /// A SMART v2 system scope (`system/Patient.rs`), repeated for more;
        /// by default what the integration role can do.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Delete the audit records older than AUDIT_RETENTION_DAYS (default
    /// 2190, six years) from DATABASE_URL, in one transaction.
    Prune,
}

fn main() -> ExitCode {
    if std::env::var("APP_ENV").as_deref() == Ok("development") {
        // A missing .env is normal; the environment is enough.
        let _ = dotenvy::dotenv();
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Migrate => migrate(),
        Command::Token { role, sub, ttl_minutes } => token(&role, sub, ttl_minutes),
        Command::Client {
            command: ClientCommand::Register { name, jwks, jwks_url, role, scopes },
        } => register_client(&name, jwks.as_deref(), jwks_url.as_deref(), &role, scopes),
        Command::Openapi => openapi(),
        Command::Audit { command: AuditCommand::Prune } => prune_audit(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("infusion-api: {message}");
            ExitCode::FAILURE
        }
    }
}

fn settings() -> Result<Settings, String> {
    Settings::from_env().map_err(|e| e.to_string())
}

fn serve() -> Result<(), String> {
    let settings = Arc::new(settings()?);
    log::info!(
        "starting on {} with {} ({} mode)",
        settings.bind_addr,
        settings.database.backend_name(),
        match settings.app_env {
            AppEnv::Development => "development",
            AppEnv::Production => "production",
        }
    );
    let pool = store::build_pool(&settings.database, settings.db_pool_size)
        .map_err(|e| format!("cannot open the database: {e}"))?;
    let applied = {
        let mut conn = pool.get().map_err(|e| format!("cannot open the database: {e}"))?;
        migrations::run_pending(&mut conn).map_err(|e| e.to_string())?
    };
    if !applied.is_empty() {
        log::info!("applied migrations: {}", applied.join(", "));
    }
    let state = web::Data::new(AppState::new(pool, settings.clone(), Arc::new(SystemClock))?);
    let demo_clinic = match demo::seed(&state) {
        Ok(Seeding::Seeded(clinic)) => {
            log::info!(
                "seeded a demo clinic: {} patients, course {}",
                clinic.patients,
                clinic.course_id
            );
            Some(clinic)
        }
        Ok(Seeding::Skipped) => {
            log::info!("DEMO_CLINIC=false: no demo clinic");
            None
        }
        Ok(Seeding::NotEmpty | Seeding::Production) => None,
        // A development convenience: the server is useful without it.
        Err(e) => {
            log::warn!("the demo clinic was not seeded (nothing of it was stored): {e}");
            None
        }
    };
    if settings.jwt_secret_is_development {
        log::warn!(
            "JWT_SECRET is the public DEVELOPMENT secret. Never run like this in production."
        );
        // 12 hours, or less if JWT_MAX_LIFETIME_MINUTES says so: the server
        // refuses tokens that live longer.
        let minutes = settings.jwt_max_lifetime_minutes.min(12 * 60);
        let now = chrono::Utc::now();
        let token = state
            .keys
            .issue(Role::Admin, "dev-admin", now, now + chrono::Duration::minutes(minutes.into()))
            .map_err(|e| format!("cannot sign the development token: {e}"))?;
        let lifetime = match minutes % 60 {
            0 => format!("{} h", minutes / 60),
            _ => format!("{minutes} min"),
        };
        println!();
        println!("  Swagger UI:  http://{}/swagger-ui/", settings.bind_addr);
        println!("  FHIR R4:     http://{}/fhir/R4/metadata", settings.bind_addr);
        println!("  Admin token ({lifetime}, development secret) - paste it into Authorize:");
        println!();
        println!("  {token}");
        println!();
    }
    match (&settings.public_url, state.keys.signer()) {
        (Some(url), Some(_)) => {
            log::info!("SMART Backend Services: token endpoint {url}/oauth/token");
        }
        _ => log::info!("no SIGNING_KEY_FILE: backend clients get no access tokens"),
    }
    if let Some(clinic) = demo_clinic {
        let (date, session) = clinic.bookable;
        println!(
            "  Demo clinic: {} patients in different intake states, a booked course{}.",
            clinic.patients,
            clinic.closed_on.map(|d| format!(", closed on {d}")).unwrap_or_default()
        );
        println!(
            "  Ready to book: {} ({}). Try POST /v1/appointments with",
            clinic.ready_patient_name, clinic.ready_patient_id
        );
        println!(
            "    {{\"patient_id\": \"{}\", \"date\": \"{date}\", \"session\": \"{}\"}}",
            clinic.ready_patient_id,
            session.as_str()
        );
        println!();
    }
    let serving = state.clone();
    let server = HttpServer::new(move || http::app(serving.clone()))
        // The request head must arrive within 5 s (the body within
        // BODY_TIMEOUT_MS, see `http::extract::Json`), and a client gets 2 s
        // to close its side once the answer is sent.
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(2))
        .bind(&settings.bind_addr)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.bind_addr))?;
    log::info!("listening on http://{}", settings.bind_addr);
    let pruning = state.clone();
    let stopped = actix_web::rt::System::new().block_on(async move {
        let webhooks = actix_web::rt::spawn(http::webhooks::run(pruning.clone()));
        let pruner = actix_web::rt::spawn(http::idempotency::prune_hourly(pruning));
        let stopped = server.run().await;
        pruner.abort();
        webhooks.abort();
        stopped
    });
    // A graceful stop (SIGTERM, SIGINT) stores the queued audit records.
    state.audit.close();
    stopped.map_err(|e| format!("server stopped: {e}"))
}

/// The database `DATABASE_URL` names (the embedded SQLite file by default),
/// on one connection, without the settings the server needs.
fn database() -> Result<(DatabaseTarget, store::DbPool), String> {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SQLITE_PATH.to_owned());
    let target = DatabaseTarget::parse(&url)?;
    let pool =
        store::build_pool(&target, 1).map_err(|e| format!("cannot open the database: {e}"))?;
    Ok((target, pool))
}

fn prune_audit() -> Result<(), String> {
    let days = config::audit_retention_days(|key| std::env::var(key).ok())?;
    let (target, pool) = database()?;
    let mut conn = pool.get().map_err(|e| format!("cannot open the database: {e}"))?;
    let before = audit::prune_before(chrono::Utc::now(), days)
        .ok_or_else(|| format!("AUDIT_RETENTION_DAYS {days} reaches before the calendar"))?;
    let pruned = conn
        .run(|c| store::write_transaction(c, |tx| store::audit::prune(tx, before)))
        .map_err(|e| format!("cannot prune the audit trail: {e}"))?;
    println!(
        "{}: {pruned} audit records from before {} deleted ({days} days kept)",
        target.backend_name(),
        before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    Ok(())
}

fn migrate() -> Result<(), String> {
    let (target, pool) = database()?;
    let mut conn = pool.get().map_err(|e| format!("cannot open the database: {e}"))?;
    let applied = migrations::run_pending(&mut conn).map_err(|e| e.to_string())?;
    if applied.is_empty() {
        println!("{}: up to date", target.backend_name());
    } else {
        println!("{}: applied {}", target.backend_name(), applied.join(", "));
    }
    Ok(())
}

fn token(role: &str, sub: Option<String>, ttl_minutes: Option<u32>) -> Result<(), String> {
    let role = Role::parse(role).ok_or_else(|| {
        format!("unknown role `{role}`: use admin, clinician, scheduler, integration or patient")
    })?;
    let subject = match (role, sub) {
        (Role::Patient, None) => return Err("a patient token needs --sub <patient id>".into()),
        (_, Some(sub)) if sub.trim().is_empty() => return Err("--sub must not be empty".into()),
        (_, Some(sub)) => sub,
        (role, None) => format!("{}-cli", role.as_str()),
    };
    let settings = settings()?;
    let max = settings.jwt_max_lifetime_minutes;
    let ttl_minutes = match ttl_minutes {
        None => max.min(60),
        Some(ttl) if ttl > max => {
            return Err(format!(
                "--ttl-minutes {ttl} is over JWT_MAX_LIFETIME_MINUTES ({max}): the server would refuse the token; ask for at most {max} minutes, or raise the setting"
            ))
        }
        Some(ttl) => ttl,
    };
    let now = chrono::Utc::now();
    let token = JwtKeys::new(&settings, None)
        .issue(role, &subject, now, now + chrono::Duration::minutes(ttl_minutes.into()))
        .map_err(|e| format!("cannot sign the token: {e}"))?;
    println!("{token}");
    Ok(())
}

/// Registers a client as `POST /v1/clients` would, with the same checks,
/// and an audit record naming the command as its actor.
fn register_client(
    name: &str,
    jwks: Option<&std::path::Path>,
    jwks_url: Option<&str>,
    role: &str,
    scopes: Vec<String>,
) -> Result<(), String> {
    use infusion_api::domain::client;
    let fail = |errors: Vec<infusion_api::domain::FieldError>| {
        let lines: Vec<String> =
            errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        lines.join("; ")
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err("--name must be 1 to 100 characters".into());
    }
    let role = Role::parse(role)
        .ok_or_else(|| format!("unknown role `{role}`"))
        .and_then(|role| client::client_role(role).map_err(|e| e.message))?;
    let jwks = match jwks {
        None => None,
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| format!("{}: not JSON: {e}", path.display()))?,
            )
        }
    };
    let keys = client::keys(jwks.as_ref(), jwks_url).map_err(fail)?;
    let scopes = if scopes.is_empty() {
        http::clients::DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        scopes
    };
    let scopes = client::registered_scopes(&scopes).map_err(fail)?;
    let (target, pool) = database()?;
    let mut conn = pool.get().map_err(|e| format!("cannot open the database: {e}"))?;
    migrations::run_pending(&mut conn).map_err(|e| e.to_string())?;
    let now = infusion_api::domain::clock::to_micros(chrono::Utc::now());
    let registered = conn
        .run(|c| {
            store::write_transaction(c, |tx| {
                let registered = store::clients::insert(tx, name, role, &keys, &scopes, now)?;
                let id = uuid::Uuid::now_v7().to_string();
                let event = audit::AuditEvent {
                    id: id.clone(),
                    request_id: id,
                    occurred_at: now,
                    actor: Some("infusion-api client register".into()),
                    actor_role: None,
                    client_id: None,
                    operation: "register_client".into(),
                    method: "CLI".into(),
                    path: "/v1/clients".into(),
                    status: 201,
                    patient_ids: Vec::new(),
                    records: vec![format!("client/{}", registered.id)],
                    changed: Vec::new(),
                    source: None,
                };
                store::audit::insert(tx, &[event])?;
                Ok::<_, store::StoreError>(registered)
            })
        })
        .map_err(|e| format!("cannot register the client: {e}"))?;
    println!("{}", registered.id);
    eprintln!(
        "registered `{}` in {} as {} with {}",
        registered.name,
        target.backend_name(),
        registered.role.as_str(),
        registered.scopes
    );
    Ok(())
}

fn openapi() -> Result<(), String> {
    let document = http::openapi()
        .to_pretty_json()
        .map_err(|e| format!("cannot render the OpenAPI document: {e}"))?;
    println!("{document}");
    Ok(())
}
