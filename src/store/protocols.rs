//! The protocol catalog.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::domain::patient::IndicationCategory;
use crate::domain::protocol::{Day, Protocol, Range, Spacing};

use super::schema::protocols;
use crate::domain::values::Text;

use super::{DbConnection, Found, StoreError};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = protocols, treat_none_as_null = true)]
struct ProtocolRow {
    code: String,
    name: String,
    categories: String,
    spacing: String,
    infusions_min: i32,
    infusions_max: i32,
    per_week_min: Option<i32>,
    per_week_max: Option<i32>,
    weeks_min: Option<i32>,
    weeks_max: Option<i32>,
    min_gap_days: i32,
    preferred_start_weekday: Option<String>,
    response_check_infusion: Option<i32>,
    requires_completed_course: bool,
    updated_at: NaiveDateTime,
}

fn invalid(what: &str, value: &str) -> StoreError {
    StoreError::Invalid(format!("protocol {what} `{value}`"))
}

fn unsigned(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn signed(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn range(min: Option<i32>, max: Option<i32>) -> Option<Range> {
    Some(Range { min: unsigned(min?), max: unsigned(max?) })
}

impl TryFrom<ProtocolRow> for Protocol {
    type Error = StoreError;

    fn try_from(r: ProtocolRow) -> Result<Self, StoreError> {
        let categories = r
            .categories
            .split(',')
            .map(|c| match c {
                "pain" => Ok(IndicationCategory::Pain),
                "mental_health" => Ok(IndicationCategory::MentalHealth),
                other => Err(invalid("category", other)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Protocol {
            spacing: Spacing::parse(&r.spacing).ok_or_else(|| invalid("spacing", &r.spacing))?,
            preferred_start_weekday: match r.preferred_start_weekday.as_deref() {
                None => None,
                Some(day) => Some(Day::parse(day).ok_or_else(|| invalid("weekday", day))?),
            },
            categories,
            code: r.code,
            name: Text::stored(r.name),
            infusions: Range { min: unsigned(r.infusions_min), max: unsigned(r.infusions_max) },
            per_week: range(r.per_week_min, r.per_week_max),
            weeks: range(r.weeks_min, r.weeks_max),
            min_gap_days: unsigned(r.min_gap_days),
            response_check_infusion: r.response_check_infusion.map(unsigned),
            requires_completed_course: r.requires_completed_course,
        })
    }
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Protocol>, StoreError> {
    protocols::table
        .order(protocols::code)
        .select(ProtocolRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Protocol::try_from)
        .collect()
}

/// The protocol `code`, held until commit: a concurrent change waits, then
/// reads this one's result.
pub fn hold(conn: &mut DbConnection, code: &str) -> Result<Protocol, StoreError> {
    hold_row!(protocols.code, code, conn)?;
    find(conn, code)
}

pub fn find(conn: &mut DbConnection, code: &str) -> Result<Protocol, StoreError> {
    on_backend!(conn, |c| protocols::table
        .find(code)
        .select(ProtocolRow::as_select())
        .get_result(c))
    .found("protocol")?
    .try_into()
}

/// Replaces a protocol's parameters, as decided. `NotFound` if
/// there is no such code: the catalog is not extended through this.
pub fn replace(
    conn: &mut DbConnection,
    protocol: &Protocol,
    now: DateTime<Utc>,
) -> Result<Protocol, StoreError> {
    let row = ProtocolRow {
        code: protocol.code.clone(),
        name: protocol.name.as_str().to_owned(),
        categories: protocol
            .categories
            .iter()
            .map(|c| match c {
                IndicationCategory::Pain => "pain",
                IndicationCategory::MentalHealth => "mental_health",
            })
            .collect::<Vec<_>>()
            .join(","),
        spacing: protocol.spacing.as_str().to_owned(),
        infusions_min: signed(protocol.infusions.min),
        infusions_max: signed(protocol.infusions.max),
        per_week_min: protocol.per_week.map(|r| signed(r.min)),
        per_week_max: protocol.per_week.map(|r| signed(r.max)),
        weeks_min: protocol.weeks.map(|r| signed(r.min)),
        weeks_max: protocol.weeks.map(|r| signed(r.max)),
        min_gap_days: signed(protocol.min_gap_days),
        preferred_start_weekday: protocol.preferred_start_weekday.map(|d| d.as_str().to_owned()),
        response_check_infusion: protocol.response_check_infusion.map(signed),
        requires_completed_course: protocol.requires_completed_course,
        updated_at: now.naive_utc(),
    };
    let updated = diesel::update(protocols::table.find(&protocol.code)).set(&row).execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound("protocol"));
    }
    find(conn, &protocol.code)
}
