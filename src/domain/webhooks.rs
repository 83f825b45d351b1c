//! Webhooks ("Webhooks" in `docs/DOMAIN.md`): where an endpoint may be,
//! which events it takes, how a delivery is signed (Standard Webhooks), and
//! when a failed delivery is tried again.

use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::events;

/// The prefix of a signing secret (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";

/// The longest URL taken.
pub const MAX_URL_LENGTH: usize = 2000;

/// A place an integration receives events at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: String,
    /// None: every type.
    pub event_types: Vec<String>,
    pub secret: String,
    /// The secret before the last rotation, signing beside the new one
    /// until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why it was disabled: by an admin, or failing too long.
    pub disabled_reason: Option<String>,
    /// Since when every attempt to it has failed.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How long a rotated secret keeps signing beside the new one: a day, for
/// the receiver to take the new one.
pub const ROTATION_GRACE_HOURS: i64 = 24;

/// What an admin's change of an endpoint may change.
#[derive(Clone, Debug, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// `Some(true)` disables, `Some(false)` enables again (its failures
    /// forgotten).
    pub disabled: Option<bool>,
    /// A new secret: the old one signs beside it for
    /// [`ROTATION_GRACE_HOURS`].
    pub secret: Option<String>,
}

/// `endpoint` with `change` applied at `now`.
pub fn change(mut endpoint: Endpoint, change: EndpointChange, now: DateTime<Utc>) -> Endpoint {
    if let Some(url) = change.url {
        endpoint.url = url;
    }
    if let Some(types) = change.event_types {
        endpoint.event_types = types;
    }
    if let Some(description) = change.description {
        endpoint.description = description;
    }
    match change.disabled {
        Some(true) if endpoint.disabled_at.is_none() => {
            endpoint.disabled_at = Some(now);
            endpoint.disabled_reason = Some("disabled by an admin".into());
        }
        Some(false) => {
            endpoint.disabled_at = None;
            endpoint.disabled_reason = None;
            endpoint.failing_since = None;
        }
        _ => {}
    }
    if let Some(secret) = change.secret {
        endpoint.previous_secret = Some(std::mem::replace(&mut endpoint.secret, secret));
        endpoint.previous_secret_until = Some(now + Duration::hours(ROTATION_GRACE_HOURS));
    }
    endpoint
}

/// The secrets a delivery is signed with at `now`: the current one, and
/// the previous one during its grace.
pub fn signing_secrets(endpoint: &Endpoint, now: DateTime<Utc>) -> Vec<&str> {
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
    {
        if until > now {
            secrets.push(previous);
        }
    }
    secrets
}

/// Whether an endpoint failing since `failing_since` has failed long
/// enough at `now` to be disabled.
pub fn failed_too_long(
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    after_hours: u32,
) -> bool {
    failing_since.is_some_and(|since| now - since >= Duration::hours(i64::from(after_hours)))
}

/// Where a delivery is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet: waiting for its next attempt.
    Pending,
    /// An attempt got a 2xx.
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|s| s.as_str() == text)
    }
}

/// One event's delivery to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// The body every attempt sends.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, without the answer's body.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an attempt got: a status, or no answer at all (with why).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Answered(u16),
    NoAnswer(String),
}

impl Attempt {
    /// Whether the attempt delivered: only a 2xx counts.
    pub fn delivered(&self) -> bool {
        matches!(self, Attempt::Answered(status) if (200..300).contains(status))
    }

    /// Whether the attempt holds back the endpoint's other deliveries of
    /// the same pass until its own retry: no answer at all (refused, timed
    /// out, unresolvable) says the endpoint is down, so sending it more now
    /// would only spend time the other endpoints' deliveries wait for; an
    /// answer, even a 4xx or 5xx, is about one message.
    pub fn holds_back(&self) -> bool {
        matches!(self, Attempt::NoAnswer(_))
    }
}

/// Whether an endpoint answers, after a pass's attempts to it: any 2xx
/// says so; an endpoint failing is one none of whose attempts delivered.
pub fn answering<'a>(attempts: impl IntoIterator<Item = &'a Attempt>) -> bool {
    attempts.into_iter().any(Attempt::delivered)
}

