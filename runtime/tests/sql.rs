//! The SQL tables (`store::sql`) against real databases: SQLite in a temporary file, and a
//! throwaway PostgreSQL server from Debian's `postgresql` package on a free loopback port
//! (the PostgreSQL tests skip, saying so, when it is not installed; `scripts/test` installs
//! it before it runs these).
#![cfg(all(feature = "postgres", feature = "sqlite"))]

#[path = "../../tests/support/postgres.rs"]
#[allow(dead_code)]
mod support_postgres;

use std::{io::Write as _, str::FromStr, sync::Arc};

use microframework_runtime::{
    deadline,
    store::{
        sql::{postgres, sqlite, store_error, Document},
        ScanQuery, StoreError, Streams,
    },
};
use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::SqliteConnectOptions,
    SqlitePool,
};
use tokio::sync::mpsc::Sender;
use tokio_stream::StreamExt as _;

/// A record as a spec resource's message is.
#[derive(Clone, PartialEq, prost::Message)]
struct Book {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    title: String,
    #[prost(int64, tag = "3")]
    pages: i64,
}

impl Document for Book {
    fn id(&self) -> &str {
        &self.id
    }

    fn search_text(&self) -> String {
        self.title.to_lowercase()
    }
}

fn book(id: &str, title: &str) -> Book {
    Book {
        id: id.to_owned(),
        title: title.to_owned(),
        pages: 0,
    }
}

/// The operations of a table, so one test runs against either database.
trait Books: Send + Sync {
    async fn get(&self, id: &str) -> Result<Book, StoreError>;
    async fn insert(&self, record: Book) -> Result<Book, StoreError>;
    fn update(
        &self,
        id: &str,
        pages: i64,
    ) -> impl std::future::Future<Output = Result<Book, StoreError>> + Send;
    async fn delete(&self, id: &str) -> Result<(), StoreError>;
    async fn page(&self, filter: &str, start: u64, limit: usize) -> (Vec<String>, Option<u64>);
    async fn count(&self, filter: &str) -> Result<usize, StoreError>;
    async fn streamed(&self, filter: &str) -> Vec<String>;
    /// Streams every record into `sink`, as a handler's producer does.
    fn stream_all(
        self: Arc<Self>,
        sink: Sender<Result<Book, StoreError>>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static;
}

macro_rules! books {
    ($table:ty) => {
        impl Books for $table {
            async fn get(&self, id: &str) -> Result<Book, StoreError> {
                self.get(id).await
            }
            async fn insert(&self, record: Book) -> Result<Book, StoreError> {
                self.insert(record).await
            }
            async fn update(&self, id: &str, pages: i64) -> Result<Book, StoreError> {
                self.update(id, |book| book.pages += pages).await
            }
            async fn delete(&self, id: &str) -> Result<(), StoreError> {
                self.delete(id).await
            }
            async fn page(
                &self,
                filter: &str,
                start: u64,
                limit: usize,
            ) -> (Vec<String>, Option<u64>) {
                let query = ScanQuery {
                    filter,
                    start,
                    limit,
                };
                let batch = self.scan(query).await.expect("a page");
                (
                    batch.records.into_iter().map(|book| book.id).collect(),
                    batch.next,
                )
            }
            async fn count(&self, filter: &str) -> Result<usize, StoreError> {
                self.count(filter).await
            }
            async fn streamed(&self, filter: &str) -> Vec<String> {
                let (sink, mut records) = tokio::sync::mpsc::channel(4);
                let streaming = self.stream(filter, sink);
                let reading = async {
                    let mut ids = Vec::new();
                    while let Some(record) = records.recv().await {
                        ids.push(record.expect("a record").id);
                    }
                    ids
                };
                tokio::join!(streaming, reading).1
            }
            fn stream_all(
                self: Arc<Self>,
                sink: Sender<Result<Book, StoreError>>,
            ) -> impl std::future::Future<Output = ()> + Send + 'static {
                async move { self.stream("", sink).await }
            }
        }
    };
}

books!(postgres::Table<Book>);
books!(sqlite::Table<Book>);

