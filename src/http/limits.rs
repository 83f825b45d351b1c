//! What a client may hold of this process: a connection, with a body it
//! sends slowly, and rate limits on `/v1`, kept in this process's memory.
//!
//! - a request body the application did not read whole (refused early, or
//!   cut off after `BODY_TIMEOUT_MS` by `extract::Json`) closes the
//!   connection once the answer is sent: actix-http would otherwise drain
//!   an unread chunked body for as long as the client trickles it;
//! - failed authentications per client address: once an address has failed
//!   `AUTH_FAILURE_LIMIT` times in a window of `AUTH_FAILURE_WINDOW_SECONDS`,
//!   its `/v1` requests answer 429 `too_many_failed_authentications` with
//!   `Retry-After` until the window ends;
//! - requests per caller (a token's role and `sub`) per minute,
//!   `RATE_LIMIT_PER_MINUTE`: every counted response carries the IETF
//!   `RateLimit-Policy` and `RateLimit` fields
//!   (draft-ietf-httpapi-ratelimit-headers-11), and once the minute's quota
//!   is used up the answer is 429 `too_many_requests` with `Retry-After`.
//!
//! Both count fixed windows that start at a key's first event, so the
//! fields' values are exact: `r` is what is left of the quota and `t` the
//! seconds until the window ends. Memory is bounded: ended windows are
//! swept, and the oldest dropped, before a table outgrows [`MAX_KEYS`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, ResponseError};
use futures_util::Stream;

use crate::config::Settings;

use super::auth::{self, Caller};
use super::error::ApiError;
use super::smart;
use super::State;

/// Keys one table holds at most: with keys of a few bytes, some megabytes.
pub const MAX_KEYS: usize = 100_000;

/// The name of the per-caller policy in the `RateLimit` fields.
const POLICY: &str = "caller";

/// The window of `RATE_LIMIT_PER_MINUTE`.
const MINUTE: Duration = Duration::from_secs(60);

const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The limits of one process, shared by its workers (in `AppState`).
pub struct Limits {
    failures: Option<Windows<IpAddr>>,
    callers: Option<Windows<u64>>,
    /// Keys callers by a keyed hash of role and `sub`: a fixed size per
    /// caller, however long a token's subject.
    hasher: RandomState,
    trusted_proxies: Vec<IpAddr>,
}

impl Limits {
    pub fn new(settings: &Settings) -> Self {
        let failures = (settings.auth_failure_limit > 0)
            .then(|| Windows::new(settings.auth_failure_limit, settings.auth_failure_window));
        let callers = (settings.rate_limit_per_minute > 0)
            .then(|| Windows::new(settings.rate_limit_per_minute, MINUTE));
        Self {
            failures,
            callers,
            hasher: RandomState::new(),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    fn caller_key(&self, caller: &Caller) -> u64 {
        self.hasher.hash_one((caller.role.as_str(), caller.subject.as_str(), &caller.issuer))
    }
}

/// The middleware: holds the request body until the answer is sent (see the
/// module's documentation), and applies the rate limits ([`throttle`]).
pub async fn enforce(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, impl MessageBody>>, Error> {
    let request_body = match req.take_payload() {
        Payload::None => None,
        payload => {
            let shared = Rc::new(RefCell::new(payload));
            req.set_payload(Payload::Stream { payload: Box::pin(SharedBody(shared.clone())) });
            Some(shared)
        }
    };
    let response = throttle(req, next).await?;
    Ok(match request_body {
        None => response.map_into_left_body(),
        // actix decides whether the connection stays open when it starts
        // the answer and again when the answer's body ends: the request
        // body, held by the answer's, is still alive both times, so if it
        // was not read whole the connection closes instead of draining it.
        Some(request_body) => response.map_body(|_, body| {
            EitherBody::right(Holding { body: Box::pin(body), _request_body: request_body })
        }),
    })
}

/// The request body, shared between the handler that reads it and the
/// answer that holds it until it is sent.
struct SharedBody(Rc<RefCell<Payload>>);

impl Stream for SharedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.try_borrow_mut() {
            Ok(mut payload) => Pin::new(&mut *payload).poll_next(cx),
            // Only one reader polls it at a time, so this is not reached.
            Err(_) => Poll::Ready(Some(Err(PayloadError::Incomplete(None)))),
        }
    }
}

/// An answer's body that holds the request's body until it is dropped.
struct Holding<B> {
    body: Pin<Box<B>>,
    _request_body: Rc<RefCell<Payload>>,
}

impl<B: MessageBody> MessageBody for Holding<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().body.as_mut().poll_next(cx)
    }
}