/// What an attempt makes of a delivery: delivered on a 2xx; otherwise
/// tried again at [`next_attempt`], or failed once the schedule is spent.
pub fn after_attempt(
    attempts: u32,
    attempt: &Attempt,
    schedule: &[u32],
    now: DateTime<Utc>,
    jitter: f64,
) -> (DeliveryStatus, Option<DateTime<Utc>>) {
    if attempt.delivered() {
        return (DeliveryStatus::Delivered, None);
    }
    match next_attempt(attempts, schedule, now, jitter) {
        Some(at) => (DeliveryStatus::Pending, Some(at)),
        None => (DeliveryStatus::Failed, None),
    }
}

/// The body of an event's deliveries (Standard Webhooks' `type`,
/// `timestamp`, `data`): ids only, like the feed.
pub fn payload(event: &events::Event) -> String {
    let timestamp = event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    serde_json::json!({
        "type": event.kind,
        "timestamp": timestamp,
        "data": {
            "id": event.id,
            "resource_type": event.resource_type,
            "resource_id": event.resource_id,
            "patient_id": event.patient_id,
        }
    })
    .to_string()
}

/// Whether `endpoint` takes `event`: active, of a type it takes, and
/// changed after it was created (a new endpoint gets no history).
pub fn dispatches(endpoint: &Endpoint, event: &events::Event) -> bool {
    // Disabled endpoints get no new deliveries; enabled again, they get
    // what happens from then on.
    endpoint.disabled_at.is_none()
        && takes(&endpoint.event_types, event.kind)
        && event.occurred_at >= endpoint.created_at
}

/// When an endpoint's URL may take deliveries: `https` to a host name or a
/// public address; with `allow_private` (development and tests) also
/// `http` and loopback or private addresses. What the name resolves to is
/// checked again at each delivery ([`is_public`]).
pub fn endpoint_url(url: &str, allow_private: bool) -> Result<(), String> {
    if url.len() > MAX_URL_LENGTH {
        return Err(format!("must be at most {MAX_URL_LENGTH} characters"));
    }
    let parts = super::values::url_parts(url).ok_or("must be an https URL")?;
    match parts.scheme {
        "https" => {}
        "http" if allow_private => {}
        _ => {
            return Err("must be an https URL (WEBHOOK_ALLOW_PRIVATE=true also allows http)".into())
        }
    }
    if !parts.has_plain_host() {
        return Err("needs a host, and no user name or password".into());
    }
    if url.contains('#') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must have no fragment and no spaces".into());
    }
    let host = parts.host;
    if let Ok(ip) = host.parse::<IpAddr>() {
        if !allow_private && !is_public(ip) {
            return Err(format!("`{ip}` is not a public address"));
        }
    } else if !allow_private && (host == "localhost" || host.ends_with(".localhost")) {
        return Err("`localhost` is not a public address".into());
    }
    Ok(())
}

/// Whether `ip` is on the public internet: not loopback, private,
/// link-local (cloud metadata included), shared, documentation,
/// benchmarking, multicast, unspecified or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared (CGNAT)
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// The event types an endpoint takes, checked: each a type of the feed;
/// none is every type.
pub fn event_types(items: &[String]) -> Result<Vec<String>, String> {
    let known = events::types();
    match items.iter().find(|t| !known.contains(&t.as_str())) {
        Some(unknown) => Err(format!("`{unknown}` is not an event type")),
        None => {
            let mut types: Vec<String> = Vec::new();
            for item in items {
                if !types.contains(item) {
                    types.push(item.clone());
                }
            }
            Ok(types)
        }
    }
}

/// Whether an endpoint that takes `types` (none: all) takes `event_type`.
pub fn takes(types: &[String], event_type: &str) -> bool {
    types.is_empty() || types.iter().any(|t| t == event_type)
}

/// The `webhook-signature` of a delivery (Standard Webhooks): `v1,` and
/// the base64 of HMAC-SHA256, keyed with the secret's base64-decoded part
/// after `whsec_`, over `id.timestamp.body`. `None` for a secret that is
/// not one.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = secret.strip_prefix(SECRET_PREFIX)?;
    let key = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    let tag = mac.finalize().into_bytes();
    Some(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag)))
}

/// A new signing secret from 24 random bytes.
pub fn new_secret(random: [u8; 24]) -> String {
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(random))
}

/// When a delivery that has failed `attempts` times is tried next: after
/// the `attempts`-th wait of `schedule` (seconds), plus `jitter` (a
/// fraction of it, 0 to 0.25, so that failures do not retry in step);
/// `None` once the schedule is spent: the delivery has failed.
pub fn next_attempt(
    attempts: u32,
    schedule: &[u32],
    now: DateTime<Utc>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    let wait = *schedule.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    let jittered = f64::from(wait) * (1.0 + jitter.clamp(0.0, 0.25));
    Some(now + Duration::milliseconds((jittered * 1000.0) as i64))
}

