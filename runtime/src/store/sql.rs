//! Stores over SQL databases through sqlx (features `postgres` and `sqlite`): a database's
//! errors as [`StoreError`]s, and [`postgres::Table`] and [`sqlite::Table`], where the
//! records of a spec's resources are kept whole, protobuf-encoded, beside the columns a
//! listing needs.
//!
//! A table is made by a migration of the project (`migrations/`) with four columns:
//! `sequence` (creation order, an integer the database assigns), `id` (unique), `record`
//! (the encoded message) and `search` (what a listing's filter matches, lowercase).

use prost::Message;

use super::StoreError;

/// A record a table keeps.
pub trait Document: Message + Default + Send + Sync + Unpin + 'static {
    /// The record's unique id.
    fn id(&self) -> &str;
    /// The text a listing's filter is looked for in, lowercase (its string fields, say).
    fn search_text(&self) -> String;
}

/// Whether `err` is a failed unique constraint (PostgreSQL's `unique_violation`, SQLSTATE
/// 23505; SQLite's SQLITE_CONSTRAINT_UNIQUE).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// `err` as a [`StoreError`]: UNAVAILABLE (which clients retry) when the database cannot be
/// reached, is shutting down, cancelled the statement, stayed locked past its busy timeout
/// or its disk failed; INTERNAL otherwise.
pub fn store_error(err: sqlx::Error) -> StoreError {
    if is_unavailable(&err) {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Internal(err.to_string())
    }
}

fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            #[cfg(feature = "postgres")]
            if let Some(db) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                return is_unavailable_postgres(db.code());
            }
            #[cfg(feature = "sqlite")]
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                let code = db.code().and_then(|code| code.parse::<i32>().ok());
                return code.is_some_and(is_unavailable_sqlite);
            }
            false
        }
        _ => false,
    }
}

/// 08: connection exception; 57: operator intervention (shutdown, statement timeout);
/// 53300: too many connections; 40001, 40P01: serialization failure, deadlock.
#[cfg(feature = "postgres")]
fn is_unavailable_postgres(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57") || ["53300", "40001", "40P01"].contains(&code)
}

/// The primary result code of the extended one: SQLITE_BUSY (5) and SQLITE_LOCKED (6), a
/// lock held past the busy timeout; SQLITE_IOERR (10), SQLITE_FULL (13) and SQLITE_CANTOPEN
/// (14), the disk.
#[cfg(feature = "sqlite")]
fn is_unavailable_sqlite(code: i32) -> bool {
    [5, 6, 10, 13, 14].contains(&(code & 0xff))
}

/// The statements of one table, made once.
#[derive(Debug)]
struct Queries {
    get: String,
    insert: String,
    lock: String,
    update: String,
    delete: String,
    scan: String,
    count: String,
}

impl Queries {
    /// The statements of `table`, with `find` the function that finds text in text
    /// (`strpos`, `instr`) and `lock` what makes a read lock its row (`FOR UPDATE`).
    fn of(table: &str, find: &str, lock: &str) -> Self {
        // `$1` is the filter, lowercase; empty matches every row.
        let matches = format!("($1 = '' OR {find}(search, $1) > 0)");
        let table = format!("\"{}\"", table.replace('"', "\"\""));
        Self {
            get: format!("SELECT record FROM {table} WHERE id = $1"),
            insert: format!("INSERT INTO {table} (id, record, search) VALUES ($1, $2, $3)"),
            lock: format!("SELECT record FROM {table} WHERE id = $1{lock}"),
            update: format!("UPDATE {table} SET record = $2, search = $3 WHERE id = $1"),
            delete: format!("DELETE FROM {table} WHERE id = $1"),
            scan: format!(
                "SELECT sequence, record FROM {table} WHERE sequence >= $2 AND {matches} \
                 ORDER BY sequence LIMIT $3"
            ),
            count: format!("SELECT count(*) FROM {table} WHERE {matches}"),
        }
    }
}

fn decode<T: Document>(bytes: &[u8]) -> Result<T, StoreError> {
    T::decode(bytes).map_err(|err| StoreError::Internal(format!("a stored record: {err}")))
}

