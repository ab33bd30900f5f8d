//! `--with-database`: where the resources' records are kept.

use serde::Serialize;

use super::{Dependency, Kind, Part};
use crate::model::settings::{SectionSpec, Setting, Value};

/// `--with-database`: where the resources' records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// In process memory: nothing to set up, lost on restart.
    Memory,
    /// PostgreSQL through sqlx: a pool, embedded migrations, health that follows the database.
    Postgres,
}

impl Kind for DatabaseKind {
    const FEATURE: &'static str = "database";
    const KINDS: &'static [(Self, &'static str, &'static str)] = &[
        (
            Self::Memory,
            "memory",
            "records in process memory, lost on restart",
        ),
        (
            Self::Postgres,
            "postgres",
            "PostgreSQL through sqlx: pool, embedded migrations, health that follows the database",
        ),
    ];
    const NONE: Option<Self> = Some(Self::Memory);

    fn part(self) -> Option<&'static Part> {
        match self {
            Self::Postgres => Some(&POSTGRES),
            Self::Memory => None,
        }
    }
}

/// The health entry, besides the overall one, that follows the database.
pub const HEALTH_ENTRY: &str = "database";

/// The database as the templates see it, when the project has one.
#[derive(Debug, Clone, Serialize)]
pub struct Database {
    /// The kind's name, also the module of its stores under `src/store/` (`postgres`).
    pub module: &'static str,
    /// The store type of each resource's module there (`PgStore`).
    pub store: &'static str,
    /// The health entry that follows the database.
    pub health_entry: &'static str,
}

impl Database {
    /// The view of `kind`; `None` for the in-memory one.
    pub fn of(kind: DatabaseKind) -> Option<Self> {
        match kind {
            DatabaseKind::Memory => None,
            DatabaseKind::Postgres => Some(Self {
                module: "postgres",
                store: "PgStore",
                health_entry: HEALTH_ENTRY,
            }),
        }
    }
}

/// What `postgres` adds to the project.
pub const POSTGRES: Part = Part {
    modules: &["database"],
    dependencies: &[
        Dependency {
            default_features: false,
            ..Dependency::with_features(
                "sqlx",
                "0.9",
                &[
                    "runtime-tokio",
                    "tls-rustls-ring-webpki",
                    "postgres",
                    "macros",
                    "migrate",
                    "time",
                ],
            )
        },
        Dependency::plain("time", "0.3"),
    ],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "database",
        rust_type: "DatabaseConfig",
        doc: "The PostgreSQL database: connection, pool, migrations and health checks.",
        settings: &[
            Setting {
                key: "url",
                env: Some("DATABASE_URL"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "`postgres://user:password@host:5432/name`; a secret, so set it in the environment (or `url_file`), never in a committed file",
            },
            Setting {
                key: "url_file",
                env: Some("DATABASE_URL_FILE"),
                rust_type: "String",
                default: Value::Str(""),
                doc: "A file holding the URL; wins over `url` (a mounted Kubernetes Secret)",
            },
            Setting {
                key: "pool_size",
                env: Some("DATABASE_POOL_SIZE"),
                rust_type: "u32",
                default: Value::Number("10"),
                doc: "Most connections the pool opens",
            },
            Setting {
                key: "acquire_timeout_ms",
                env: Some("DATABASE_ACQUIRE_TIMEOUT_MS"),
                rust_type: "u64",
                default: Value::Number("2000"),
                doc: "Longest a call waits for a connection (connecting included) before it fails with UNAVAILABLE",
            },
            Setting {
                key: "idle_timeout_secs",
                env: Some("DATABASE_IDLE_TIMEOUT_SECS"),
                rust_type: "u64",
                default: Value::Number("300"),
                doc: "A connection unused this long is closed",
            },
            Setting {
                key: "statement_timeout_ms",
                env: Some("DATABASE_STATEMENT_TIMEOUT_MS"),
                rust_type: "u64",
                default: Value::Number("5000"),
                doc: "PostgreSQL cancels a statement that runs longer (its `statement_timeout`); 0: no limit",
            },
            Setting {
                key: "migrate_on_start",
                env: Some("DATABASE_MIGRATE_ON_START"),
                rust_type: "bool",
                default: Value::Bool(true),
                doc: "Whether the server applies pending migrations when it starts (`migrate` does it alone); without, it waits for them",
            },
            Setting {
                key: "health_interval_ms",
                env: Some("DATABASE_HEALTH_INTERVAL_MS"),
                rust_type: "u64",
                default: Value::Number("1000"),
                doc: "How often the server checks the database; health is NOT_SERVING while it is unreachable",
            },
        ],
    }],
};
