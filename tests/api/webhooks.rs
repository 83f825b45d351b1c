//! Webhooks: endpoints an admin adds, and the change feed's events
//! delivered to them signed (Standard Webhooks), at least once, retried on
//! failure, each by one process at a time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use serde_json::{json, Value};

use infusion_api::domain::access::Role;
use infusion_api::domain::webhooks::signature;
use infusion_api::http::webhooks::run_once;
use infusion_api::store::webhooks as store_webhooks;
use infusion_api::store::write_transaction;

use crate::helpers::{clinic_now, patient_body, TestApp};

/// A request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: HashMap<String, String>,
    body: String,
}

/// An HTTP receiver on loopback: it keeps what it gets and answers with
/// the status it is told.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<Mutex<u16>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(200));
        let (kept, answer) = (got.clone(), status.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = HashMap::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let Some((name, value)) = line.trim_end().split_once(':') else { break };
                    headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
                let length: usize =
                    headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                kept.lock()
                    .unwrap()
                    .push(Received { headers, body: String::from_utf8(body).unwrap() });
                let code = *answer.lock().unwrap();
                let reply =
                    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Self { url, got, status }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn answer(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }
}

/// An app that takes loopback endpoints, its clock at [`clinic_now`].
async fn app_with(settings: &[(&str, &str)]) -> TestApp {
    let mut builder = TestApp::builder().now(clinic_now()).setting("WEBHOOK_ALLOW_PRIVATE", "true");
    for (key, value) in settings {
        builder = builder.setting(key, value);
    }
    builder.build().await
}

/// Runs the worker's passes until it has dispatched every event committed
/// so far (on PostgreSQL the feed waits for transactions in flight on the
/// server, other tests' included) and sent what that made due; how many
/// deliveries it attempted.
async fn drain(app: &TestApp) -> usize {
    let ahead = "events e, webhook_dispatch d WHERE e.tx > d.tx OR (e.tx = d.tx AND e.seq > d.seq)";
    let started = std::time::Instant::now();
    let mut attempted = 0;
    loop {
        attempted += run_once(&app.state).await.unwrap().1;
        if app.count(ahead) == 0 || started.elapsed() > std::time::Duration::from_secs(20) {
            return attempted;
        }
    }
}

/// Adds an endpoint at `url` for `types`; its id and secret.
async fn endpoint(app: &TestApp, url: &str, types: &[&str]) -> (String, String) {
    let body = json!({"url": url, "event_types": types, "description": "EHR sync"});
    let res = app.post("/v1/webhook-endpoints").role(Role::Admin).json(&body).send().await;
    assert_eq!(res.status, 201, "{}", res.text);
    let secret = res.body["secret"].as_str().unwrap().to_owned();
    (res.body["id"].as_str().unwrap().to_owned(), secret)
}