/// Refuses a `/v1` or `/fhir` request from an address that failed authentication too
/// often or by a caller whose quota is used up, counts the rest, and adds
/// the `RateLimit` fields to a counted caller's answer.
async fn throttle(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let state = match req.app_data::<State>() {
        Some(state) if super::serves_resources(req.path()) || req.path() == smart::TOKEN_PATH => {
            state.clone()
        }
        _ => return Ok(next.call(req).await?.map_into_left_body()),
    };
    let limits = &state.limits;
    // Unknown only for a peer that is not on TCP (never, as served):
    // such requests are not counted.
    let address = limits
        .failures
        .as_ref()
        .and_then(|_| client_address(&req, &limits.trusted_proxies))
        .map(network);

    if let (Some(failures), Some(address)) = (&limits.failures, address) {
        if let Some(wait) = failures.blocked(&address, Instant::now()) {
            let error = ApiError::TooManyFailedAuthentications { retry_after: seconds(wait) };
            return Ok(req.error_response(error).map_into_right_body());
        }
    }

    let mut quota = None;
    if let Some(callers) = &limits.callers {
        // An unauthenticated request is not a caller's: the handler answers
        // 401, which the failure count below sees.
        if let Ok(caller) = auth::authenticate(req.request(), &state) {
            match callers.take(limits.caller_key(&caller), Instant::now()) {
                Ok(left) => quota = Some((callers.limit, left)),
                Err(wait) => {
                    let retry_after = seconds(wait);
                    let mut response = ApiError::TooManyRequests { retry_after }.error_response();
                    add_fields(response.headers_mut(), callers.limit, 0, retry_after);
                    return Ok(req.into_response(response).map_into_right_body());
                }
            }
        }
    }

    let presented_credentials = req.headers().contains_key(header::AUTHORIZATION);
    let mut response = next.call(req).await?;
    if let (Some(failures), Some(address)) = (&limits.failures, address) {
        // A request without credentials is not an attempt to guess them.
        let refused_client =
            response.response().extensions().contains::<smart::FailedClientAuthentication>();
        if (presented_credentials && response.status() == StatusCode::UNAUTHORIZED)
            || refused_client
        {
            failures.record(address, Instant::now());
        }
    }
    if let Some((limit, left)) = quota {
        add_fields(response.headers_mut(), limit, left.remaining, seconds(left.reset));
    }
    Ok(response.map_into_left_body())
}

/// `RateLimit-Policy` and `RateLimit` as draft-ietf-httpapi-ratelimit-headers-11
/// writes them: structured-field lists of one item each, e.g.
/// `"caller";q=1200;w=60` and `"caller";r=0;t=12`.
fn add_fields(headers: &mut header::HeaderMap, limit: u32, remaining: u32, reset: u64) {
    let policy = format!("\"{POLICY}\";q={limit};w={}", MINUTE.as_secs());
    let current = format!("\"{POLICY}\";r={remaining};t={reset}");
    for (name, value) in [(RATE_LIMIT_POLICY, policy), (RATE_LIMIT, current)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// Whole seconds, rounded up, at least 1: a client that waits that long
/// finds the window over.
fn seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

/// The client's address: the peer, or, when the peer is one of
/// `TRUSTED_PROXIES`, the nearest address in `X-Forwarded-For` that is not
/// a trusted proxy (proxies append the address they received from, so the
/// entries to the left of it are whatever the client chose to send).
fn client_address(req: &ServiceRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let hop = hop.trim();
        let Some(address) = hop
            .parse::<IpAddr>()
            .ok()
            .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
            .map(|ip| ip.to_canonical())
        else {
            // Not an address (`unknown`, an obfuscated name): the nearest
            // hop that could be read stands for the client.
            break;
        };
        client = address;
        if !trusted.contains(&address) {
            break;
        }
    }
    Some(client)
}

/// The key an address is counted under: an IPv4 address, or the /64
/// network of an IPv6 one (one host is commonly handed a whole /64).
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// What is left of a window's quota once a request is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Left {
    remaining: u32,
    /// Until the window ends.
    reset: Duration,
}

/// Counts per key in fixed windows of `length` that start at a key's first
/// event.
struct Windows<K> {
    limit: u32,
    length: Duration,
    counts: Mutex<HashMap<K, Window>>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    count: u32,
}

impl<K: std::hash::Hash + Eq + Copy> Windows<K> {
    fn new(limit: u32, length: Duration) -> Self {
        Self { limit, length, counts: Mutex::new(HashMap::new()) }
    }

    /// Counts one request of `key`: what is left, or, when the quota is used
    /// up, how long until the window ends (a refused request is not counted).
    fn take(&self, key: K, now: Instant) -> Result<Left, Duration> {
        let Ok(mut counts) = self.counts.lock() else { return Ok(self.fresh()) };
        let window = self.current(&mut counts, key, now);
        let reset = self.length.saturating_sub(now.saturating_duration_since(window.start));
        if window.count >= self.limit {
            return Err(reset);
        }
        window.count += 1;
        Ok(Left { remaining: self.limit - window.count, reset })
    }