/// Everything a table does, on `table` (empty).
async fn a_table_keeps_lists_and_streams_its_records(table: Arc<impl Books + 'static>) {
    for (id, title) in [
        ("a", "Dune"),
        ("b", "Emma"),
        ("c", "Dune Messiah"),
        ("d", "Ulysses"),
    ] {
        table.insert(book(id, title)).await.expect("insert");
    }
    assert_eq!(table.get("c").await.expect("get").title, "Dune Messiah");
    let missing = table.get("zz").await.expect_err("no such id");
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
    let taken = table.insert(book("a", "Other")).await.expect_err("taken");
    assert!(
        matches!(taken, StoreError::AlreadyExists { field: "id", .. }),
        "{taken:?}"
    );

    // Pages in creation order; the filter ignores case; a page token stays valid.
    let (first, next) = table.page("", 0, 3).await;
    assert_eq!(first, ["a", "b", "c"]);
    let next = next.expect("a next page");
    table.delete("b").await.expect("delete");
    let missing = table.delete("b").await.expect_err("deleted already");
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
    let (rest, end) = table.page("", next, 3).await;
    assert_eq!((rest, end), (vec!["d".to_owned()], None));
    let (dune, _) = table.page("DUNE", 0, 10).await;
    assert_eq!(dune, ["a", "c"]);
    assert_eq!(table.count("dune").await.expect("count"), 2);
    assert_eq!(table.count("").await.expect("count"), 3);
    assert_eq!(table.streamed("dune").await, ["a", "c"]);
    assert_eq!(table.streamed("").await, ["a", "c", "d"]);

    // Concurrent changes of one record apply one after the other: none is lost.
    let changes = (0..40).map(|_| {
        let table = Arc::clone(&table);
        tokio::spawn(async move { table.update("a", 1).await })
    });
    for change in changes.collect::<Vec<_>>() {
        change.await.expect("a task").expect("an update");
    }
    assert_eq!(table.get("a").await.expect("get").pages, 40);
    let missing = table.update("zz", 1).await.expect_err("no such id");
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
}

/// Records a stream test keeps: more than a stream buffers (two batches), and 6 MB in all,
/// more than the socket between a database and its client holds.
const BIG_BOOKS: usize = 600;

/// The review's experiment, on `table` (empty) over a pool of 2 connections: more unread
/// streams than the pool has connections, then other calls still get a connection; then
/// every stream, read slowly (longer than the statement timeout, where there is one), gets
/// every record.
async fn unread_streams_hold_no_connection(table: Arc<impl Books + 'static>) {
    let title = "x".repeat(10_000);
    for i in 0..BIG_BOOKS {
        let record = book(&format!("{i:04}"), &title);
        table.insert(record).await.expect("insert");
    }
    let streams = Streams::default();
    let mut unread = Vec::new();
    for _ in 0..4 {
        let table = Arc::clone(&table);
        let started = streams.start(None, move |sink| table.stream_all(sink));
        let mut records = started.expect("a stream");
        // One record taken: the stream has started; then its client stops reading.
        let first = records.next().await.expect("a record").expect("no error");
        assert_eq!(first.id, "0000");
        unread.push(records);
    }
    // The producers fill their channels and wait for the clients meanwhile.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for _ in 0..5 {
        let fetched = table.get("0007").await;
        assert_eq!(fetched.expect("a connection is free").id, "0007");
    }
    assert_eq!(streams.open(), 4);

    let readers = unread.into_iter().map(|mut records| async move {
        let mut ids = vec!["0000".to_owned()];
        while let Some(record) = records.next().await {
            ids.push(record.expect("every record, no error").id);
            tokio::time::sleep(std::time::Duration::from_micros(500)).await;
        }
        ids
    });
    let read = futures_join_all(readers).await;
    let expected: Vec<String> = (0..BIG_BOOKS).map(|i| format!("{i:04}")).collect();
    for ids in read {
        assert_eq!(ids, expected);
    }
    assert_eq!(streams.open(), 0, "the streams gave their places back");
}

