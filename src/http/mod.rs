//! The HTTP edge: routes, auth, errors and the OpenAPI document, all from one
//! list of handlers so the spec cannot drift from the routes. A handler
//! parses (types that refuse bad input), authorizes, reads what the domain
//! needs, asks it for a decision and has the store write it, in one
//! transaction ([`AppState::write`]), then maps the result. It holds no
//! rule: `docs/ARCHITECTURE.md` says how to add an endpoint.

pub mod appointments;
pub mod attestations;
pub mod audit;
pub mod audit_events;
pub mod auth;
pub mod availability;
pub mod billing;
pub mod clients;
pub mod closures;
pub mod conditional;
pub mod consults;
pub mod cors;
pub mod courses;
pub mod error;
pub mod events;
pub mod extract;
pub mod fhir;
pub mod health;
pub mod idempotency;
pub mod issuers;
pub mod limits;
pub mod links;
pub mod openapi;
pub mod pagination;
pub mod patients;
pub mod protocols;
pub mod readiness;
pub mod records;
pub mod referrals;
pub mod rooms;
pub mod screenings;
pub mod security;
pub mod signing;
pub mod smart;
pub mod superbill_pdf;
pub mod webhooks;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Logger};
use actix_web::{web, App, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use utoipa::OpenApi as _;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};
use utoipa_swagger_ui::SwaggerUi;

use tokio::sync::Semaphore;

use crate::config::Settings;
use crate::domain::calendar::{Calendar, Hours};
use crate::domain::clock::{self, Clock};
use crate::domain::readiness::IntakePolicy;
use crate::domain::Clinic;
use crate::store::{write_transaction, DbConnection, DbPool, StoreError};

use self::audit::{AuditLog, Note, Operations};
use self::auth::JwtKeys;
use self::error::ApiError;

/// What every handler can reach, as handlers take it.
pub type State = web::Data<AppState>;

/// What every handler answers: a response, or the problem document of an error.
pub type Answer = Result<HttpResponse, ApiError>;

/// Whether `path` is one of the API's resources, `/v1` or FHIR's: what the
/// rate limits count and `ETag`s tag.
pub fn serves_resources(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with(fhir::BASE_PATH)
}

/// 200 OK with `body`.
pub fn ok(body: impl serde::Serialize) -> Answer {
    Ok(HttpResponse::Ok().json(body))
}

/// What every handler can reach.
pub struct AppState {
    pub pool: DbPool,
    /// One permit per pooled connection, handed out first come, first
    /// served: r2d2's own wait lets a newcomer overtake a request that has
    /// waited long, which showed as p99 latencies of hundreds of
    /// milliseconds under load while the median stayed at 2 ms.
    gate: Arc<Semaphore>,
    pub settings: Arc<Settings>,
    pub keys: JwtKeys,
    pub clock: Arc<dyn Clock>,
    pub calendar: Calendar,
    pub policy: IntakePolicy,
    /// The audit records not stored with a write, on their way to the database.
    pub audit: AuditLog,
    /// This process's rate limits (`http::limits`), shared by its workers.
    pub limits: limits::Limits,
    /// The idempotency keys this process is answering now.
    pub in_flight: Arc<idempotency::InFlight>,
    /// Woken after each write a request committed: the webhook worker
    /// waits on it (`http::webhooks::run`).
    pub written: Arc<tokio::sync::Notify>,
    /// The key of the `ETag`s (`http::conditional`), the same in every
    /// process that shares the JWT secret.
    pub etag_key: [u8; 32],
    /// The keys of backend clients registered by JWKS URL, as last read.
    pub client_jwks: smart::ClientJwks,
}

impl AppState {
    /// The application on `pool`; an error when the signing key that
    /// `settings` name cannot be read (or, in development, made).
    pub fn new(
        pool: DbPool,
        settings: Arc<Settings>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let keys = JwtKeys::new(&settings, signing::Signer::load(&settings)?);
        let calendar = Calendar::new(
            settings.clinic_timezone,
            settings.clinic_days.clone(),
            Hours::new(settings.morning_start, settings.morning_end),
            Hours::new(settings.afternoon_start, settings.afternoon_end),
            settings.booking_horizon_weeks,
        );
        let policy = IntakePolicy {
            screening_valid_days: settings.screening_valid_days,
            referral_valid_days: settings.referral_valid_days,
            attestation_valid_days: settings.attestation_valid_days,
        };
        let gate = Arc::new(Semaphore::new(pool.max_size() as usize));
        let audit = AuditLog::start(&settings.database, pool.clone());
        let limits = limits::Limits::new(&settings);
        let in_flight = Arc::default();
        let etag_key = conditional::etag_key(settings.jwt_secret.expose());
        Ok(Self {
            pool,
            gate,
            settings,
            keys,
            clock,
            calendar,
            policy,
            audit,
            limits,
            in_flight,
            written: Arc::default(),
            etag_key,
            client_jwks: smart::ClientJwks::default(),
        })
    }