/// A connection for the statements of one operation: from the pool as it is, or in a
/// transaction whose statement timeout is what is left of the call's deadline.
enum Statements<DB: sqlx::Database> {
    Pooled(sqlx::pool::PoolConnection<DB>),
    Bounded(sqlx::Transaction<'static, DB>),
}

impl<DB: sqlx::Database> Statements<DB> {
    fn connection(&mut self) -> &mut DB::Connection {
        match self {
            Self::Pooled(connection) => connection,
            Self::Bounded(transaction) => transaction,
        }
    }

    /// Ends the transaction, if there is one; dropped instead, it rolls back.
    async fn finish(self) -> Result<(), StoreError> {
        match self {
            Self::Pooled(_) => Ok(()),
            Self::Bounded(transaction) => transaction.commit().await.map_err(store_error),
        }
    }
}

/// The statement timeout, in milliseconds, for the statements of the call being handled
/// ([`crate::deadline`]): what is left of its deadline, where that is shorter than the
/// pool's own `limit` (none: no limit). tonic drops a call at its deadline, but a dropped
/// query runs on in PostgreSQL, holding its connection and locks, until that limit.
fn deadline_bound(limit: Option<std::time::Duration>) -> Option<String> {
    let left = crate::deadline::remaining()?;
    if limit.is_some_and(|limit| limit <= left) {
        return None;
    }
    Some(left.as_millis().max(1).to_string())
}

/// `Table<T>` over one database: the same code for each, with that database's pool type,
/// text search function, row lock and transaction start.
macro_rules! table {
    (
        $title:literal,
        $pool:ty,
        $db:ty,
        $find:literal,
        $lock:literal,
        $begin:literal,
        $locked:literal,
        $set_timeout:expr
    ) => {
        use std::marker::PhantomData;

        use sqlx::{AssertSqlSafe, Row as _};
        use tokio::sync::mpsc::Sender;
        use tokio_stream::StreamExt as _;

        use super::{decode, deadline_bound, is_unique_violation, store_error, Queries, Statements};
        use crate::store::{Batch, ScanQuery, StoreError};

        pub use super::Document;

        #[doc = concat!("Records of type `T` in one ", $title, " table, listed oldest first.")]
        #[derive(Debug)]
        pub struct Table<T> {
            /// Reads.
            pool: $pool,
            /// Writes.
            writer: $pool,
            sql: Queries,
            max_page_bytes: usize,
            /// The pool's statement timeout; none: no limit.
            statement_timeout: Option<std::time::Duration>,
            records: PhantomData<fn() -> T>,
        }

        impl<T: Document> Table<T> {
            /// The table named `table`, read through `pool` and written through `writer`
            /// (the same pool, or one where writes queue).
            pub fn new(pool: $pool, writer: $pool, table: &str) -> Self {
                Self {
                    pool,
                    writer,
                    sql: Queries::of(table, $find, $lock),
                    max_page_bytes: crate::store::DEFAULT_MAX_PAGE_BYTES,
                    statement_timeout: None,
                    records: PhantomData,
                }
            }

            /// The same table over pools whose connections have this statement timeout
            /// (zero: none). A statement of a call whose deadline leaves less time gets that
            /// time as its timeout instead, in a transaction of its own (two more round
            /// trips), so the database stops it when the call is given up.
            pub fn with_statement_timeout(mut self, timeout: std::time::Duration) -> Self {
                self.statement_timeout = Some(timeout).filter(|timeout| !timeout.is_zero());
                self
            }

            /// What bounds the statements of the call being handled, where its deadline is
            /// the shorter limit: the statement that sets their timeout, and the timeout.
            fn bound(&self) -> Option<(&'static str, String)> {
                let set_timeout: Option<&'static str> = $set_timeout;
                set_timeout.zip(deadline_bound(self.statement_timeout))
            }

            /// Sets `bound` on the transaction of `connection`.
            async fn set_bound(
                connection: &mut <$db as sqlx::Database>::Connection,
                (set_timeout, millis): (&str, String),
            ) -> Result<(), StoreError> {
                let query = sqlx::query(AssertSqlSafe(set_timeout)).bind(millis);
                query.execute(connection).await.map_err(store_error)?;
                Ok(())
            }

            /// A connection of `pool` for one operation, bounded by the call's deadline
            /// where that is the shorter limit.
            async fn statements(&self, pool: &$pool) -> Result<Statements<$db>, StoreError> {
                let Some(bound) = self.bound() else {
                    return pool.acquire().await.map(Statements::Pooled).map_err(store_error);
                };
                let mut transaction = pool.begin().await.map_err(store_error)?;
                Self::set_bound(&mut transaction, bound).await?;
                Ok(Statements::Bounded(transaction))
            }

            /// The same table with pages (and stream batches) of at most `max_page_bytes` of
            /// encoded records: a page ends early, and its token continues, rather than
            /// building a response over the message limit; rows past it are not read.
            pub fn with_max_page_bytes(mut self, max_page_bytes: usize) -> Self {
                self.max_page_bytes = max_page_bytes;
                self
            }

            /// The record with this id.
            pub async fn get(&self, id: &str) -> Result<T, StoreError> {
                let mut statements = self.statements(&self.pool).await?;
                let row = sqlx::query(AssertSqlSafe(self.sql.get.as_str()))
                    .bind(id)
                    .fetch_optional(statements.connection())
                    .await
                    .map_err(store_error)?;
                statements.finish().await?;
                let row = row.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?;
                decode(row.get::<&[u8], _>("record"))
            }

            /// Adds a record; its id must be new.
            pub async fn insert(&self, record: T) -> Result<T, StoreError> {
                let mut statements = self.statements(&self.writer).await?;
                let inserted = sqlx::query(AssertSqlSafe(self.sql.insert.as_str()))
                    .bind(record.id())
                    .bind(record.encode_to_vec())
                    .bind(record.search_text())
                    .execute(statements.connection())
                    .await;
                match inserted {
                    Ok(_) => statements.finish().await.map(|()| record),
                    Err(err) if is_unique_violation(&err) => Err(StoreError::AlreadyExists {
                        field: "id",
                        value: record.id().to_owned(),
                    }),
                    Err(err) => Err(store_error(err)),
                }
            }

            #[doc = concat!("Changes the record with this id and returns it as changed; the ", $locked)]
            /// is locked meanwhile, so concurrent changes apply one after the other.
            pub async fn update(
                &self,
                id: &str,
                change: impl FnOnce(&mut T) + Send,
            ) -> Result<T, StoreError> {
                let transaction = self.writer.begin_with($begin).await;
                let mut transaction = transaction.map_err(store_error)?;
                if let Some(bound) = self.bound() {
                    Self::set_bound(&mut transaction, bound).await?;
                }
                let row = sqlx::query(AssertSqlSafe(self.sql.lock.as_str()))
                    .bind(id)
                    .fetch_optional(&mut *transaction)
                    .await
                    .map_err(store_error)?;
                let row = row.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?;
                let mut record: T = decode(row.get::<&[u8], _>("record"))?;
                change(&mut record);
                sqlx::query(AssertSqlSafe(self.sql.update.as_str()))
                    .bind(id)
                    .bind(record.encode_to_vec())
                    .bind(record.search_text())
                    .execute(&mut *transaction)
                    .await
                    .map_err(store_error)?;
                transaction.commit().await.map_err(store_error)?;
                Ok(record)
            }

            /// Removes the record with this id.
            pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
                let mut statements = self.statements(&self.writer).await?;
                let deleted = sqlx::query(AssertSqlSafe(self.sql.delete.as_str()))
                    .bind(id)
                    .execute(statements.connection())
                    .await
                    .map_err(store_error)?;
                statements.finish().await?;
                if deleted.rows_affected() == 0 {
                    return Err(StoreError::NotFound { id: id.to_owned() });
                }
                Ok(())
            }

            /// Up to `query.limit` records whose search text contains the query's filter
            /// (ignoring case) from position `query.start` on, oldest first (keyset: one
            /// index range).
            pub async fn scan(&self, query: ScanQuery<'_>) -> Result<Batch<T>, StoreError> {
                // One row more than asked: where the next page starts, if there is one.
                // Rows are read one at a time, and no further than the page's byte budget.
                let limit = i64::try_from(query.limit).unwrap_or(i64::MAX - 1);
                let filter = query.filter.to_lowercase();
                let mut statements = self.statements(&self.pool).await?;
                let mut rows = sqlx::query(AssertSqlSafe(self.sql.scan.as_str()))
                    .bind(filter)
                    .bind(i64::try_from(query.start).unwrap_or(i64::MAX))
                    .bind(limit + 1)
                    .fetch(statements.connection());
                let mut budget = crate::store::PageBudget::new(self.max_page_bytes);
                let mut records = Vec::new();
                let mut next = None;
                while let Some(row) = rows.next().await {
                    let row = row.map_err(store_error)?;
                    let bytes: &[u8] = row.get("record");
                    if records.len() == query.limit || !budget.take(bytes.len()) {
                        next = u64::try_from(row.get::<i64, _>("sequence")).ok();
                        break;
                    }
                    records.push(decode(bytes)?);
                }
                drop(rows);
                statements.finish().await?;
                Ok(Batch { records, next })
            }

            /// How many records match `filter` (ignoring case).
            pub async fn count(&self, filter: &str) -> Result<usize, StoreError> {
                let mut statements = self.statements(&self.pool).await?;
                let count: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.count.as_str()))
                    .bind(filter.to_lowercase())
                    .fetch_one(statements.connection())
                    .await
                    .map_err(store_error)?;
                statements.finish().await?;
                Ok(usize::try_from(count).unwrap_or(usize::MAX))
            }