async fn deliveries(app: &TestApp, endpoint: &str) -> Vec<Value> {
    let path = format!("/v1/webhook-endpoints/{endpoint}/deliveries");
    let res = app.get(&path).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["items"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn a_booking_is_delivered_signed_to_the_endpoint_that_takes_it() {
    let app = app_with(&[]).await;
    let receiver = Receiver::start();
    let (id, secret) = endpoint(&app, &receiver.url, &["appointment.booked"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let patient = app.ready_patient().await;
    let booked = app.booked(&patient, "2026-12-03", "morning").await;

    let attempted = drain(&app).await;
    assert_eq!(attempted, 1, "patient.created and screening.recorded are not its types");
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    let hook = &got[0];
    let body: Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(body["type"], "appointment.booked");
    assert_eq!(body["data"]["resource_id"], booked["id"]);
    assert_eq!(body["data"]["patient_id"], patient.as_str());
    assert_eq!(hook.headers["content-type"], "application/json");
    // Signed as Standard Webhooks says: over id.timestamp.body.
    let (msg_id, timestamp) = (&hook.headers["webhook-id"], &hook.headers["webhook-timestamp"]);
    assert_eq!(msg_id, body["data"]["id"].as_str().unwrap(), "the event's id");
    let expected = signature(&secret, msg_id, timestamp.parse().unwrap(), &hook.body).unwrap();
    assert_eq!(hook.headers["webhook-signature"], expected);

    let listed = deliveries(&app, &id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0]["status"], &listed[0]["attempts"], &listed[0]["last_status"]),
        (&json!("delivered"), &json!(1), &json!(200))
    );
    // Nothing is sent twice.
    assert_eq!(run_once(&app.state).await.unwrap(), (0, 0));
    assert_eq!(receiver.got().len(), 1);
}

#[actix_web::test]
async fn a_failed_delivery_is_tried_again_on_the_schedule_then_fails() {
    let app = app_with(&[("WEBHOOK_RETRY_SCHEDULE", "60,600")]).await;
    let receiver = Receiver::start();
    receiver.answer(503);
    let (id, _) = endpoint(&app, &receiver.url, &[]).await;
    app.create_patient(patient_body()).await;
    drain(&app).await;
    let first = &deliveries(&app, &id).await[0];
    assert_eq!(
        (&first["status"], &first["attempts"], &first["last_status"]),
        (&json!("pending"), &json!(1), &json!(503))
    );
    // Not due before its wait (60 s, plus at most a quarter of jitter).
    app.travel_to(clinic_now() + Duration::seconds(30));
    assert_eq!(run_once(&app.state).await.unwrap().1, 0);
    app.travel_to(clinic_now() + Duration::seconds(76));
    assert_eq!(run_once(&app.state).await.unwrap().1, 1);
    assert_eq!(deliveries(&app, &id).await[0]["attempts"], 2);
    // The last wait spent: failed, and never sent again.
    app.travel_to(clinic_now() + Duration::seconds(76 + 751));
    assert_eq!(run_once(&app.state).await.unwrap().1, 1);
    let last = &deliveries(&app, &id).await[0];
    assert_eq!(
        (&last["status"], &last["attempts"], &last["next_attempt_at"]),
        (&json!("failed"), &json!(3), &Value::Null)
    );
    app.travel_to(clinic_now() + Duration::days(2));
    assert_eq!(run_once(&app.state).await.unwrap().1, 0);
    assert_eq!(receiver.got().len(), 3);

    // An endpoint that does not answer: the error, no status.
    receiver.answer(200);
    let (silent, _) = endpoint(&app, "http://127.0.0.1:9/hooks", &[]).await;
    app.create_patient(patient_body()).await;
    drain(&app).await;
    let refused = &deliveries(&app, &silent).await[0];
    assert_eq!((&refused["status"], &refused["last_status"]), (&json!("pending"), &Value::Null));
    assert!(refused["last_error"].is_string(), "{refused}");
}

/// A pass sends its deliveries side by side; an endpoint that gives no
/// answer is not sent the rest of the pass (they wait for its retry,
/// without spending an attempt), and does not hold up another endpoint's.
#[actix_web::test]
async fn an_endpoint_that_does_not_answer_waits_and_holds_up_no_other() {
    let app = app_with(&[("WEBHOOK_RETRY_SCHEDULE", "60,600")]).await;
    let receiver = Receiver::start();
    let (answering, _) = endpoint(&app, &receiver.url, &["patient.created"]).await;
    let (silent, _) = endpoint(&app, "http://127.0.0.1:9/hooks", &["patient.created"]).await;
    let patients = 40;
    for _ in 0..patients {
        app.create_patient(patient_body()).await;
    }
    drain(&app).await;

    let delivered = deliveries(&app, &answering).await;
    assert_eq!(delivered.len(), patients);
    assert!(delivered.iter().all(|d| d["status"] == "delivered" && d["attempts"] == 1));
    let ids: std::collections::HashSet<String> =
        receiver.got().iter().map(|r| r.headers["webhook-id"].clone()).collect();
    assert_eq!(ids.len(), patients, "each event once");

    // At most one attempt per sender before the first refusal was seen;
    // the rest held back, unattempted, until the endpoint's retry.
    let waiting = deliveries(&app, &silent).await;
    assert_eq!(waiting.len(), patients);
    assert!(waiting.iter().all(|d| d["status"] == "pending"), "{waiting:?}");
    let held: Vec<&Value> = waiting.iter().filter(|d| d["attempts"] == 0).collect();
    assert!(held.len() >= patients - 16, "{} held back", held.len());
    assert!(held.iter().all(|d| d["next_attempt_at"] != Value::Null && d["last_error"].is_null()));
    assert_eq!(run_once(&app.state).await.unwrap().1, 0, "nothing due before the retry");
    app.travel_to(clinic_now() + Duration::seconds(76));
    assert!(run_once(&app.state).await.unwrap().1 >= 1, "tried again at its retry");
}

/// An HTTP receiver on loopback that answers each request 200 after
/// `delay`, several at once: it keeps the `webhook-id`s it got and the
/// most requests it had open at once.
struct SlowReceiver {
    url: String,
    ids: Arc<Mutex<Vec<String>>>,
    most_at_once: Arc<Mutex<(usize, usize)>>,
}

impl SlowReceiver {
    fn start(delay: std::time::Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let ids = Arc::new(Mutex::new(Vec::new()));
        let most_at_once = Arc::new(Mutex::new((0, 0)));
        let (kept, open) = (ids.clone(), most_at_once.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (kept, open) = (kept.clone(), open.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let (mut line, mut id, mut length) = (String::new(), None, 0);
                    reader.read_line(&mut line).unwrap();
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        let Some((name, value)) = line.trim_end().split_once(':') else { break };
                        match name.trim().to_ascii_lowercase().as_str() {
                            "webhook-id" => id = Some(value.trim().to_owned()),
                            "content-length" => length = value.trim().parse().unwrap(),
                            _ => {}
                        }
                    }
                    reader.read_exact(&mut vec![0; length]).unwrap();
                    {
                        let mut open = open.lock().unwrap();
                        open.0 += 1;
                        open.1 = open.1.max(open.0);
                    }
                    std::thread::sleep(delay);
                    kept.lock().unwrap().push(id.unwrap());
                    open.lock().unwrap().0 -= 1;
                    let reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                    let _ = stream.write_all(reply.as_bytes());
                });
            }
        });
        Self { url, ids, most_at_once }
    }

    fn ids(&self) -> Vec<String> {
        self.ids.lock().unwrap().clone()
    }

    fn most_at_once(&self) -> usize {
        self.most_at_once.lock().unwrap().1
    }
}