    /// Runs synchronous database work on the blocking pool.
    pub async fn db<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let waited = tokio::time::timeout(self.pool.connection_timeout(), self.gate.acquire());
        let _permit = match waited.await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => {
                return Err(ApiError::Unavailable("the database gate is closed".into()))
            }
            Err(_elapsed) => {
                return Err(ApiError::Unavailable(
                    "no database connection became free in time".into(),
                ))
            }
        };
        let pool = self.pool.clone();
        let result = web::block(move || {
            let mut conn = pool.get()?;
            let result = conn.run(work);
            if let Err(StoreError::Database(_) | StoreError::Unavailable(_)) = &result {
                conn.mark_suspect();
            }
            result
        })
        .await?;
        Ok(result?)
    }

    /// Runs `work` in one write transaction: what it reads, what the domain
    /// decides on it and what the store writes commit together, or nothing
    /// does.
    pub async fn write<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.db(move |conn| write_transaction(conn, work)).await
    }

    /// The clinic as decisions see it, now.
    pub fn clinic(&self) -> Clinic {
        Clinic {
            calendar: self.calendar.clone(),
            policy: self.policy,
            response_improvement: self.settings.response_improvement,
            now: self.now(),
        }
    }

    /// Now, to the microsecond both backends store.
    pub fn now(&self) -> DateTime<Utc> {
        clock::to_micros(self.clock.now())
    }

    /// Today's date in the clinic's time zone.
    pub fn today(&self) -> NaiveDate {
        self.calendar.local_date(self.clock.now())
    }

    /// An instant as the API shows it: RFC 3339 in the clinic's offset.
    pub fn local(&self, instant: DateTime<Utc>) -> String {
        instant
            .with_timezone(&self.settings.clinic_timezone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }
}

/// Every route of the API: each module's operations, in one list from which
/// both the App and the OpenAPI document are built.
fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::get_healthz)
        .service(health::get_readyz)
        .service(smart::request_token)
        .service(smart::get_smart_configuration)
        .service(smart::get_jwks)
        .service(
            scope::scope(fhir::BASE_PATH)
                .service(fhir::fhir_capabilities)
                .service(fhir::fhir_read_patient)
                .service(fhir::fhir_search_patient)
                .service(fhir::fhir_read_appointment)
                .service(fhir::fhir_search_appointment)
                .service(fhir::fhir_read_schedule)
                .service(fhir::fhir_search_schedule)
                .service(fhir::fhir_read_slot)
                .service(fhir::fhir_search_slot)
                .service(fhir::fhir_read_location)
                .service(fhir::fhir_search_location)
                .service(fhir::fhir_read_service_request)
                .service(fhir::fhir_search_service_request)
                .service(fhir::fhir_read_observation)
                .service(fhir::fhir_search_observation),
        )
        .service(
            scope::scope("/v1")
                .service(patients::create_patient)
                .service(patients::list_patients)
                .service(patients::get_patient)
                .service(patients::update_patient)
                .service(referrals::create_referral)
                .service(referrals::list_referrals)
                .service(referrals::get_referral)
                .service(referrals::verify_referral)
                .service(referrals::reject_referral)
                .service(attestations::create_treatment_attestation)
                .service(attestations::list_treatment_attestations)
                .service(screenings::create_screening)
                .service(screenings::list_screenings)
                .service(screenings::get_screening)
                .service(consults::create_prescriber_consult)
                .service(consults::list_prescriber_consults)
                .service(readiness::get_readiness)
                .service(rooms::list_rooms)
                .service(rooms::create_room)
                .service(rooms::update_room)
                .service(closures::list_closures)
                .service(closures::create_closure)
                .service(closures::delete_closure)
                .service(availability::get_availability)
                .service(appointments::book_appointment)
                .service(appointments::list_appointments)
                .service(appointments::get_appointment)
                .service(appointments::cancel_appointment)
                .service(appointments::reschedule_appointment)
                .service(appointments::check_in_appointment)
                .service(appointments::complete_appointment)
                .service(appointments::no_show_appointment)
                .service(billing::get_billing_profile)
                .service(billing::put_billing_profile)
                .service(billing::list_fees)
                .service(billing::put_fee)
                .service(billing::list_clinicians)
                .service(billing::create_clinician)
                .service(billing::get_clinician)
                .service(billing::update_clinician)
                .service(billing::list_charges)
                .service(billing::create_charge)
                .service(billing::get_charge)
                .service(billing::void_charge)
                .service(billing::list_payments)
                .service(billing::create_payment)
                .service(billing::get_payment)
                .service(billing::void_payment)
                .service(billing::get_balance)
                .service(billing::get_superbill)
                .service(protocols::list_protocols)
                .service(protocols::get_protocol)
                .service(protocols::update_protocol)
                .service(courses::plan_course)
                .service(courses::book_course)
                .service(courses::get_course)
                .service(courses::list_patient_courses)
                .service(courses::cancel_course)
                .service(clients::register_client)
                .service(clients::list_clients)
                .service(clients::get_client)
                .service(clients::update_client)
                .service(clients::disable_client)
                .service(clients::enable_client)
                .service(events::list_events)
                .service(webhooks::create_webhook_endpoint)
                .service(webhooks::list_webhook_endpoints)
                .service(webhooks::get_webhook_endpoint)
                .service(webhooks::update_webhook_endpoint)
                .service(webhooks::disable_webhook_endpoint)
                .service(webhooks::enable_webhook_endpoint)
                .service(webhooks::rotate_webhook_secret)
                .service(webhooks::redeliver_webhook)
                .service(webhooks::delete_webhook_endpoint)
                .service(webhooks::list_webhook_deliveries)
                .service(audit_events::list_audit_events)
                .service(audit_events::get_access_log),
        );
}

