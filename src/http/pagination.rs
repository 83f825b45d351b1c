//! Cursor pagination: `?limit=` (default 50, max 200) and an opaque
//! `?cursor=`; answers `{"items": [...], "next_cursor": ...}` in id order.
//!
//! A cursor is the id of the last item of the previous page: the next page
//! starts after it. Clients treat it as opaque; the contract says only that
//! it is a UUID, so any UUID is a cursor (one no item has starts the page at
//! the next id in order).

use actix_web::web::Path;
use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::appointment::Appointment;
use crate::domain::calendar::{Closure, Room};
use crate::domain::course::Course;
use crate::domain::intake::Kept;
use crate::domain::patient::Patient;
use crate::domain::referral::Referral;
use crate::domain::screening::Screening;
use crate::domain::values::Id;
use crate::store::{DbConnection, Rows, StoreError};

use super::audit::{PatientId, Touched};
use super::auth::{Admits, Ctx};
use super::error::ApiError;
use super::extract::Query;
use super::{Answer, AppState};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The page parameters of a list with no filters of its own.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Id>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page. Opaque.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub next_cursor: Option<String>,
}

/// Where a page starts and how long it is, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// The id after which the page starts.
    pub after: Option<String>,
    pub limit: u32,
}

impl PageRequest {
    /// Checks `limit`; the cursor was checked as an [`Id`] when the query
    /// was read.
    pub fn parse(limit: Option<u32>, cursor: Option<Id>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field("limit", format!("must be from 1 to {MAX_LIMIT}")));
        }
        Ok(Self { after: cursor.map(Id::into_string), limit })
    }

    /// The rows to fetch: one more than the page, to know whether another
    /// follows.
    pub fn rows(&self) -> Rows {
        Rows { after: self.after.clone(), limit: i64::from(self.limit) + 1 }
    }

    /// Cuts what was fetched to a page, with the cursor of the next one.
    pub fn page<R, T>(
        &self,
        mut rows: Vec<R>,
        id: impl Fn(&R) -> &str,
        map: impl Fn(R) -> T,
    ) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more { rows.last().map(|r| id(r).to_owned()) } else { None };
        Page { items: rows.into_iter().map(map).collect(), next_cursor }
    }
}

/// A record listed in pages: its id is the cursor of the page after it.
pub trait Keyed {
    fn key(&self) -> &str;
}

macro_rules! keyed {
    ($($record:ty),*) => {
        $(impl Keyed for $record {
            fn key(&self) -> &str {
                &self.id
            }
        })*
    };
}

keyed!(
    Patient,
    Appointment,
    Referral,
    Screening,
    Course,
    Room,
    Closure,
    crate::domain::client::Client,
    crate::domain::webhooks::Endpoint,
    crate::domain::billing::Charge,
    crate::domain::billing::Payment,
    crate::domain::billing::Clinician,
    crate::domain::webhooks::Delivery
);

impl<T> Keyed for Kept<T> {
    fn key(&self) -> &str {
        &self.id
    }
}

impl PageRequest {
    /// [`Self::page`] of records, each as `show` shows it.
    pub fn shown<R: Keyed, T>(
        &self,
        rows: Vec<R>,
        state: &AppState,
        show: impl Fn(&AppState, R) -> T,
    ) -> Page<T> {
        self.page(rows, R::key, |r| show(state, r))
    }
}

/// A store function reading one page of a patient's records: (patient id,
/// after id, how many).
pub type LoadPage<R> = fn(&mut DbConnection, &str, &Rows) -> Result<Vec<R>, StoreError>;

/// One page of a patient's records of some kind, each shown by `show`; 404
/// if there is no such patient.
pub async fn patient_page<A: Admits, R: Keyed + Touched + Send + 'static, T: Serialize>(
    ctx: &Ctx<A>,
    (patient, query): (Path<Id>, Query<PageQuery>),
    load: LoadPage<R>,
    show: fn(&AppState, R) -> T,
) -> Answer {
    let Query(query) = query;
    let page = PageRequest::parse(query.limit, query.cursor)?;
    let (patient_id, at) = (patient.into_inner().into_string(), page.rows());
    ctx.saw(&PatientId(&patient_id));
    let rows = ctx.read(move |conn| load(conn, &patient_id, &at)).await?;
    Ok(HttpResponse::Ok().json(page.shown(rows, ctx, show)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::extract::parse_query;

    fn cursor(text: &str) -> Result<Option<Id>, ApiError> {
        parse_query::<PageQuery>(&format!("cursor={text}")).map(|q| q.cursor)
    }

    #[test]
    fn the_cursor_is_the_last_id_and_any_uuid_is_one() {
        let request = PageRequest::parse(Some(2), None).unwrap();
        let ids = [
            "019ac5a0-0000-7000-8000-00000000000a",
            "019ac5a0-0000-7000-8000-00000000000b",
            "019ac5a0-0000-7000-8000-00000000000c",
        ];
        let page = request.page(ids.to_vec(), |r| r, |r| r.to_string());
        assert_eq!(page.items, ids[..2]);
        assert_eq!(page.next_cursor.as_deref(), Some(ids[1]));
        let next = PageRequest::parse(Some(2), cursor(ids[1]).unwrap()).unwrap();
        assert_eq!(next.after.as_deref(), Some(ids[1]));
        // Any UUID, in its canonical form.
        let upper =
            PageRequest::parse(None, cursor("019AC5A0-0000-7000-8000-00000000000B").unwrap());
        assert_eq!(upper.unwrap().after.as_deref(), Some(ids[1]));
        for garbage in ["", "%%%", "bm90LWEtY3Vyc29y", "id:019ac5a0", "%00"] {
            assert!(cursor(garbage).is_err(), "{garbage}");
        }
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(201), None).is_err());
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let request = PageRequest::parse(Some(3), None).unwrap();
        let page = request.page(vec!["a", "b", "c"], |r| r, |r| r);
        assert_eq!(page.next_cursor, None);
    }
}
