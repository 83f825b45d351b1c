//! Both migration folders must build the tables and columns that
//! `src/store/schema.rs` describes: same names, types and nullability.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use infusion_api::config::DatabaseTarget;
use infusion_api::store::{self, migrations, DbConnection};

use crate::helpers::TestDb;

/// table → column → (portable type, not null)
type Shape = BTreeMap<String, BTreeMap<String, (String, bool)>>;

#[derive(QueryableByName)]
struct ColumnInfo {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    column_type: String,
    #[diesel(sql_type = Bool)]
    not_null: bool,
}

/// The diesel type a backend's column type stands for.
fn portable(column_type: &str) -> String {
    match column_type.to_ascii_lowercase().as_str() {
        "text" => "Text",
        "date" => "Date",
        "boolean" => "Bool",
        "timestamp" | "timestamp without time zone" => "Timestamp",
        "integer" => "Integer",
        "bigint" => "BigInt",
        other => return format!("unportable `{other}`"),
    }
    .to_owned()
}

fn migrated_shape(target: DatabaseTarget) -> Shape {
    let pool = store::build_pool(&target, 1).unwrap();
    let mut conn = pool.get().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    let columns: Vec<ColumnInfo> = match &mut **conn {
        DbConnection::Sqlite(c) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name, p.type AS column_type,
                    p.\"notnull\" = 1 AS not_null
             FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
               AND m.name <> '__diesel_schema_migrations'",
        )
        .load(c)
        .unwrap(),
        DbConnection::Pg(c) => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name,
                    data_type::text AS column_type, is_nullable = 'NO' AS not_null
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
        )
        .load(c)
        .unwrap(),
    };
    let mut shape = Shape::new();
    for c in columns {
        shape
            .entry(c.table_name)
            .or_default()
            .insert(c.column_name, (portable(&c.column_type), c.not_null));
    }
    shape
}

/// Reads the `diesel::table!` blocks of schema.rs.
fn declared_shape() -> Shape {
    let source = include_str!("../../src/store/schema.rs");
    let mut shape = Shape::new();
    let mut table: Option<String> = None;
    for line in source.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix('{').map(str::trim) {
            if let Some((name, _)) = rest.split_once(" (") {
                table = Some(name.trim().to_owned());
                continue;
            }
        }
        if line == "}" {
            table = None;
            continue;
        }
        if let (Some(table), Some((column, ty))) = (&table, line.split_once("->")) {
            let ty = ty.trim().trim_end_matches(',');
            let (ty, not_null) =
                match ty.strip_prefix("Nullable<").and_then(|t| t.strip_suffix('>')) {
                    Some(inner) => (inner, false),
                    None => (ty, true),
                };
            shape
                .entry(table.clone())
                .or_default()
                .insert(column.trim().to_owned(), (ty.to_owned(), not_null));
        }
    }
    shape
}

#[test]
fn schema_rs_declares_tables() {
    let declared = declared_shape();
    assert!(declared["patients"].contains_key("date_of_birth"));
    assert_eq!(declared["patients"]["email"], ("Text".to_owned(), false));
}

#[test]
fn the_sqlite_migrations_build_the_declared_schema() {
    let path = std::env::temp_dir()
        .join(format!("infusion-schema-{}.sqlite3", uuid::Uuid::now_v7().simple()));
    let shape = migrated_shape(DatabaseTarget::Sqlite(path.clone()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert_eq!(shape, declared_shape());
}

#[test]
fn the_postgres_migrations_build_the_declared_schema() {
    let db = TestDb::create();
    if !db.is_postgres() {
        // The PostgreSQL pass of the suite (TEST_DATABASE_URL set) runs this.
        return;
    }
    let shape = migrated_shape(DatabaseTarget::parse(&db.url()).unwrap());
    assert_eq!(shape, declared_shape());
}

/// The SQL both backends read alike is written once: every migration is the
/// same text in both folders, but for the files this list names, each with
/// the reason SQLite and PostgreSQL cannot share it.
const MAY_DIFFER: &[&str] = &[
    // Triggers: PostgreSQL runs a PL/pgSQL function that lets the pruning
    // command delete; SQLite has neither, and its prune drops and restores
    // the delete triggers in its own transaction.
    "20261129000007_audit_append_only/up.sql",
    "20261129000007_audit_append_only/down.sql",
    // The feed: PostgreSQL records each event's writing transaction
    // (`pg_current_xact_id()`), which SQLite has no need of (one writer).
    "20261129000011_events/up.sql",
];

#[test]
fn both_migration_folders_hold_the_same_sql() {
    let folder = |backend: &str| -> BTreeMap<String, String> {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
        let mut files = BTreeMap::new();
        for migration in std::fs::read_dir(&root).unwrap() {
            let migration = migration.unwrap().path();
            for file in std::fs::read_dir(&migration).unwrap() {
                let file = file.unwrap().path();
                let name = file.strip_prefix(&root).unwrap().display().to_string();
                files.insert(name, std::fs::read_to_string(&file).unwrap());
            }
        }
        files
    };
    let (sqlite, postgres) = (folder("sqlite"), folder("postgres"));
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the same migrations, by name, in both folders"
    );
    assert!(sqlite.len() >= 10, "{} files", sqlite.len());
    for (name, text) in &sqlite {
        if !MAY_DIFFER.contains(&name.as_str()) {
            assert_eq!(text, &postgres[name], "{name} differs between the backends");
        }
    }
}
