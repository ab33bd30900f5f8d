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
    /// SQLite through sqlx: one file on a local disk, for a single instance.
    Sqlite,
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
        (
            Self::Sqlite,
            "sqlite",
            "SQLite through sqlx: one file on a local disk, embedded migrations, a single instance",
        ),
    ];
    const NONE: Option<Self> = Some(Self::Memory);

    fn part(self) -> Option<&'static Part> {
        match self {
            Self::Postgres => Some(&POSTGRES),
            Self::Sqlite => Some(&SQLITE),
            Self::Memory => None,
        }
    }

    /// Both SQL databases share one template folder, `sql/`: their files differ in a few
    /// lines, which the templates choose by `project.database.kind`.
    fn folder(self) -> &'static str {
        match self {
            Self::Postgres | Self::Sqlite => "sql",
            Self::Memory => self.name(),
        }
    }
}

/// The health entry, besides the overall one, that follows the database.
pub const HEALTH_ENTRY: &str = "database";

/// The database as the templates see it, when the project has one.
#[derive(Debug, Clone, Serialize)]
pub struct Database {
    /// The kind's name (`postgres`, `sqlite`), also the module of its stores under
    /// `src/store/`.
    pub kind: &'static str,
    /// The product's name, for prose (`PostgreSQL`).
    pub title: &'static str,
    /// The store type of each resource's module there (`PgStore`).
    pub store: &'static str,
    /// sqlx's pool type (`PgPool`).
    pub pool: &'static str,
    /// The health entry that follows the database.
    pub health_entry: &'static str,
}

impl Database {
    /// The view of `kind`; `None` for the in-memory one.
    pub fn of(kind: DatabaseKind) -> Option<Self> {
        match kind {
            DatabaseKind::Memory => None,
            DatabaseKind::Postgres => Some(Self {
                kind: "postgres",
                title: "PostgreSQL",
                store: "PgStore",
                pool: "PgPool",
                health_entry: HEALTH_ENTRY,
            }),
            DatabaseKind::Sqlite => Some(Self {
                kind: "sqlite",
                title: "SQLite",
                store: "SqliteStore",
                pool: "SqlitePool",
                health_entry: HEALTH_ENTRY,
            }),
        }
    }
}

/// sqlx with `features` and nothing else: its default features would pick a runtime and TLS.
const fn sqlx(features: &'static [&'static str]) -> Dependency {
    Dependency {
        default_features: false,
        ..Dependency::with_features("sqlx", "0.9", features)
    }
}

/// What `postgres` adds to the project.
pub const POSTGRES: Part = Part {
    modules: &["database"],
    dependencies: &[
        Dependency::runtime(&["postgres"]),
        sqlx(&[
            "runtime-tokio",
            "tls-rustls-ring-webpki",
            "postgres",
            "macros",
            "migrate",
            "time",
        ]),
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
            URL_FILE,
            POOL_SIZE,
            ACQUIRE_TIMEOUT,
            IDLE_TIMEOUT,
            Setting {
                key: "statement_timeout_ms",
                env: Some("DATABASE_STATEMENT_TIMEOUT_MS"),
                rust_type: "u64",
                default: Value::Number("5000"),
                doc: "PostgreSQL cancels a statement that runs longer (its `statement_timeout`); 0: no limit; migrations run without it",
            },
            MIGRATE_ON_START,
            Setting {
                key: "migration_lock_timeout_ms",
                env: Some("DATABASE_MIGRATION_LOCK_TIMEOUT_MS"),
                rust_type: "u64",
                default: Value::Number("10000"),
                doc: "A migration waiting longer for a lock (behind a long transaction, or another instance's migrations) fails and is tried again, rather than queueing every query of its table behind it",
            },
            HEALTH_INTERVAL,
            HEALTH_FAILURES,
        ],
    }],
};

/// What `sqlite` adds to the project: sqlx with SQLite compiled in (no system library).
pub const SQLITE: Part = Part {
    modules: &["database"],
    dependencies: &[
        Dependency::runtime(&["sqlite"]),
        sqlx(&["runtime-tokio", "sqlite-bundled", "macros", "migrate", "time"]),
        Dependency::plain("time", "0.3"),
    ],
    dev_dependencies: &[],
    cargo_features: &[],
    sections: &[SectionSpec {
        key: "database",
        rust_type: "DatabaseConfig",
        doc: "The SQLite database file: connection, pool, migrations and health checks.",
        settings: &[
            Setting {
                key: "url",
                env: Some("DATABASE_URL"),
                rust_type: "String",
                default: Value::Str("sqlite://data/records.db"),
                doc: "`sqlite://path/to/file.db` (relative to the working directory); the file and its directory are made when missing",
            },
            URL_FILE,
            Setting {
                default: Value::Number("4"),
                ..POOL_SIZE
            },
            ACQUIRE_TIMEOUT,
            IDLE_TIMEOUT,
            Setting {
                key: "busy_timeout_ms",
                env: Some("DATABASE_BUSY_TIMEOUT_MS"),
                rust_type: "u64",
                default: Value::Number("5000"),
                doc: "Longest a statement waits for another connection's write to finish (SQLite's `busy_timeout`)",
            },
            MIGRATE_ON_START,
            HEALTH_INTERVAL,
            HEALTH_FAILURES,
        ],
    }],
};

const URL_FILE: Setting = Setting {
    key: "url_file",
    env: Some("DATABASE_URL_FILE"),
    rust_type: "String",
    default: Value::Str(""),
    doc: "A file holding the URL; wins over `url` (a mounted Kubernetes Secret)",
};

const POOL_SIZE: Setting = Setting {
    key: "pool_size",
    env: Some("DATABASE_POOL_SIZE"),
    rust_type: "u32",
    default: Value::Number("10"),
    doc: "Most connections the pool opens",
};

const ACQUIRE_TIMEOUT: Setting = Setting {
    key: "acquire_timeout_ms",
    env: Some("DATABASE_ACQUIRE_TIMEOUT_MS"),
    rust_type: "u64",
    default: Value::Number("2000"),
    doc: "Longest a call waits for a connection (connecting included) before it fails with UNAVAILABLE",
};

const IDLE_TIMEOUT: Setting = Setting {
    key: "idle_timeout_secs",
    env: Some("DATABASE_IDLE_TIMEOUT_SECS"),
    rust_type: "u64",
    default: Value::Number("300"),
    doc: "A connection unused this long is closed",
};

const MIGRATE_ON_START: Setting = Setting {
    key: "migrate_on_start",
    env: Some("DATABASE_MIGRATE_ON_START"),
    rust_type: "bool",
    default: Value::Bool(true),
    doc: "Whether the server applies pending migrations when it starts (`migrate` does it alone); without, it waits for them",
};

const HEALTH_INTERVAL: Setting = Setting {
    key: "health_interval_ms",
    env: Some("DATABASE_HEALTH_INTERVAL_MS"),
    rust_type: "u64",
    default: Value::Number("1000"),
    doc: "How often the server checks the database, on a connection of its own (a busy pool is not an outage)",
};

const HEALTH_FAILURES: Setting = Setting {
    key: "health_failures",
    env: Some("DATABASE_HEALTH_FAILURES"),
    rust_type: "u32",
    default: Value::Number("3"),
    doc:
        "Checks in a row that must fail before health turns NOT_SERVING (one success turns it back)",
};