/// Dispatches every event committed so far, sending nothing: the
/// deliveries a pass will find due (on PostgreSQL the feed waits for
/// transactions in flight on the server, other tests' included).
fn dispatch_all(app: &TestApp) {
    let ahead = "events e, webhook_dispatch d WHERE e.tx > d.tx OR (e.tx = d.tx AND e.seq > d.seq)";
    let started = std::time::Instant::now();
    let mut conn = app.pool.get().unwrap();
    while app.count(ahead) > 0 && started.elapsed() < std::time::Duration::from_secs(20) {
        let now = clinic_now();
        conn.run(|c| write_transaction(c, |tx| store_webhooks::dispatch(tx, now))).unwrap();
    }
    assert_eq!(app.count(ahead), 0, "every event dispatched");
}

/// An endpoint that answers, but slowly, has at most four deliveries in
/// flight at once: the pass's other senders go on with the other
/// endpoints, and each delivery reaches each endpoint once.
#[actix_web::test]
async fn a_slow_endpoint_takes_at_most_four_senders() {
    let app = app_with(&[]).await;
    let slow = SlowReceiver::start(std::time::Duration::from_millis(400));
    let quick = Receiver::start();
    endpoint(&app, &slow.url, &["patient.created"]).await;
    endpoint(&app, &quick.url, &["patient.created"]).await;
    let patients = 24;
    for _ in 0..patients {
        app.create_patient(patient_body()).await;
    }
    dispatch_all(&app);
    let (_, attempted) = run_once(&app.state).await.unwrap();
    assert_eq!(attempted, 2 * patients, "every delivery in one pass");
    assert!((1..=4).contains(&slow.most_at_once()), "{} at once", slow.most_at_once());
    let slow_ids: std::collections::HashSet<String> = slow.ids().into_iter().collect();
    let quick_ids: std::collections::HashSet<String> =
        quick.got().into_iter().map(|r| r.headers["webhook-id"].clone()).collect();
    assert_eq!((slow.ids().len(), slow_ids.len()), (patients, patients));
    assert_eq!((quick.got().len(), quick_ids.len()), (patients, patients));
    assert_eq!(slow_ids, quick_ids);
}

