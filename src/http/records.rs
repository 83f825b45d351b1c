//! What a patient's records share at the edge: recording one for the
//! patient (referrals, screenings, attestations, consults), and how an
//! attestation or a consult is shown and listed.

use actix_web::web::Path;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::__dev::ComposeSchema;
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::domain::intake::Kept;
use crate::domain::values::Id;
use crate::store::{DbConnection, StoreError};

use super::audit::Touched;
use super::auth::{Admits, Ctx, Reply};
use super::extract::Query;
use super::pagination::{patient_page, Keyed, LoadPage, PageQuery};
use super::{Answer, AppState};

/// An attestation or a consult as recorded. Its schema is the record's own,
/// open to the members added here (see the `ToSchema` impl below).
#[derive(Debug, Serialize)]
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
    pub fn new(state: &AppState, kept: Kept<T>) -> Self {
        Self {
            id: kept.id,
            patient_id: kept.patient_id,
            record: kept.record,
            recorded_by: kept.recorded_by,
            created_at: state.local(kept.created_at),
        }
    }
}

/// The record's schema with `id` and `patient_id` before its members and
/// `recorded_by` and `created_at` after, as one object: the record's own
/// schema refuses unknown members in requests, which an `allOf` would carry
/// into this response.
impl<T: ToSchema> ComposeSchema for Recorded<T> {
    fn compose(_: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        let record = match T::schema() {
            RefOr::T(Schema::Object(record)) => record,
            _ => Object::new(),
        };
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(record.description.clone())
            .property("id", Id::schema())
            .property("patient_id", Id::schema())
            .required("id")
            .required("patient_id");
        for (name, schema) in record.properties {
            object = object.property(name, schema);
        }
        for name in record.required {
            object = object.required(name);
        }
        object
            .property(
                "recorded_by",
                text().description(Some("`role:subject` of whoever recorded it.")),
            )
            .property(
                "created_at",
                text()
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("RFC 3339 in the clinic's offset.")),
            )
            .required("recorded_by")
            .required("created_at")
            .into()
    }
}

impl<T: ToSchema> ToSchema for Recorded<T> {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        T::schemas(schemas);
    }
}

/// A store function recording a decided record for a patient: (patient
/// id, record, by, now) to what it stored.
pub type Insert<N, S> =
    fn(&mut DbConnection, &str, &N, &str, DateTime<Utc>) -> Result<S, StoreError>;

/// Records `record`, decided already, for the patient with `insert`, and
/// answers 201 with what was stored as `show` shows it, at `location`.
pub async fn create<A: Admits, N, S, T>(
    ctx: &Ctx<A>,
    patient: Path<Id>,
    record: N,
    insert: Insert<N, S>,
    show: fn(&AppState, S) -> T,
    location: fn(&S) -> String,
) -> Answer
where
    N: Send + 'static,
    S: Keyed + Touched + Send + 'static,
    T: Serialize + 'static,
{
    let (patient_id, by, now) = (patient.into_inner().into_string(), ctx.caller.label(), ctx.now());
    ctx.write(
        move |tx| insert(tx, &patient_id, &record, &by, now),
        move |state, stored| Reply::created(location(&stored), &show(state, stored)),
    )
    .await
}

/// One page of the patient's, oldest first.
pub async fn list<A: Admits, T: Serialize + Send + 'static>(
    ctx: &Ctx<A>,
    page: (Path<Id>, Query<PageQuery>),
    load: LoadPage<Kept<T>>,
) -> Answer {
    patient_page(ctx, page, load, Recorded::new).await
}