            /// Sends every record matching `filter`, oldest first, to `sink` until it is
            /// closed, in batches ([`crate::store::stream`]): each batch is one short query,
            /// so no connection is held while the client reads, and a slow client is not cut
            /// off by the statement timeout. An error ends the stream.
            pub async fn stream(&self, filter: &str, sink: Sender<Result<T, StoreError>>) {
                crate::store::stream(filter, sink, |query| self.scan(query)).await;
            }
        }
    };
}

/// Tables in PostgreSQL (feature `postgres`).
#[cfg(feature = "postgres")]
pub mod postgres {
    table!(
        "PostgreSQL",
        sqlx::PgPool,
        sqlx::Postgres,
        "strpos",
        " FOR UPDATE",
        "BEGIN",
        "row",
        // Local: the transaction's statements alone, and gone with it.
        Some("SELECT set_config('statement_timeout', $1, true)")
    );
}

/// Tables in SQLite (feature `sqlite`). `update` begins IMMEDIATE: it takes the write lock
/// first, as a read then a write in one transaction could otherwise fail when another write
/// came in between.
#[cfg(feature = "sqlite")]
pub mod sqlite {
    table!(
        "SQLite",
        sqlx::SqlitePool,
        sqlx::Sqlite,
        "instr",
        "",
        "BEGIN IMMEDIATE",
        "database",
        // SQLite has no statement timeout; its statements are short and local.
        None
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_quoted() {
        let sql = Queries::of("odd\"name", "strpos", " FOR UPDATE");
        assert_eq!(sql.get, "SELECT record FROM \"odd\"\"name\" WHERE id = $1");
        assert!(
            sql.lock.ends_with("WHERE id = $1 FOR UPDATE"),
            "{}",
            sql.lock
        );
        assert!(
            sql.count.contains("strpos(search, $1) > 0"),
            "{}",
            sql.count
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_codes_of_outages_are_unavailable() {
        for code in ["08006", "57P01", "57014", "53300", "40001", "40P01"] {
            assert!(is_unavailable_postgres(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!is_unavailable_postgres(code), "{code}");
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_codes_of_locks_and_disks_are_unavailable() {
        // SQLITE_BUSY_SNAPSHOT (517) is SQLITE_BUSY; SQLITE_CONSTRAINT_UNIQUE (2067) is not.
        for code in [5, 517, 6, 10, 13, 14] {
            assert!(is_unavailable_sqlite(code), "{code}");
        }
        for code in [2067, 19, 1] {
            assert!(!is_unavailable_sqlite(code), "{code}");
        }
    }

    #[test]
    fn connection_failures_are_unavailable_and_others_internal() {
        let closed = store_error(sqlx::Error::PoolClosed);
        assert!(matches!(closed, StoreError::Unavailable(_)), "{closed:?}");
        let lost = sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into());
        assert!(matches!(store_error(lost), StoreError::Unavailable(_)));
        let column = store_error(sqlx::Error::ColumnNotFound("email".into()));
        assert!(matches!(column, StoreError::Internal(_)), "{column:?}");
        let missing = store_error(sqlx::Error::RowNotFound);
        assert!(matches!(missing, StoreError::Internal(_)), "{missing:?}");
    }
}