/// A pass claims the endpoints' due deliveries in turns: an endpoint with
/// more than a pass's worth due does not keep another's newer delivery
/// waiting for a pass of its own.
#[actix_web::test]
async fn a_backlog_at_one_endpoint_does_not_hold_up_another() {
    let app = app_with(&[]).await;
    let busy = Receiver::start();
    let other = Receiver::start();
    endpoint(&app, &busy.url, &["patient.created"]).await;
    endpoint(&app, &other.url, &["patient.updated"]).await;
    // A pass claims 256 deliveries.
    let backlog = 260;
    let mut last = Value::Null;
    for _ in 0..backlog {
        last = app.create_patient(patient_body()).await;
    }
    let path = format!("/v1/patients/{}", last["id"].as_str().unwrap());
    let res =
        app.patch(&path).role(Role::Clinician).json(&json!({"phone": "+1-555-0100"})).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    dispatch_all(&app);

    let (_, attempted) = run_once(&app.state).await.unwrap();
    assert_eq!(attempted, 256);
    assert_eq!(other.got().len(), 1, "the newer endpoint's delivery in the first pass");
    assert_eq!(busy.got().len(), 255);
    drain(&app).await;
    assert_eq!((busy.got().len(), other.got().len()), (backlog, 1));
}

/// Two processes dispatching and sending at once: each event reaches the
/// endpoint once.
#[actix_web::test]
async fn two_processes_deliver_each_event_once() {
    let app = app_with(&[]).await;
    let twin = app.twin().await;
    let receiver = Receiver::start();
    endpoint(&app, &receiver.url, &["patient.created"]).await;
    for _ in 0..12 {
        app.create_patient(patient_body()).await;
    }
    // Both at once, again and again, until the feed is dispatched.
    let started = std::time::Instant::now();
    let mut dispatched = 0;
    while receiver.got().len() < 12 && started.elapsed() < std::time::Duration::from_secs(20) {
        let (a, b) = futures_util::future::join(run_once(&app.state), run_once(&twin.state)).await;
        dispatched += a.unwrap().0 + b.unwrap().0;
    }
    assert_eq!(dispatched, 12, "each event dispatched once, by one of them");
    drain(&app).await;
    let got = receiver.got();
    let ids: std::collections::HashSet<&str> =
        got.iter().map(|r| r.headers["webhook-id"].as_str()).collect();
    assert_eq!((got.len(), ids.len()), (12, 12));
}

#[actix_web::test]
async fn a_new_endpoint_gets_what_happens_from_then_on() {
    let app = app_with(&[]).await;
    app.create_patient(patient_body()).await;
    app.travel_to(clinic_now() + Duration::seconds(1));
    let receiver = Receiver::start();
    endpoint(&app, &receiver.url, &[]).await;
    drain(&app).await;
    assert!(receiver.got().is_empty(), "no history");
    app.travel_to(clinic_now() + Duration::seconds(2));
    app.create_patient(patient_body()).await;
    drain(&app).await;
    assert_eq!(receiver.got().len(), 1);
}

