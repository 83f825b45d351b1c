//! `TestApp`: the real App on a fresh database per test (a temp SQLite file,
//! or a new PostgreSQL database when `TEST_DATABASE_URL` is set), driven
//! through HTTP requests like a client.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_service::boxed::RcService;
use actix_service::{Service, ServiceExt};
use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use actix_web::test::{self, TestRequest};
use actix_web::web;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};

use infusion_api::config::Settings;
use infusion_api::domain::access::Role;
use infusion_api::domain::clock::{Clock, FixedClock, SystemClock};
use infusion_api::http::{app, AppState};
use infusion_api::store::{self, migrations, DbPool};

pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";
pub const ISSUER: &str = "infusion-api";
pub const AUDIENCE: &str = "infusion-api";

type AppService = RcService<actix_http::Request, ServiceResponse<BoxBody>, actix_web::Error>;

/// A database of the test's own, removed when the test ends.
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String, url: String },
}

impl TestDb {
    /// A new empty database on the backend the environment asks for.
    pub fn create() -> Self {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.trim().is_empty() => {
                let name = format!("infusion_test_{unique}");
                let mut admin = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("TEST_DATABASE_URL: {e}"));
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create test database");
                let url = with_database(&admin_url, &name);
                TestDb::Postgres { admin_url, name, url }
            }
            _ => {
                TestDb::Sqlite(std::env::temp_dir().join(format!("infusion-test-{unique}.sqlite3")))
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(path) => format!("sqlite://{}", path.display()),
            TestDb::Postgres { url, .. } => url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            TestDb::Postgres { admin_url, name, .. } => {
                if let Ok(mut admin) = PgConnection::establish(admin_url) {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin);
                }
            }
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// Builds a [`TestApp`].
#[derive(Default)]
pub struct TestAppBuilder {
    settings: HashMap<String, String>,
    now: Option<DateTime<Utc>>,
}

impl TestAppBuilder {
    /// Overrides one setting, by its environment variable name.
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// Stops the clinic's clock at `now`.
    pub fn now(mut self, now: DateTime<Utc>) -> Self {
        self.now = Some(now);
        self
    }

