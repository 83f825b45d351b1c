//! What attestations and prescriber consults share at the edge: how one is
//! shown, recorded and listed. Their routes are in `attestations` and
//! `consults`.

use actix_web::http::header;
use actix_web::HttpResponse;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::intake::Kept;
use crate::domain::values::Id;
use crate::domain::Refusal;
use crate::store::{DbConnection, StoreError};

use super::auth::Ctx;
use super::pagination::{patient_page, LoadPage, PageQuery};
use super::{Answer, AppState};

/// An attestation or a consult as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recorded<T> {
    pub id: String,
    pub patient_id: String,
    #[serde(flatten)]
    pub record: T,
    /// `role:subject` of whoever recorded it.
    pub recorded_by: String,
    /// RFC 3339 in the clinic's offset.
    pub created_at: String,
}

impl<T> Recorded<T> {
    fn new(state: &AppState, kept: Kept<T>) -> Self {
        Self {
            id: kept.id,
            patient_id: kept.patient_id,
            record: kept.record,
            recorded_by: kept.recorded_by,
            created_at: state.local(kept.created_at),
        }
    }
}

/// A store function recording one for a patient: (patient id, record, by, now).
type Insert<T> = fn(
    &mut DbConnection,
    &str,
    &T,
    &str,
    chrono::DateTime<chrono::Utc>,
) -> Result<Kept<T>, StoreError>;

/// Records `sent` for the patient as the domain decides it (`decide`), and
/// answers 201 with the patient's list of them (`kind`, a path segment) as
/// its `Location`.
pub async fn create<T: Serialize + Send + 'static>(
    ctx: Ctx,
    patient: Id,
    sent: T,
    decide: fn(T, NaiveDate) -> Result<T, Refusal>,
    insert: Insert<T>,
    kind: &str,
) -> Answer {
    let record = decide(sent, ctx.today())?;
    let (patient_id, by, now) = (patient.into_string(), ctx.caller.label(), ctx.now());
    let kept = ctx
        .write(move |tx| insert(tx, &patient_id, &record, &by, now))
        .await?;
    log::info!(
        "{kind} {} recorded for patient {}",
        kept.id,
        kept.patient_id
    );
    let location = format!("/v1/patients/{}/{kind}", kept.patient_id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(Recorded::new(&ctx, kept)))
}

/// One page of the patient's, oldest first.
pub async fn list<T: Serialize + Send + 'static>(
    ctx: &Ctx,
    patient: Id,
    query: PageQuery,
    load: LoadPage<Kept<T>>,
) -> Answer {
    patient_page(
        ctx,
        patient,
        query,
        load,
        |k| k.id.as_str(),
        |k| Recorded::new(ctx, k),
    )
    .await
}