/// The OpenAPI document the routes describe.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    openapi::complete(api)
}

/// The whole application: routes, Swagger UI, error handling, request ids
/// and request logging.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (today, calendar) = (state.today(), state.calendar.clone());
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .app_data(state)
        .app_data(web::PathConfig::default().error_handler(extract::path_error))
        .configure(routes)
        .split_for_parts();
    let api = openapi::dated(openapi::complete(api), today, &calendar);
    let known = web::Data::new(KnownPaths::from_openapi(&api));
    let operations = web::Data::new(Operations::from_openapi(&api));
    app.app_data(known)
        .app_data(operations)
        .service(
            SwaggerUi::new("/swagger-ui/{_:.*}")
                .url("/openapi.json", api)
                .config(security::swagger_ui_config()),
        )
        .route(
            "/swagger-ui",
            web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/swagger-ui/"))
                    .finish()
            }),
        )
        .default_service(web::to(unmatched))
        .wrap(from_fn(idempotency::guard))
        .wrap(from_fn(conditional::etags))
        .wrap(from_fn(limits::enforce))
        // Outside the limits, so that a preflight is never counted or
        // refused by them and their 429s carry the CORS headers.
        .wrap(from_fn(cors::cors))
        // Outside the limits and CORS too, so that their refusals under
        // /fhir/ are OperationOutcomes as well.
        .wrap(from_fn(fhir::outcomes))
        .wrap(from_fn(security::headers))
        .wrap_fn(|mut req, srv| {
            head_as_get(&mut req);
            srv.call(req)
        })
        .wrap_fn(|req, srv| {
            let request_id = uuid::Uuid::now_v7().to_string();
            let method = req.method().clone();
            let path = req.path().to_owned();
            let note = Note::begin(&req, &request_id);
            let response = srv.call(req);
            async move {
                let mut response = response.await?;
                if let Some(note) = note {
                    if let Some(state) = response.request().app_data::<State>() {
                        note.finish(&response, &state.audit);
                    }
                }
                if response.status().is_server_error() {
                    if let Some(error) = response.response().error() {
                        // Ids only: the error names no patient data.
                        log::error!("request {request_id} {method} {path} failed: {error}");
                    }
                }
                if let Ok(value) = HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert(REQUEST_ID.clone(), value);
                }
                Ok(response)
            }
        })
        .wrap(
            Logger::new("%{x-request-id}o %{method}xi %U %s %Dms")
                .custom_request_replace("method", |req| req.method().to_string()),
        )
}

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The documented paths with their methods, to tell 405 from 404.
struct KnownPaths(Vec<(ResourceDef, Vec<String>)>);

impl KnownPaths {
    fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let paths = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("HEAD", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(m, _)| m.to_owned())
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self(paths)
    }

    fn methods_of(&self, path: &str) -> Option<&[String]> {
        self.0.iter().find(|(def, _)| def.is_match(path)).map(|(_, methods)| methods.as_slice())
    }
}

/// What no route matched: 405 with `Allow` for a known path, else 404.
async fn unmatched(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = req
        .app_data::<web::Data<KnownPaths>>()
        .and_then(|known| known.methods_of(req.path()).map(<[String]>::to_vec));
    Err(match allowed {
        Some(methods) => ApiError::MethodNotAllowed(methods),
        None => ApiError::NotFound("route"),
    })
}

/// Routes a HEAD request as the GET it asks about (RFC 9110 §9.3.2): same
/// authentication, status and headers. actix's HTTP/1 layer remembers the
/// request was HEAD and sends the answer's head only, with GET's
/// `Content-Length`, so no handler needs to know.
fn head_as_get(req: &mut ServiceRequest) {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
}