    pub async fn build(self) -> TestApp {
        let db = TestDb::create();
        let mut vars: HashMap<String, String> = [
            ("JWT_SECRET", SECRET),
            ("JWT_ISSUER", ISSUER),
            ("JWT_AUDIENCE", AUDIENCE),
            ("DB_POOL_SIZE", "4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.insert("DATABASE_URL".into(), db.url());
        vars.extend(self.settings);
        let settings = Settings::from_lookup(|key| vars.get(key).cloned()).expect("test settings");
        let pool = store::build_pool(&settings.database, settings.db_pool_size).expect("test pool");
        migrations::run_pending(&mut pool.get().expect("connection")).expect("migrations");
        let fixed = self.now.map(|now| Arc::new(FixedClock::new(now)));
        let clock: Arc<dyn Clock> = match &fixed {
            Some(fixed) => fixed.clone(),
            None => Arc::new(SystemClock),
        };
        let state = web::Data::new(
            AppState::new(pool.clone(), Arc::new(settings), clock).expect("app state"),
        );
        let service = test::init_service(app(state.clone())).await;
        let service = actix_service::boxed::rc_service(
            service.map(|res: ServiceResponse<_>| res.map_into_boxed_body()),
        );
        TestApp { service, state, pool, clock: fixed, _db: Arc::new(db) }
    }
}

/// The real App on its own database.
pub struct TestApp {
    service: AppService,
    pub state: web::Data<AppState>,
    pub pool: DbPool,
    clock: Option<Arc<FixedClock>>,
    // Dropped last: the database outlives the pool using it.
    _db: Arc<TestDb>,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    pub async fn spawn() -> TestApp {
        Self::builder().build().await
    }

    /// A second process on this app's database: the same settings and
    /// clock, its own connections and its own memory (in-flight keys, rate
    /// limits, verified tokens).
    pub async fn twin(&self) -> TestApp {
        let settings = self.state.settings.clone();
        let pool = store::build_pool(&settings.database, settings.db_pool_size).expect("twin pool");
        let clock: Arc<dyn Clock> = match &self.clock {
            Some(fixed) => fixed.clone(),
            None => Arc::new(SystemClock),
        };
        let state =
            web::Data::new(AppState::new(pool.clone(), settings, clock).expect("app state"));
        let service = test::init_service(app(state.clone())).await;
        let service = actix_service::boxed::rc_service(
            service.map(|res: ServiceResponse<_>| res.map_into_boxed_body()),
        );
        TestApp { service, state, pool, clock: self.clock.clone(), _db: self._db.clone() }
    }

    /// Whether this app's database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self._db.is_postgres()
    }

    /// Sends a request built by hand.
    pub async fn send_raw(&self, request: actix_http::Request) -> TestResponse {
        TestResponse::read(self.service.call(request).await.expect("the service answers")).await
    }

    /// The URL of this app's own database.
    pub fn database_url(&self) -> String {
        self._db.url()
    }

    /// A connection of the test's own to this app's database, outside the
    /// app's pool: to hold a lock the app must wait for.
    pub fn own_connection(&self) -> store::DbConnection {
        match &*self._db {
            TestDb::Sqlite(path) => store::DbConnection::Sqlite(
                diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("SQLite"),
            ),
            TestDb::Postgres { url, .. } => {
                store::DbConnection::Pg(diesel::PgConnection::establish(url).expect("PostgreSQL"))
            }
        }
    }

    /// Moves the clinic's clock (built with [`TestAppBuilder::now`]) to `now`.
    pub fn travel_to(&self, now: DateTime<Utc>) {
        self.clock.as_ref().expect("travel_to needs a TestApp built with .now(...)").set(now);
    }

    /// A request to `path`, without a token until one is given.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        RequestBuilder { app: self, request: TestRequest::default().method(method).uri(path) }
    }

    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PATCH, path)
    }

    /// A valid token for `role` with subject `sub`.
    pub fn token_for(&self, role: Role, sub: &str) -> String {
        let now = Utc::now();
        self.state.keys.issue(role, sub, now, now + Duration::minutes(10)).expect("token")
    }

    /// A SMART Backend Services access token of an integration client,
    /// scoped to `scope` (the app needs `SIGNING_KEY_FILE` and `PUBLIC_URL`).
    pub fn scoped_token(&self, scope: &str) -> String {
        use infusion_api::domain::client::{Client, ClientKeys};
        use infusion_api::domain::scopes::Scopes;
        let now = Utc::now();
        let scopes = Scopes::parse(scope).expect("scopes");
        let client = Client {
            id: "c-1".into(),
            name: "EHR".into(),
            role: Role::Integration,
            keys: ClientKeys::Url("https://ehr.example/jwks.json".into()),
            scopes: scopes.clone(),
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        self.state.keys.issue_access_token(&client, &scopes, now).expect("signing").expect("key").0
    }

    /// Creates a patient through the API, as a clinician (the referral flags
    /// are clinical), and returns its body.
    pub async fn create_patient(&self, body: Value) -> Value {
        let res = self.post("/v1/patients").role(Role::Clinician).json(&body).send().await;
        assert_eq!(res.status, 201, "{}", res.body);
        res.body
    }

    /// Runs one SQL statement straight on the database; whether it succeeded.
    pub fn execute(&self, sql: &str) -> bool {
        let mut conn = self.pool.get().expect("connection");
        diesel::sql_query(sql).execute(&mut **conn).is_ok()
    }

    /// Runs the migrations and what follows them, as `serve` and `migrate`
    /// do at start; the versions applied.
    pub fn migrate(&self) -> Vec<String> {
        let mut conn = self.pool.get().expect("connection");
        infusion_api::store::migrations::run_pending(&mut conn).expect("migrations")
    }

    /// Counts rows of `table` straight from the database.
    pub fn count(&self, table: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().expect("connection");
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
            .get_result::<Count>(&mut **conn)
            .expect("count")
            .n
    }
}

/// A valid patient body; override fields with [`with`].
pub fn patient_body() -> Value {
    json!({
        "given_name": "Ada",
        "family_name": "Lovelace",
        "date_of_birth": "1985-12-10",
        "email": "ada@example.org",
        "phone": "+1 555 010 2030",
        "indications": [{"code": "chronic_pain", "subtype": "crps"}],
        "in_mental_health_treatment": false,
        "pain_referral_required": true
    })
}