#[actix_web::test]
async fn only_admins_manage_endpoints_and_private_addresses_need_the_setting() {
    let app = TestApp::spawn().await;
    for role in [Role::Clinician, Role::Scheduler, Role::Integration, Role::Patient] {
        app.get("/v1/webhook-endpoints").role(role).send().await.assert_problem(403, "forbidden");
        app.post("/v1/webhook-endpoints")
            .role(role)
            .json(&json!({"url": "https://ehr.example.org/hooks"}))
            .send()
            .await
            .assert_problem(403, "forbidden");
    }
    app.get("/v1/webhook-endpoints").send().await.assert_problem(401, "unauthorized");
    for (body, field) in [
        (json!({"url": "http://ehr.example.org/hooks"}), "url"),
        (json!({"url": "https://127.0.0.1/hooks"}), "url"),
        (json!({"url": "https://169.254.169.254/latest"}), "url"),
        (json!({"url": "https://localhost/hooks"}), "url"),
        (
            json!({"url": "https://ehr.example.org/hooks", "event_types": ["appointment.teleported"]}),
            "event_types",
        ),
        (json!({"url": "https://ehr.example.org/hooks", "secret": "whsec_x"}), "secret"),
    ] {
        let res = app.post("/v1/webhook-endpoints").role(Role::Admin).json(&body).send().await;
        assert_eq!(res.status, 422, "{body}: {}", res.text);
        assert!(res.text.contains(field), "{body}: {}", res.text);
    }
    assert_eq!(app.count("webhook_endpoints"), 0);

    let (id, _) = endpoint(&app, "https://ehr.example.org/hooks", &["appointment.booked"]).await;
    let res = app.get(&format!("/v1/webhook-endpoints/{id}")).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.body.get("secret").is_none(), "the secret is shown once: {}", res.text);
    let listed = app.get("/v1/webhook-endpoints").role(Role::Admin).send().await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let gone = app.request(actix_web::http::Method::DELETE, &format!("/v1/webhook-endpoints/{id}"));
    assert_eq!(gone.role(Role::Admin).send().await.status, 204);
    app.get(&format!("/v1/webhook-endpoints/{id}"))
        .role(Role::Admin)
        .send()
        .await
        .assert_problem(404, "not_found");
}

/// The contract's OpenAPI 3.1 `webhooks`: one per event type, with the
/// Standard Webhooks headers and the payload's schema.
#[test]
fn the_contract_documents_every_event_as_a_webhook() {
    let spec = serde_json::to_value(infusion_api::http::openapi()).unwrap();
    let webhooks = spec["webhooks"].as_object().unwrap();
    let types = infusion_api::domain::events::types();
    assert_eq!(webhooks.len(), types.len());
    for event_type in types {
        let post = &webhooks[event_type]["post"];
        let headers: Vec<&str> = post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            ["webhook-id", "webhook-timestamp", "webhook-signature"],
            "{event_type}"
        );
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/WebhookPayload"
        );
        assert_eq!(post["security"], json!([]), "{event_type}: no bearer token");
    }
    let data = &spec["components"]["schemas"]["WebhookData"]["properties"];
    for field in ["id", "resource_type", "resource_id", "patient_id"] {
        assert!(data[field].is_object(), "{field}");
    }
}

async fn act(app: &TestApp, path: &str) -> Value {
    let res = app.post(path).role(Role::Admin).send().await;
    assert_eq!(res.status, 200, "{path}: {}", res.text);
    res.body
}

/// A rotation signs with both secrets for a day, then with the new one.
#[actix_web::test]
async fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
    let app = app_with(&[]).await;
    let receiver = Receiver::start();
    let (id, old) = endpoint(&app, &receiver.url, &["patient.created"]).await;
    let rotated = act(&app, &format!("/v1/webhook-endpoints/{id}/rotate-secret")).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    app.travel_to(clinic_now() + Duration::seconds(1));
    app.create_patient(patient_body()).await;
    drain(&app).await;
    let hook = &receiver.got()[0];
    let (msg, ts) =
        (&hook.headers["webhook-id"], hook.headers["webhook-timestamp"].parse().unwrap());
    let sign = |secret: &str| signature(secret, msg, ts, &hook.body).unwrap();
    assert_eq!(hook.headers["webhook-signature"], format!("{} {}", sign(&new), sign(&old)));
    // A day on, the old one no longer signs. (The delivery's timestamp is
    // the wall clock's; the grace is the clinic's.)
    app.travel_to(clinic_now() + Duration::hours(25));
    app.create_patient(patient_body()).await;
    drain(&app).await;
    let later = &receiver.got()[1];
    let (msg, ts) =
        (&later.headers["webhook-id"], later.headers["webhook-timestamp"].parse().unwrap());
    assert_eq!(later.headers["webhook-signature"], signature(&new, msg, ts, &later.body).unwrap());
    // The secret is shown by the rotation only.
    let read = app.get(&format!("/v1/webhook-endpoints/{id}")).role(Role::Admin).send().await;
    assert!(read.body.get("secret").is_none());
}