/// Deliveries a process sends to one endpoint at once: an endpoint that
/// answers slowly, but within the timeout, keeps at most this many of a
/// pass's senders, and the others go on with the other endpoints.
pub const SENDS_PER_ENDPOINT: usize = 4;

/// A pass's claims, shared among the endpoints in turns: each endpoint's
/// first due delivery, then each one's second, and so on, up to `limit`.
/// `due` holds each endpoint's due deliveries, oldest first. An endpoint
/// with a backlog does not fill a pass while another's are due, however
/// much newer those are; alone, it gets the whole pass.
pub fn in_turns<T>(due: Vec<Vec<T>>, limit: usize) -> Vec<T> {
    let mut queues: Vec<std::vec::IntoIter<T>> = due.into_iter().map(Vec::into_iter).collect();
    let mut taken = Vec::new();
    while taken.len() < limit {
        let before = taken.len();
        for queue in &mut queues {
            if taken.len() == limit {
                break;
            }
            taken.extend(queue.next());
        }
        if taken.len() == before {
            break;
        }
    }
    taken
}

/// What a free sender of a pass does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Sends the claim at this index.
    Send(usize),
    /// Leaves this claim unsent: its endpoint gave no answer to another.
    HoldBack(usize),
    /// Waits for a send to end: every endpoint with claims left is sending
    /// [`SENDS_PER_ENDPOINT`] already.
    Wait,
    /// Stops: no claim is left to take.
    Done,
}

/// The senders' turns over a pass's claims: the endpoints take turns, none
/// has more than [`SENDS_PER_ENDPOINT`] sends at once, and an endpoint that
/// gave no answer gets none of its other claims sent.
#[derive(Debug)]
pub struct Turns {
    endpoints: Vec<EndpointTurns>,
    /// Each claim's endpoint, by its place in `endpoints`.
    of: Vec<usize>,
    /// The endpoint whose turn it is next.
    next: usize,
}

#[derive(Debug)]
struct EndpointTurns {
    id: String,
    waiting: std::collections::VecDeque<usize>,
    sending: usize,
    silent: bool,
}