/// `base` with the fields of `changes` set.
pub fn with(mut base: Value, changes: Value) -> Value {
    if let (Some(base), Some(changes)) = (base.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            base.insert(key.clone(), value.clone());
        }
    }
    base
}

/// `base` without `field`.
pub fn without(mut base: Value, field: &str) -> Value {
    if let Some(map) = base.as_object_mut() {
        map.remove(field);
    }
    base
}

pub struct RequestBuilder<'a> {
    app: &'a TestApp,
    request: TestRequest,
}

impl RequestBuilder<'_> {
    /// Sends a valid token for `role` (a patient's subject is a random id).
    pub fn role(self, role: Role) -> Self {
        let sub = match role {
            Role::Patient => uuid::Uuid::now_v7().to_string(),
            other => format!("test-{}", other.as_str()),
        };
        let token = self.app.token_for(role, &sub);
        self.bearer(&token)
    }

    /// Sends a patient token for `patient_id`.
    pub fn patient(self, patient_id: &str) -> Self {
        let token = self.app.token_for(Role::Patient, patient_id);
        self.bearer(&token)
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.insert_header((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends from `address` (`ip:port`), the peer the server sees.
    pub fn from(mut self, address: &str) -> Self {
        self.request = self.request.peer_addr(address.parse().expect("a socket address"));
        self
    }

    /// Sends a JSON body whose first bytes are `first` and whose rest never
    /// comes: the stream stays open.
    pub async fn send_stalled(self, first: &'static [u8]) -> TestResponse {
        use futures_util::StreamExt as _;
        let app = self.app;
        let mut request =
            self.request.insert_header(("content-type", "application/json")).to_request();
        let chunks = futures_util::stream::once(async move {
            Ok::<_, actix_http::error::PayloadError>(web::Bytes::from_static(first))
        })
        .chain(futures_util::stream::pending());
        *request.payload() = actix_http::Payload::Stream { payload: Box::pin(chunks) };
        let response = app.service.call(request).await.expect("the service answers");
        TestResponse::read(response).await
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.request = self.request.set_json(body);
        self
    }

    /// A body sent as-is with `content_type`.
    pub fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.request = self
            .request
            .insert_header(("content-type", content_type.to_owned()))
            .set_payload(body.into());
        self
    }

    pub async fn send(self) -> TestResponse {
        let app = self.app;
        let response =
            app.service.call(self.request.to_request()).await.expect("the service answers");
        TestResponse::read(response).await
    }
}

impl TestApp {
    /// Sends all requests at once: each is built (token, body) before any is
    /// sent, so they reach the database as close together as possible.
    pub async fn send_all(&self, requests: Vec<RequestBuilder<'_>>) -> Vec<TestResponse> {
        // Each to the app (or twin) it was built on.
        let built: Vec<_> = requests.into_iter().map(|r| (r.app, r.request.to_request())).collect();
        let calls = built.into_iter().map(|(app, request)| app.service.call(request));
        let mut responses = Vec::new();
        for response in futures_util::future::join_all(calls).await {
            responses.push(TestResponse::read(response.expect("the service answers")).await);
        }
        responses
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    async fn read(response: ServiceResponse<BoxBody>) -> Self {
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let bytes = actix_web::body::to_bytes(response.into_body()).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse { status, headers, body, text }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Asserts a problem document with this status and code; returns it.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.body["status"], status, "{}", self.text);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert!(self.body["type"].as_str().is_some_and(|t| t.ends_with(code)));
        &self.body
    }

    /// Asserts a 422 naming exactly these fields; returns the messages.
    #[track_caller]
    pub fn assert_invalid_fields(&self, fields: &[&str]) -> Vec<String> {
        let body = self.assert_problem(422, "validation_failed");
        let errors = body["errors"].as_array().expect("errors list");
        let named: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
        assert_eq!(named, fields, "{}", self.text);
        errors.iter().filter_map(|e| e["message"].as_str().map(str::to_owned)).collect()
    }
}

/// Wednesday 2 December 2026, 10:00 in New York: the clinic's "now" in
/// scheduling tests. Thursday 3 December is the next clinic day.
pub fn clinic_now() -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(2026, 12, 2, 15, 0, 0).unwrap()
}

impl TestApp {
    /// A TestApp whose clock stands at [`clinic_now`].
    pub async fn at_clinic_now() -> TestApp {
        Self::builder().now(clinic_now()).build().await
    }