/// Disabled, an endpoint gets nothing; an endpoint failing every attempt
/// for WEBHOOK_DISABLE_AFTER_HOURS is disabled, and that is an event; a
/// failed delivery can be sent again.
#[actix_web::test]
async fn endpoints_are_changed_disabled_enabled_and_deliveries_sent_again() {
    let app =
        app_with(&[("WEBHOOK_RETRY_SCHEDULE", "60"), ("WEBHOOK_DISABLE_AFTER_HOURS", "1")]).await;
    let receiver = Receiver::start();
    let (id, _) = endpoint(&app, &receiver.url, &["patient.created"]).await;
    let path = format!("/v1/webhook-endpoints/{id}");

    let changed = app
        .patch(&path)
        .role(Role::Admin)
        .json(
            &json!({"event_types": ["patient.created", "patient.updated"], "description": "both"}),
        )
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["event_types"], json!(["patient.created", "patient.updated"]));
    let bad = app.patch(&path).role(Role::Admin).json(&json!({"url": "ftp://x"})).send().await;
    bad.assert_invalid_fields(&["url"]);

    let disabled = act(&app, &format!("{path}/disable")).await;
    assert_eq!(
        (&disabled["status"], &disabled["disabled_reason"]),
        (&json!("disabled"), &json!("disabled by an admin"))
    );
    app.travel_to(clinic_now() + Duration::seconds(1));
    app.create_patient(patient_body()).await;
    drain(&app).await;
    assert!(receiver.got().is_empty(), "nothing while disabled");
    assert_eq!(act(&app, &format!("{path}/enable")).await["status"], "active");

    // Failing: one attempt, then the schedule is spent.
    receiver.answer(500);
    app.travel_to(clinic_now() + Duration::seconds(2));
    app.create_patient(patient_body()).await;
    drain(&app).await;
    app.travel_to(clinic_now() + Duration::seconds(120));
    run_once(&app.state).await.unwrap();
    let failed = deliveries(&app, &id).await.pop().unwrap();
    assert_eq!(failed["status"], "failed");
    let read = app.get(&path).role(Role::Admin).send().await.body;
    assert_eq!(read["failing_since"], "2026-12-02T10:00:02-05:00");

    // Sent again, and still failing past the hour: disabled, an event.
    let again =
        act(&app, &format!("{path}/deliveries/{}/redeliver", failed["id"].as_str().unwrap())).await;
    assert_eq!((&again["status"], &again["attempts"]), (&json!("pending"), &json!(0)));
    app.travel_to(clinic_now() + Duration::minutes(61));
    run_once(&app.state).await.unwrap();
    let read = app.get(&path).role(Role::Admin).send().await.body;
    assert_eq!(read["status"], "disabled");
    assert_eq!(read["disabled_reason"], "every attempt failed for 1 hours");
    // The feed, read until it has caught up (on PostgreSQL it waits for
    // transactions in flight on the server).
    let started = std::time::Instant::now();
    let mut events = Vec::new();
    while events.len() < 2 && started.elapsed() < std::time::Duration::from_secs(20) {
        let feed = app.get("/v1/events?types=webhook_endpoint.disabled").role(Role::Admin);
        events = feed.send().await.body["events"].as_array().unwrap().clone();
    }
    let disabled_events: Vec<&Value> =
        events.iter().filter(|e| e["resource_id"] == id.as_str()).collect();
    assert_eq!(disabled_events.len(), 2, "by the admin, then by the worker: {events:?}");
    // The first attempt, its retry, and the one sent again.
    assert_eq!(receiver.got().len(), 3);

    for role in [Role::Clinician, Role::Scheduler, Role::Integration] {
        for action in ["disable", "enable", "rotate-secret"] {
            let res = app.post(&format!("{path}/{action}")).role(role).send().await;
            res.assert_problem(403, "forbidden");
        }
        app.patch(&path).role(role).json(&json!({})).send().await.assert_problem(403, "forbidden");
    }
    let missing =
        format!("/v1/webhook-endpoints/{id}/deliveries/{}/redeliver", uuid::Uuid::now_v7());
    app.post(&missing).role(Role::Admin).send().await.assert_problem(404, "not_found");
}