    /// How long `key` stays refused, if its window's count has reached the
    /// limit.
    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let counts = self.counts.lock().ok()?;
        let window = counts.get(key)?;
        let elapsed = now.saturating_duration_since(window.start);
        (elapsed < self.length && window.count >= self.limit).then(|| self.length - elapsed)
    }

    /// Counts one event of `key`.
    fn record(&self, key: K, now: Instant) {
        if let Ok(mut counts) = self.counts.lock() {
            let window = self.current(&mut counts, key, now);
            window.count = window.count.saturating_add(1);
        }
    }

    /// `key`'s window as of `now`: a new one if it had none or it ended.
    fn current<'a>(
        &self,
        counts: &'a mut HashMap<K, Window>,
        key: K,
        now: Instant,
    ) -> &'a mut Window {
        if !counts.contains_key(&key) && counts.len() >= MAX_KEYS {
            self.make_room(counts, now);
        }
        let window = counts.entry(key).or_insert(Window { start: now, count: 0 });
        if now.saturating_duration_since(window.start) >= self.length {
            *window = Window { start: now, count: 0 };
        }
        window
    }

    /// Drops the windows that have ended; if that frees too little, the
    /// oldest tenth as well.
    fn make_room(&self, counts: &mut HashMap<K, Window>, now: Instant) {
        counts.retain(|_, window| now.saturating_duration_since(window.start) < self.length);
        if counts.len() >= MAX_KEYS {
            let mut starts: Vec<Instant> = counts.values().map(|window| window.start).collect();
            let tenth = starts.len() / 10;
            let (_, cut, _) = starts.select_nth_unstable(tenth);
            let cut = *cut;
            counts.retain(|_, window| window.start > cut);
        }
    }

    /// What a request sees when the table cannot be read (a poisoned lock):
    /// let it through rather than refuse everyone.
    fn fresh(&self) -> Left {
        Left { remaining: self.limit.saturating_sub(1), reset: self.length }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_quota_counts_down_refuses_when_used_up_and_renews_with_the_window() {
        let windows = Windows::new(3, MINUTE);
        let start = Instant::now();
        let left = |n| Ok(Left { remaining: n, reset: MINUTE - 10 * SECOND });
        assert_eq!(windows.take(1, start), Ok(Left { remaining: 2, reset: MINUTE }));
        assert_eq!(windows.take(1, start + 10 * SECOND), left(1));
        assert_eq!(windows.take(1, start + 10 * SECOND), left(0));
        assert_eq!(windows.take(1, start + 10 * SECOND), Err(MINUTE - 10 * SECOND));
        // Another key has a quota and a window of its own; the refused one
        // stays refused until its window ends.
        assert_eq!(windows.take(2, start + 10 * SECOND), Ok(Left { remaining: 2, reset: MINUTE }));
        assert_eq!(windows.take(1, start + 59 * SECOND), Err(SECOND));
        assert_eq!(windows.take(1, start + MINUTE), Ok(Left { remaining: 2, reset: MINUTE }));
    }

    #[test]
    fn an_address_is_blocked_once_its_failures_reach_the_limit_until_the_window_ends() {
        let windows = Windows::new(2, MINUTE);
        let start = Instant::now();
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(windows.blocked(&address, start), None);
        windows.record(address, start);
        assert_eq!(windows.blocked(&address, start + SECOND), None);
        windows.record(address, start + SECOND);
        assert_eq!(windows.blocked(&address, start + 20 * SECOND), Some(40 * SECOND));
        assert_eq!(windows.blocked(&address, start + MINUTE), None);
        // A failure after the window starts a new count.
        windows.record(address, start + MINUTE);
        assert_eq!(windows.blocked(&address, start + MINUTE), None);
    }

    #[test]
    fn a_full_table_drops_ended_windows_then_the_oldest() {
        let windows = Windows::new(5, MINUTE);
        let start = Instant::now();
        for key in 0..MAX_KEYS as u64 {
            windows.record(key, start + Duration::from_micros(key));
        }
        // All still open: the oldest tenth goes to make room.
        windows.record(u64::MAX, start + SECOND);
        let len = windows.counts.lock().unwrap().len();
        assert!((MAX_KEYS * 8 / 10..MAX_KEYS).contains(&len), "{len}");
        assert!(!windows.counts.lock().unwrap().contains_key(&0));
        assert!(windows.counts.lock().unwrap().contains_key(&(MAX_KEYS as u64 - 1)));
        // Once the windows have ended, they all go at the next new key.
        let windows = Windows::new(5, MINUTE);
        for key in 0..MAX_KEYS as u64 {
            windows.record(key, start);
        }
        windows.record(u64::MAX, start + MINUTE);
        assert_eq!(windows.counts.lock().unwrap().len(), 1);
    }

    #[test]
    fn waits_are_whole_seconds_rounded_up() {
        assert_eq!(seconds(Duration::from_millis(11_200)), 12);
        assert_eq!(seconds(Duration::from_secs(12)), 12);
        assert_eq!(seconds(Duration::ZERO), 1);
    }

    #[test]
    fn an_ipv6_address_counts_as_its_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network(a), network(b));
        assert_ne!(network(a), network(c));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(network(v4), v4);
    }
}