    /// A TestApp at [`clinic_now`] that issues access tokens (signing key 1
    /// of the fixtures), so that [`TestApp::scoped_token`] works.
    pub async fn issuing_at_clinic_now() -> TestApp {
        Self::builder()
            .now(clinic_now())
            .setting("SIGNING_KEY_FILE", "tests/fixtures/signing/es256-1.pem")
            .setting("PUBLIC_URL", "https://api.clinic.test")
            .build()
            .await
    }

    /// Creates a patient who is ready to book: chronic pain (CRPS), in
    /// mental health treatment, no pain referral required, and an eligible
    /// screening today. Returns its id.
    pub async fn ready_patient(&self) -> String {
        let body = with(
            patient_body(),
            json!({"in_mental_health_treatment": true, "pain_referral_required": false}),
        );
        let id = self.create_patient(body).await["id"].as_str().unwrap().to_owned();
        self.screen(&id, &[], &[]).await;
        id
    }

    /// Records a screening by a clinician with the criteria named in `true_criteria`
    /// answered true and the rest false; returns it.
    pub async fn screen(
        &self,
        patient_id: &str,
        true_criteria: &[&str],
        medications: &[&str],
    ) -> Value {
        let criteria: serde_json::Map<String, Value> = infusion_api::domain::screening::CRITERIA
            .iter()
            .map(|c| (c.to_string(), Value::Bool(true_criteria.contains(c))))
            .collect();
        let res = self
            .post(&format!("/v1/patients/{patient_id}/screenings"))
            .role(Role::Clinician)
            .json(&json!({"criteria": criteria, "medications": medications.iter().map(|m| json!({"name": m})).collect::<Vec<_>>()}))
            .send()
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }

    /// Books `date` and `session` for `patient_id` as a scheduler.
    pub async fn book(&self, patient_id: &str, date: &str, session: &str) -> TestResponse {
        self.booking(patient_id, date, session).send().await
    }

    /// The request that books `date` and `session` for `patient_id`.
    pub fn booking(&self, patient_id: &str, date: &str, session: &str) -> RequestBuilder<'_> {
        self.post("/v1/appointments")
            .role(Role::Scheduler)
            .json(&json!({"patient_id": patient_id, "date": date, "session": session}))
    }

    /// Books and asserts 201; returns the appointment.
    pub async fn booked(&self, patient_id: &str, date: &str, session: &str) -> Value {
        let res = self.book(patient_id, date, session).await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }

    /// POSTs an action on an appointment as a clinician (pain and PHQ-9
    /// scores are clinical).
    pub async fn act(&self, id: &str, action: &str, body: Value) -> TestResponse {
        self.post(&format!("/v1/appointments/{id}/{action}"))
            .role(Role::Clinician)
            .json(&body)
            .send()
            .await
    }

    /// The clinic's billing set up as an admin would (the profile, the fee
    /// schedule: 96365 $450.00, 96366 $150.00, J3490 $75.00 with its NDC)
    /// and one clinician, the first time; the clinician's id.
    pub async fn billing_ready(&self) -> String {
        let listed = self.get("/v1/clinicians").role(Role::Admin).send().await;
        if let Some(id) = listed.body["items"][0]["id"].as_str() {
            return id.to_owned();
        }
        let profile = self.put("/v1/billing/profile").role(Role::Admin).json(&billing_profile());
        assert_eq!(profile.send().await.status, 200);
        for (code, fee) in [
            ("96365", json!({"price_cents": 45000})),
            ("96366", json!({"price_cents": 15000})),
            (
                "J3490",
                json!({"price_cents": 7500,
                "drug": {"ndc": "00409-2051-05", "unit": "ML", "quantity": "10"}}),
            ),
        ] {
            let res = self.put(&format!("/v1/billing/fees/{code}")).role(Role::Admin).json(&fee);
            let res = res.send().await;
            assert_eq!(res.status, 200, "{}", res.text);
        }
        let clinician = json!({"name": "Grace Hopper", "credentials": "MD", "npi": "1003000126"});
        let res = self.post("/v1/clinicians").role(Role::Admin).json(&clinician).send().await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body["id"].as_str().unwrap().to_owned()
    }

    /// Completes a checked-in appointment as a clinician with `body`, by
    /// the clinician of [`Self::billing_ready`] after a 100-minute infusion
    /// unless `body` says otherwise.
    pub async fn complete(&self, id: &str, body: Value) -> TestResponse {
        let clinician = self.billing_ready().await;
        let body = with(json!({"clinician_id": clinician, "infusion_minutes": 100}), body);
        self.act(id, "complete", body).await
    }

    /// POSTs an action on an appointment as `role`.
    pub async fn act_as(&self, role: Role, id: &str, action: &str, body: Value) -> TestResponse {
        self.post(&format!("/v1/appointments/{id}/{action}")).role(role).json(&body).send().await
    }

    /// Active appointments in one session, straight from the database.
    pub fn active_in(&self, date: &str, session: &str) -> i64 {
        self.count(&format!(
            "appointments WHERE date = '{date}' AND session = '{session}' \
             AND status IN ('scheduled', 'checked_in', 'completed')"
        ))
    }
}

