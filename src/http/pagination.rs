//! Cursor pagination: `?limit=` (default 50, max 200) and an opaque
//! `?cursor=`; answers `{"items": [...], "next_cursor": ...}` in id order.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;

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
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
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
    /// Checks `limit` and decodes `cursor`; each bad value is a field error.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("must be from 1 to {MAX_LIMIT}"),
            ));
        }
        let after = cursor
            .map(|c| {
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|text| text.strip_prefix("id:").map(str::to_owned))
                    .filter(|id| uuid::Uuid::try_parse(id).is_ok())
                    .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API gave out"))
            })
            .transpose()?;
        Ok(Self { after, limit })
    }

    /// Rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
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
        let next_cursor = if more {
            rows.last()
                .map(|r| URL_SAFE_NO_PAD.encode(format!("id:{}", id(r))))
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let request = PageRequest::parse(Some(2), None).unwrap();
        let ids = [
            "019ac5a0-0000-7000-8000-00000000000a",
            "019ac5a0-0000-7000-8000-00000000000b",
            "019ac5a0-0000-7000-8000-00000000000c",
        ];
        let page = request.page(ids.to_vec(), |r| r, |r| r.to_string());
        assert_eq!(page.items, ids[..2]);
        let next = PageRequest::parse(Some(2), page.next_cursor.as_deref()).unwrap();
        assert_eq!(next.after.as_deref(), Some(ids[1]));
        // A cursor must name an id: "id:\0" is refused.
        assert!(PageRequest::parse(None, Some(&URL_SAFE_NO_PAD.encode("id:\0"))).is_err());
        assert!(PageRequest::parse(None, Some("not base64!")).is_err());
        assert!(PageRequest::parse(None, Some("Zm9v")).is_err());
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