/// A page of 1 MB records stops at its byte budget (4 MiB: three of them), and its token
/// continues; every record is reached page after page. `table` is empty, with that budget.
async fn pages_stop_at_their_byte_budget(table: impl Books) {
    let megabyte = "x".repeat(1024 * 1024);
    for i in 0..10 {
        table
            .insert(book(&format!("m{i}"), &megabyte))
            .await
            .expect("insert");
    }
    let (first, mut next) = table.page("", 0, 1000).await;
    assert_eq!(first.len(), 3, "three 1 MB records fit in 4 MiB: {first:?}");
    let mut seen = first;
    while let Some(start) = next {
        let (page, after) = table.page("", start, 1000).await;
        assert!(!page.is_empty() && page.len() <= 3, "{page:?}");
        seen.extend(page);
        next = after;
    }
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected);
}

/// Awaits every future of `futures`, side by side.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let mut set = tokio::task::JoinSet::new();
    let tasks: Vec<_> = futures.into_iter().enumerate().collect();
    for (index, future) in tasks {
        set.spawn(async move { (index, future.await) });
    }
    let mut outputs: Vec<_> = set.join_all().await;
    outputs.sort_by_key(|(index, _)| *index);
    outputs.into_iter().map(|(_, output)| output).collect()
}

const SQLITE_TABLE: &str = "CREATE TABLE \"books\" (sequence INTEGER PRIMARY KEY AUTOINCREMENT, \
    id TEXT NOT NULL UNIQUE, record BLOB NOT NULL, search TEXT NOT NULL)";
const POSTGRES_TABLE: &str = "CREATE TABLE \"books\" (sequence BIGINT GENERATED ALWAYS AS \
    IDENTITY PRIMARY KEY, id TEXT NOT NULL UNIQUE, record BYTEA NOT NULL, search TEXT NOT NULL)";