impl Turns {
    /// The turns over claims to these endpoints, by index, in order.
    pub fn new<'a>(claims: impl IntoIterator<Item = &'a str>) -> Self {
        let mut endpoints: Vec<EndpointTurns> = Vec::new();
        let mut of = Vec::new();
        for (i, id) in claims.into_iter().enumerate() {
            let at = match endpoints.iter().position(|e| e.id == id) {
                Some(at) => at,
                None => {
                    endpoints.push(EndpointTurns {
                        id: id.to_owned(),
                        waiting: Default::default(),
                        sending: 0,
                        silent: false,
                    });
                    endpoints.len() - 1
                }
            };
            endpoints[at].waiting.push_back(i);
            of.push(at);
        }
        Self { endpoints, of, next: 0 }
    }

    /// The next free sender's turn.
    pub fn take(&mut self) -> Turn {
        if let Some(silent) = self.endpoints.iter_mut().find(|e| e.silent && !e.waiting.is_empty())
        {
            if let Some(i) = silent.waiting.pop_front() {
                return Turn::HoldBack(i);
            }
        }
        let count = self.endpoints.len();
        for step in 0..count {
            let at = (self.next + step) % count;
            let endpoint = &mut self.endpoints[at];
            if endpoint.sending < SENDS_PER_ENDPOINT {
                if let Some(i) = endpoint.waiting.pop_front() {
                    endpoint.sending += 1;
                    self.next = (at + 1) % count;
                    return Turn::Send(i);
                }
            }
        }
        if self.endpoints.iter().any(|e| !e.waiting.is_empty()) {
            Turn::Wait
        } else {
            Turn::Done
        }
    }

    /// The send of claim `i` has ended: with `attempt`.
    pub fn sent(&mut self, i: usize, attempt: &Attempt) {
        if let Some(endpoint) = self.of.get(i).and_then(|&at| self.endpoints.get_mut(at)) {
            endpoint.sending = endpoint.sending.saturating_sub(1);
            endpoint.silent |= attempt.holds_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_delivers_on_a_2xx_and_only_no_answer_holds_an_endpoint_back() {
        // (attempt, delivered, holds the endpoint's other deliveries back)
        let cases = [
            (Attempt::Answered(200), true, false),
            (Attempt::Answered(204), true, false),
            (Attempt::Answered(299), true, false),
            (Attempt::Answered(199), false, false),
            (Attempt::Answered(301), false, false),
            (Attempt::Answered(400), false, false),
            (Attempt::Answered(503), false, false),
            (Attempt::NoAnswer("timed out".into()), false, true),
            (Attempt::NoAnswer("connection refused".into()), false, true),
        ];
        for (attempt, delivered, holds_back) in cases {
            assert_eq!(attempt.delivered(), delivered, "{attempt:?}");
            assert_eq!(attempt.holds_back(), holds_back, "{attempt:?}");
        }
        let (ok, refused, gone) =
            (Attempt::Answered(204), Attempt::Answered(500), Attempt::NoAnswer("dns".into()));
        // (a pass's attempts to one endpoint, whether it answers)
        let passes: [(&[&Attempt], bool); 4] = [
            (&[&ok], true),
            (&[&refused, &gone, &ok], true),
            (&[&refused, &gone], false),
            (&[], false),
        ];
        for (attempts, answering) in passes {
            assert_eq!(super::answering(attempts.iter().copied()), answering, "{attempts:?}");
        }
    }

    #[test]
    fn a_pass_shares_its_claims_among_the_endpoints_in_turns() {
        // (each endpoint's due deliveries, oldest first; the limit; claimed)
        let table: [(Vec<Vec<u32>>, usize, Vec<u32>); 7] = [
            (vec![], 4, vec![]),
            (vec![vec![1, 2, 3]], 2, vec![1, 2]),
            (vec![vec![1, 2, 3]], 9, vec![1, 2, 3]),
            // A backlog does not shut out a newer endpoint's delivery.
            (vec![vec![1, 2, 3, 4, 5], vec![9]], 3, vec![1, 9, 2]),
            (vec![vec![1, 2], vec![], vec![7, 8, 9]], 9, vec![1, 7, 2, 8, 9]),
            (vec![vec![1, 2], vec![7, 8]], 0, vec![]),
            (vec![vec![], vec![]], 3, vec![]),
        ];
        for (due, limit, claimed) in table {
            let shown = format!("{due:?} limit {limit}");
            assert_eq!(in_turns(due, limit), claimed, "{shown}");
        }
    }

    /// Plays a pass over `claims` (their endpoints): each send stays in
    /// flight until a sender has to wait, then the oldest one ends, with
    /// what `ends` says its attempt got (a 200 when it says nothing).
    fn play(claims: &[&str], ends: &[(usize, Attempt)]) -> Vec<Turn> {
        let mut turns = Turns::new(claims.iter().copied());
        let mut seen = Vec::new();
        let mut in_flight = Vec::new();
        loop {
            let turn = turns.take();
            seen.push(turn);
            match turn {
                Turn::Send(i) => in_flight.push(i),
                Turn::HoldBack(_) => {}
                Turn::Wait => {
                    // The oldest send in flight ends.
                    let i = in_flight.remove(0);
                    let attempt = ends
                        .iter()
                        .find(|(at, _)| *at == i)
                        .map_or(Attempt::Answered(200), |(_, a)| a.clone());
                    turns.sent(i, &attempt);
                }
                Turn::Done => return seen,
            }
        }
    }

    #[test]
    fn senders_take_turns_among_endpoints_at_most_four_to_one() {
        use Turn::*;
        let slow = ["a"; 6];
        // One endpoint: four at once, then one more as each send ends.
        assert_eq!(
            play(&slow, &[]),
            [Send(0), Send(1), Send(2), Send(3), Wait, Send(4), Wait, Send(5), Done]
        );
        // A backlog to `a` first: `b`'s claim goes out with the first turns
        // (and its end, the second wait's, frees no turn of `a`'s).
        let mixed = ["a", "a", "a", "a", "a", "b", "a"];
        assert_eq!(
            play(&mixed, &[]),
            [Send(0), Send(5), Send(1), Send(2), Send(3), Wait, Send(4), Wait, Wait, Send(6), Done]
        );
        // No answer: the endpoint's claims not taken yet are held back,
        // the other endpoint's still sent.
        let silent = ["a", "a", "a", "a", "a", "a", "b"];
        assert_eq!(
            play(&silent, &[(0, Attempt::NoAnswer("timed out".into()))]),
            [Send(0), Send(6), Send(1), Send(2), Send(3), Wait, HoldBack(4), HoldBack(5), Done]
        );
        // An answer, even a 5xx, holds nothing back.
        assert_eq!(
            play(&slow, &[(0, Attempt::Answered(503))]),
            [Send(0), Send(1), Send(2), Send(3), Wait, Send(4), Wait, Send(5), Done]
        );
        assert_eq!(play(&[], &[]), [Done]);
    }

    #[test]
    fn an_endpoint_is_https_to_a_public_host_unless_private_is_allowed() {
        // (url, allowed in production, allowed with WEBHOOK_ALLOW_PRIVATE)
        let table = [
            ("https://ehr.example.org/hooks", true, true),
            ("https://ehr.example.org:8443/hooks?x=1", true, true),
            ("https://8.8.8.8/hooks", true, true),
            ("http://ehr.example.org/hooks", false, true),
            ("http://127.0.0.1:9000/hooks", false, true),
            ("https://127.0.0.1/hooks", false, true),
            ("https://10.0.0.5/hooks", false, true),
            ("https://169.254.169.254/latest/meta-data", false, true),
            ("https://[::1]/hooks", false, true),
            ("https://[fd00::1]/hooks", false, true),
            ("https://localhost/hooks", false, true),
            ("https://user:pass@ehr.example.org/hooks", false, false),
            ("ftp://ehr.example.org/hooks", false, false),
            ("https:///hooks", false, false),
            ("https://ehr.example.org/hooks#frag", false, false),
            ("ehr.example.org/hooks", false, false),
        ];
        for (url, production, private) in table {
            assert_eq!(endpoint_url(url, false).is_ok(), production, "{url}");
            assert_eq!(endpoint_url(url, true).is_ok(), private, "{url} (private allowed)");
        }
    }

    #[test]
    fn public_addresses_are_the_internets() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// The Standard Webhooks specification's example (and its libraries'
    /// test vector): this secret, id, timestamp and body sign as this.
    #[test]
    fn a_signature_is_the_standard_webhooks_one() {
        let signed = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signed.as_deref(), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
        assert_eq!(signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}"), None);
        assert!(new_secret([7; 24]).starts_with("whsec_"));
    }

    #[test]
    fn a_failed_delivery_waits_longer_each_time_then_fails() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 9, 0, 0).unwrap();
        let schedule = [5, 300, 3600];
        let at = |attempts, jitter| next_attempt(attempts, &schedule, now, jitter);
        assert_eq!(at(1, 0.0), Some(now + Duration::seconds(5)));
        assert_eq!(at(2, 0.0), Some(now + Duration::seconds(300)));
        assert_eq!(at(3, 0.2), Some(now + Duration::seconds(4320)));
        assert_eq!(at(3, 9.0), Some(now + Duration::seconds(4500)), "jitter is at most a quarter");
        assert_eq!(at(4, 0.0), None);
        assert_eq!(at(0, 0.0), None);
    }

    #[test]
    fn an_attempt_delivers_on_2xx_else_waits_or_fails() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 9, 0, 0).unwrap();
        let schedule = [5, 60];
        let pending = |at: i64| (DeliveryStatus::Pending, Some(now + Duration::seconds(at)));
        // (attempts so far, attempt, outcome)
        let table = [
            (1, Attempt::Answered(200), (DeliveryStatus::Delivered, None)),
            (1, Attempt::Answered(204), (DeliveryStatus::Delivered, None)),
            (1, Attempt::Answered(301), pending(5)),
            (1, Attempt::Answered(500), pending(5)),
            (2, Attempt::NoAnswer("timed out".into()), pending(60)),
            (3, Attempt::Answered(410), (DeliveryStatus::Failed, None)),
            (3, Attempt::Answered(299), (DeliveryStatus::Delivered, None)),
        ];
        for (attempts, attempt, outcome) in table {
            assert_eq!(
                after_attempt(attempts, &attempt, &schedule, now, 0.0),
                outcome,
                "{attempt:?}"
            );
        }
    }

    #[test]
    fn an_endpoint_takes_the_types_it_names_or_all() {
        assert!(takes(&[], "appointment.booked"));
        let types =
            event_types(&["appointment.booked".into(), "appointment.booked".into()]).unwrap();
        assert_eq!(types, ["appointment.booked"]);
        assert!(takes(&types, "appointment.booked") && !takes(&types, "patient.created"));
        assert!(event_types(&["appointment.teleported".into()]).is_err());
    }
}