/// The clinic's billing profile as an admin sets it.
pub fn billing_profile() -> Value {
    json!({
        "legal_name": "Infusion Therapeutix LLC",
        "address": {"line1": "100 Church St", "line2": "Suite 200", "city": "New Haven",
            "state": "CT", "postal_code": "06510"},
        "phone": "+1 203 555 0100", "tax_id": "12-3456789", "npi": "1245319599"
    })
}

/// A provider as referrals and attestations name one.
pub fn provider() -> Value {
    json!({"name": "Dr. Jane Doe", "practice": "Riverside Psychiatry", "phone": "+1 555 010 3000", "npi": "1234567893"})
}

/// A referral letter of `kind`, received 20 November 2026.
pub fn referral(kind: &str) -> Value {
    json!({"kind": kind, "provider": provider(), "received_on": "2026-11-20", "document_reference": "ehr://doc/1"})
}

impl TestApp {
    /// A depression patient with nothing on file yet.
    pub async fn depression_patient(&self) -> String {
        let body = with(
            patient_body(),
            json!({"indications": [{"code": "depression"}], "in_mental_health_treatment": true, "pain_referral_required": false}),
        );
        self.create_patient(body).await["id"].as_str().unwrap().to_owned()
    }

    /// Records a referral as `role`; returns it.
    pub async fn add_referral(&self, patient: &str, kind: &str, role: Role) -> Value {
        let res = self
            .post(&format!("/v1/patients/{patient}/referrals"))
            .role(role)
            .json(&referral(kind))
            .send()
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        res.body
    }

    /// Verifies a referral as a clinician; returns it.
    pub async fn verify(&self, referral_id: &str) -> Value {
        let res = self
            .post(&format!("/v1/referrals/{referral_id}/verify"))
            .role(Role::Clinician)
            .send()
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.body
    }

    /// Records an ongoing-treatment attestation dated `on`.
    pub async fn attest(&self, patient: &str, on: &str) {
        let res = self
            .post(&format!("/v1/patients/{patient}/treatment-attestations"))
            .role(Role::Scheduler)
            .json(&json!({"provider": provider(), "attested_on": on}))
            .send()
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }

    /// A depression patient with a verified referral, a recent attestation
    /// and an eligible screening: ready to book.
    pub async fn ready_depression_patient(&self) -> String {
        let id = self.depression_patient().await;
        let referral = self.add_referral(&id, "mental_health_provider", Role::Scheduler).await;
        self.verify(referral["id"].as_str().unwrap()).await;
        self.attest(&id, "2026-11-25").await;
        self.screen(&id, &[], &[]).await;
        id
    }

    /// The readiness checklist as a scheduler sees it.
    pub async fn readiness(&self, patient: &str) -> Value {
        let res = self
            .get(&format!("/v1/patients/{patient}/readiness"))
            .role(Role::Scheduler)
            .send()
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.body
    }
}

/// A JWKS served over HTTP on loopback (an identity provider's, a backend
/// client's): what it serves can change, and it counts the fetches.
pub struct JwksServer {
    pub url: String,
    body: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub fn start(jwks: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/realms/clinic/certs", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new((200, jwks.to_owned())));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (body.clone(), fetches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                counted.fetch_add(1, Ordering::SeqCst);
                let (status, text) = served.lock().unwrap().clone();
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Self { url, body, fetches }
    }

    pub fn serve(&self, status: u16, text: &str) {
        *self.body.lock().unwrap() = (status, text.to_owned());
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