/// Calls with less of their deadline left than the pool's statement timeout: each statement
/// ends at the deadline, and one given up (as tonic drops a call whose deadline passed)
/// leaves nothing running in the database. Before, a statement waiting on a lock ran on until
/// the pool's timeout (30 s here), holding its connection.
async fn statements_end_with_their_call(url: &str) {
    use sqlx::{Connection as _, Row as _};
    use std::time::Duration;

    let options = PgConnectOptions::from_str(url).expect("a URL");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options.options([("statement_timeout", "30s")]))
        .await
        .expect("connect");
    let create = POSTGRES_TABLE.replace("\"books\"", "\"locked\"");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&pool)
        .await
        .expect("the table");
    let table = postgres::Table::<Book>::new(pool.clone(), pool, "locked")
        .with_statement_timeout(Duration::from_secs(30));
    table.insert(book("a", "A")).await.expect("inserted");
    let ended = |err: StoreError| assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let call = Duration::from_millis(300);
    // The old code waited for the lock: this test's bound, 5 s, rather than the pool's 30 s.
    let bound = Duration::from_secs(5);
    macro_rules! call {
        ($operation:expr) => {
            tokio::time::timeout(bound, deadline::within(call, $operation))
                .await
                .expect("the statement ended at its call's deadline")
        };
    }

    // Another session holds the table, so every statement on it waits.
    let mut holder = sqlx::PgConnection::connect(url).await.expect("connect");
    let mut held = holder.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE \"locked\" IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *held)
        .await
        .expect("locked");
    ended(call!(table.get("a")).expect_err("waited on the lock"));
    ended(call!(table.count("")).expect_err("waited on the lock"));
    let query = ScanQuery {
        filter: "",
        start: 0,
        limit: 10,
    };
    ended(call!(table.scan(query)).expect_err("waited on the lock"));
    ended(call!(table.insert(book("b", "B"))).expect_err("waited on the lock"));
    ended(call!(table.update("a", |book| book.pages = 1)).expect_err("waited on the lock"));
    ended(call!(table.delete("a")).expect_err("waited on the lock"));

    // Given up while it waits (tonic drops a call at its deadline, or when the client
    // cancels): the database stops the statement by the deadline all the same.
    let given_up = deadline::within(call, table.get("a"));
    let given_up = tokio::time::timeout(call / 2, given_up).await;
    assert!(given_up.is_err(), "the lock is still held");
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'";
    let mut polls = 0;
    loop {
        let row = sqlx::query(waiting)
            .fetch_one(&mut *held)
            .await
            .expect("counted");
        if row.get::<i64, _>(0) == 0 {
            break;
        }
        polls += 1;
        assert!(
            polls < 50,
            "a given-up statement still waits on the lock after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.rollback().await.expect("released");

    // Deadlines longer than the pool's limit leave it to the pool; none were changed above.
    let record = call!(table.get("a")).expect("read");
    assert_eq!(record.pages, 0);
    let long = deadline::within(Duration::from_secs(60), table.count(""));
    assert_eq!(long.await.expect("counted"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_table() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("books.db").display());
    let options = SqliteConnectOptions::from_str(&url)
        .expect("a URL")
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5));
    let pool = SqlitePool::connect_with(options.clone())
        .await
        .expect("open");
    sqlx::query(SQLITE_TABLE)
        .execute(&pool)
        .await
        .expect("the table");
    // As a project has it: writes queue for one connection.
    let writer = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open");
    let table = sqlite::Table::<Book>::new(pool, writer.clone(), "books");
    a_table_keeps_lists_and_streams_its_records(Arc::new(table)).await;

    let readers = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_with(SqliteConnectOptions::from_str(&url).expect("a URL"))
        .await
        .expect("open");
    sqlx::query(sqlx::AssertSqlSafe(
        SQLITE_TABLE.replace("\"books\"", "\"big\""),
    ))
    .execute(&readers)
    .await
    .expect("the table");
    let big = sqlite::Table::<Book>::new(readers.clone(), writer.clone(), "big");
    unread_streams_hold_no_connection(Arc::new(big)).await;

    sqlx::query(sqlx::AssertSqlSafe(
        SQLITE_TABLE.replace("\"books\"", "\"huge\""),
    ))
    .execute(&readers)
    .await
    .expect("the table");
    let huge = sqlite::Table::<Book>::new(readers, writer, "huge");
    pages_stop_at_their_byte_budget(huge.with_max_page_bytes(4 * 1024 * 1024)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_table_and_its_outage() {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| {
            versions
                .flatten()
                .any(|v| v.path().join("bin/pg_ctl").exists())
        })
        .unwrap_or(false);
    if !installed {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: PostgreSQL is not installed (apt-get install postgresql)"
        );
        return;
    }
    let mut server = support_postgres::Postgres::start();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect(&server.url())
        .await
        .expect("connect");
    sqlx::query(POSTGRES_TABLE)
        .execute(&pool)
        .await
        .expect("the table");
    let table = Arc::new(postgres::Table::<Book>::new(pool.clone(), pool, "books"));
    a_table_keeps_lists_and_streams_its_records(Arc::clone(&table)).await;

    // Two connections, and statements cancelled after 200 ms.
    let options = PgConnectOptions::from_str(&server.url()).expect("a URL");
    let small = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_with(options.options([("statement_timeout", "200ms")]))
        .await
        .expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(
        POSTGRES_TABLE.replace("\"books\"", "\"big\""),
    ))
    .execute(&small)
    .await
    .expect("the table");
    let big = postgres::Table::<Book>::new(small.clone(), small.clone(), "big");
    unread_streams_hold_no_connection(Arc::new(big)).await;

    sqlx::query(sqlx::AssertSqlSafe(
        POSTGRES_TABLE.replace("\"books\"", "\"huge\""),
    ))
    .execute(&small)
    .await
    .expect("the table");
    let huge = postgres::Table::<Book>::new(small.clone(), small, "huge");
    pages_stop_at_their_byte_budget(huge.with_max_page_bytes(4 * 1024 * 1024)).await;

    statements_end_with_their_call(&server.url()).await;

    // With the server gone, calls fail with UNAVAILABLE, which clients retry.
    server.stop();
    let down = table.get("a").await.expect_err("the server is down");
    assert!(matches!(down, StoreError::Unavailable(_)), "{down:?}");
    let err = sqlx::Error::PoolTimedOut;
    assert!(matches!(store_error(err), StoreError::Unavailable(_)));
}
