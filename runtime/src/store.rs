//! The building blocks of a service's stores: list queries and pages (positions as page
//! tokens), id and echo limits, [`StoreError`] with its gRPC status codes, and the
//! in-memory table of spec resources ([`memory`]), and their tables in PostgreSQL and SQLite
//! (`sql`, features `postgres` and `sqlite`).

pub mod memory;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub mod sql;
pub mod streams;

pub use streams::{stream_records, RecordStream, Streams};

use std::future::Future;

use tokio::sync::mpsc::Sender;

/// Page size used when a list request asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page a list returns; bigger requests are reduced to it.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Longest id accepted; a longer one is refused before any lookup (ids made here are 36).
pub const MAX_ID_CHARS: usize = 128;
/// Most characters of a client's value repeated in an error message.
pub const MAX_ECHO_CHARS: usize = 64;

/// Which records a listing returns: those matching `filter` from position `start` on, in
/// creation order. Positions only grow, so a page token (a position) stays valid while
/// records are added or removed: no record is skipped or repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanQuery<'a> {
    /// Case-insensitive substring to match; empty matches everything.
    pub filter: &'a str,
    /// The position to start at: 0, or the `next` of a previous batch.
    pub start: u64,
    /// Most records to return.
    pub limit: usize,
}

impl<'a> ScanQuery<'a> {
    /// The query of a list request: a `page_size` of 0 means [`DEFAULT_PAGE_SIZE`], more than
    /// [`MAX_PAGE_SIZE`] means that; `page_token` is what a previous page handed out.
    pub fn from_request(
        filter: &'a str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Self, tonic::Status> {
        let limit = page_limit(page_size)?;
        let start = if page_token.is_empty() {
            0
        } else {
            page_token.parse().map_err(|_| {
                tonic::Status::invalid_argument("page_token: not a token from a previous page")
            })?
        };
        Ok(Self {
            filter,
            start,
            limit,
        })
    }
}

/// Which records a listing returns, by offset: what stores written before [`ScanQuery`]
/// take (kept so they build unchanged). An offset re-reads the records before it on every
/// page, and shifts when records are added; prefer [`ScanQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery<'a> {
    /// Case-insensitive substring to match; empty matches everything.
    pub filter: &'a str,
    /// Matching records to skip.
    pub offset: usize,
    /// Most records to return.
    pub limit: usize,
}

impl<'a> ListQuery<'a> {
    /// The query of a list request: a `page_size` of 0 means [`DEFAULT_PAGE_SIZE`], more than
    /// [`MAX_PAGE_SIZE`] means that; `page_token` is what a previous page handed out.
    pub fn from_request(
        filter: &'a str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Self, tonic::Status> {
        let limit = page_limit(page_size)?;
        let offset = if page_token.is_empty() {
            0
        } else {
            page_token.parse().map_err(|_| {
                tonic::Status::invalid_argument("page_token: not a token from a previous page")
            })?
        };
        Ok(Self {
            filter,
            offset,
            limit,
        })
    }
}

/// One page of a listing by [`ListQuery`].
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The records on this page, oldest first.
    pub records: Vec<T>,
    /// How many records match the filter in all.
    pub total: usize,
}

impl<T> Page<T> {
    /// The token of the page after this one for `query`; empty when this is the last page.
    pub fn next_page_token(&self, query: &ListQuery<'_>) -> String {
        let next = query.offset + self.records.len();
        if next < self.total {
            next.to_string()
        } else {
            String::new()
        }
    }

    /// `total` as the `total_size` of a list response.
    pub fn total_size(&self) -> i32 {
        total_size(self.total)
    }
}

/// The page size of a list request: 0 means [`DEFAULT_PAGE_SIZE`], more than
/// [`MAX_PAGE_SIZE`] means that.
fn page_limit(page_size: i32) -> Result<usize, tonic::Status> {
    match usize::try_from(page_size) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) => Ok(size.min(MAX_PAGE_SIZE)),
        Err(_) => Err(tonic::Status::invalid_argument(
            "page_size: must not be negative",
        )),
    }
}

/// Records in creation order, and where the next batch starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T> {
    /// The records, oldest first.
    pub records: Vec<T>,
    /// The position after the last record, when more records may match; `None` at the end.
    pub next: Option<u64>,
}

impl<T> Batch<T> {
    /// The page token of the page after this one; empty when this is the last page.
    pub fn next_page_token(&self) -> String {
        self.next.map(|next| next.to_string()).unwrap_or_default()
    }
}

/// Bytes a page of records may take unless told otherwise: gRPC's default message limit.
pub const DEFAULT_MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Bytes a list response spends beyond its records' own (its page token, its total, and each
/// record's tag and length), so a page within the budget fits one message.
const PAGE_OVERHEAD: usize = 1024;
const RECORD_OVERHEAD: usize = 11;

/// How much of a page's byte budget is used: records are added while they fit, and always
/// one, so a page makes progress whatever the sizes (a record bigger than the message limit
/// fails when it is sent, not here).
#[derive(Debug, Clone, Copy)]
pub struct PageBudget {
    left: usize,
    taken: usize,
}

impl PageBudget {
    /// A budget for a page sent in a message of at most `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        let left = max_message_bytes.saturating_sub(PAGE_OVERHEAD).max(1);
        Self { left, taken: 0 }
    }

    /// Whether a record of `bytes` (encoded) still goes on the page; counts it if so.
    pub fn take(&mut self, bytes: usize) -> bool {
        let cost = bytes.saturating_add(RECORD_OVERHEAD);
        if self.taken > 0 && cost > self.left {
            return false;
        }
        self.left = self.left.saturating_sub(cost);
        self.taken += 1;
        true
    }
}

/// The most records an in-memory store holds unless told otherwise.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

/// Settings of the stores (`[store]`): the in-memory stores' size, and the limits of the
/// record streams every store sends ([`Streams`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Most records each resource keeps; creating more answers RESOURCE_EXHAUSTED.
    pub max_records: usize,
    /// Most record streams open at once; more answer RESOURCE_EXHAUSTED. 0: no limit.
    pub max_streams: usize,
    /// Most record streams one caller (a JWT subject) has open at once. 0: no limit.
    pub max_streams_per_caller: usize,
    /// Seconds a stream waits for its client to take a record before it is cut off with
    /// DEADLINE_EXCEEDED. 0: no limit.
    pub stream_idle_secs: u64,
    /// Seconds a stream may run before it is cut off with DEADLINE_EXCEEDED. 0: no limit.
    pub stream_max_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_records: DEFAULT_MAX_RECORDS,
            max_streams: streams::DEFAULT_MAX_STREAMS,
            max_streams_per_caller: streams::DEFAULT_MAX_STREAMS_PER_CALLER,
            stream_idle_secs: streams::DEFAULT_STREAM_IDLE_SECS,
            stream_max_secs: streams::DEFAULT_STREAM_MAX_SECS,
        }
    }
}

/// Records a [`stream`] reads at a time.
pub const STREAM_BATCH: usize = 100;

/// Sends every record matching `filter` to `sink`, scanning batch after batch of
/// [`STREAM_BATCH`] records, until the last batch or until `sink` is closed (the client went
/// away); an error is sent and ends the stream.
///
/// `scan` is called with queries starting at `0`, then at each batch's `next`: this is how a
/// store's `stream` reads, holding one batch in memory at a time.
///
/// ```
/// use microframework_runtime::store::memory::{MemoryTable, Record};
/// use microframework_runtime::store::{stream, StoreError};
///
/// #[derive(Clone)]
/// struct Note(String);
///
/// impl Record for Note {
///     fn id(&self) -> &str {
///         &self.0
///     }
///     fn matches(&self, filter: &str) -> bool {
///         self.0.contains(filter)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), StoreError> {
/// let table = MemoryTable::default();
/// table.insert(Note("a".into())).await?;
/// let (sink, mut records) = tokio::sync::mpsc::channel(8);
/// stream("", sink, |query| table.scan(query)).await;
/// assert_eq!(records.recv().await.expect("a record")?.0, "a");
/// assert!(records.recv().await.is_none(), "the stream ended");
/// # Ok(())
/// # }
/// ```
pub async fn stream<'a, T, F, Fut>(
    filter: &'a str,
    sink: Sender<Result<T, StoreError>>,
    mut scan: F,
) where
    F: FnMut(ScanQuery<'a>) -> Fut,
    Fut: Future<Output = Result<Batch<T>, StoreError>>,
{
    let mut start = Some(0);
    while let Some(start_at) = start {
        let query = ScanQuery {
            filter,
            start: start_at,
            limit: STREAM_BATCH,
        };
        let batch = match scan(query).await {
            Ok(batch) => batch,
            Err(err) => {
                // The client may already be gone; there is no one else to tell.
                let _ = sink.send(Err(err)).await;
                return;
            }
        };
        for record in batch.records {
            if sink.send(Ok(record)).await.is_err() {
                return;
            }
        }
        start = batch.next;
    }
}

/// A count of records as the `total_size` of a list response.
pub fn total_size(count: usize) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// `id` without surrounding spaces, or INVALID_ARGUMENT when it is empty or longer than
/// [`MAX_ID_CHARS`].
pub fn required_id(id: &str) -> Result<&str, tonic::Status> {
    let id = id.trim();
    if id.is_empty() {
        return Err(tonic::Status::invalid_argument("id: must not be empty"));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(tonic::Status::invalid_argument(format!(
            "id: must be at most {MAX_ID_CHARS} characters"
        )));
    }
    Ok(id)
}

/// INVALID_ARGUMENT when `value` has more than `max` characters (a spec's `max_length`).
///
/// ```
/// use microframework_runtime::store::check_max_chars;
///
/// assert!(check_max_chars("title", "Dune", 4).is_ok());
/// let status = check_max_chars("title", "Dune!", 4).expect_err("too long");
/// assert_eq!(status.message(), "title: must be at most 4 characters");
/// ```
pub fn check_max_chars(field: &str, value: &str, max: usize) -> Result<(), tonic::Status> {
    // Counting stops past the limit: a huge value costs no more than the limit.
    if value.len() > max && value.chars().nth(max).is_some() {
        return Err(tonic::Status::invalid_argument(format!(
            "{field}: must be at most {max} characters"
        )));
    }
    Ok(())
}

/// INVALID_ARGUMENT when `value` has more than `max` bytes (a spec's `max_length`).
pub fn check_max_bytes(field: &str, value: &[u8], max: usize) -> Result<(), tonic::Status> {
    if value.len() > max {
        return Err(tonic::Status::invalid_argument(format!(
            "{field}: must be at most {max} bytes"
        )));
    }
    Ok(())
}

/// A client's value as an error message may repeat it: at most [`MAX_ECHO_CHARS`]
/// characters, so a huge value does not come back in the answer (and the logs).
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

/// Why a store operation failed; handlers turn it into a gRPC status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No record has this id.
    NotFound {
        /// The id that was looked up.
        id: String,
    },
    /// A unique field already holds this value.
    AlreadyExists {
        /// The unique field.
        field: &'static str,
        /// The value that is taken.
        value: String,
    },
    /// The store holds as many records as it may (`store.max_records`).
    Full {
        /// The most records it may hold.
        max_records: usize,
    },
    /// The backing storage cannot be reached now; the call may be retried. The details
    /// (the driver's text) are logged, not returned.
    Unavailable(String),
    /// The backing storage refused the operation for a reason the caller cannot fix (a
    /// schema out of date, say); the details are logged, not returned.
    Internal(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound { id } => write!(f, "no record with id `{}`", echo(id)),
            Self::AlreadyExists { field, value } => {
                write!(f, "{field} `{}` is already taken", echo(value))
            }
            Self::Full { max_records } => write!(
                f,
                "the store is full ({max_records} records, store.max_records): delete some first"
            ),
            Self::Unavailable(reason) => write!(f, "storage unavailable: {reason}"),
            Self::Internal(reason) => write!(f, "storage error: {reason}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for tonic::Status {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound { .. } => Self::not_found(err.to_string()),
            StoreError::AlreadyExists { .. } => Self::already_exists(err.to_string()),
            StoreError::Full { .. } => Self::resource_exhausted(err.to_string()),
            StoreError::Unavailable(_) => {
                tracing::warn!(%err, "storage unavailable");
                Self::unavailable("storage unavailable: try again later")
            }
            StoreError::Internal(_) => {
                tracing::error!(%err, "storage failed");
                Self::internal("storage error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batches of two numbers from the query's start, ending after 5, failing at `fail_at`.
    async fn numbers(query: ScanQuery<'_>, fail_at: Option<u64>) -> Result<Batch<u64>, StoreError> {
        let start = query.start;
        assert_eq!(query.limit, STREAM_BATCH);
        if fail_at == Some(start) {
            return Err(StoreError::Unavailable("gone".to_owned()));
        }
        let records: Vec<u64> = (start..6).take(2).collect();
        let next = Some(start + 2).filter(|next| *next < 6);
        Ok(Batch { records, next })
    }

    #[tokio::test]
    async fn a_stream_reads_batch_after_batch_and_ends_on_an_error() {
        let (sink, mut received) = tokio::sync::mpsc::channel(16);
        stream("", sink, |query| numbers(query, None)).await;
        let mut all = Vec::new();
        while let Some(number) = received.recv().await {
            all.push(number.expect("a number"));
        }
        assert_eq!(all, [0, 1, 2, 3, 4, 5]);

        let (sink, mut received) = tokio::sync::mpsc::channel(16);
        stream("", sink, |query| numbers(query, Some(2))).await;
        assert_eq!(received.recv().await, Some(Ok(0)));
        assert_eq!(received.recv().await, Some(Ok(1)));
        let failed = received.recv().await.expect("the error");
        assert!(matches!(failed, Err(StoreError::Unavailable(_))));
        assert_eq!(received.recv().await, None, "nothing after the error");
    }

    #[tokio::test]
    async fn a_stream_stops_reading_when_the_client_is_gone() {
        let (sink, received) = tokio::sync::mpsc::channel(1);
        drop(received);
        let mut scans = 0;
        stream("", sink, |query| {
            scans += 1;
            numbers(query, None)
        })
        .await;
        assert_eq!(scans, 1, "no batch read after the sink closed");
    }

    #[test]
    fn echoed_values_are_cut_short() {
        let huge = "x".repeat(4 << 20);
        let message = StoreError::NotFound { id: huge }.to_string();
        assert!(message.len() < MAX_ECHO_CHARS + 40, "{}", message.len());
        assert_eq!(echo("short"), "short");
        assert_eq!(echo(&"é".repeat(100)).chars().count(), MAX_ECHO_CHARS + 3);
    }

    #[test]
    fn page_sizes_default_and_are_capped_and_tokens_are_positions() {
        let query = ScanQuery::from_request("", 0, "").expect("valid");
        assert_eq!((query.start, query.limit), (0, DEFAULT_PAGE_SIZE));
        let query = ScanQuery::from_request("x", 1_000_000, "42").expect("valid");
        assert_eq!((query.start, query.limit), (42, MAX_PAGE_SIZE));
        assert!(ScanQuery::from_request("", -1, "").is_err());
        let status = ScanQuery::from_request("", 10, "not-a-token").expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn store_errors_map_to_their_codes_without_internal_details() {
        let internal: tonic::Status = StoreError::Internal("secret detail".into()).into();
        assert_eq!(internal.code(), tonic::Code::Internal);
        assert!(!internal.message().contains("secret"));
        let gone: tonic::Status = StoreError::NotFound { id: "7".into() }.into();
        assert_eq!(gone.code(), tonic::Code::NotFound);
        let down: tonic::Status =
            StoreError::Unavailable("pool timed out at 10.0.0.7:5432".into()).into();
        assert_eq!(down.code(), tonic::Code::Unavailable);
        assert!(!down.message().contains("10.0.0.7"), "{}", down.message());
    }

    #[test]
    fn ids_are_required_and_bounded() {
        assert_eq!(required_id(" abc ").expect("an id"), "abc");
        assert!(required_id("  ").is_err());
        let long = "x".repeat(MAX_ID_CHARS + 1);
        let status = required_id(&long).expect_err("too long");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().len() < 100, "{}", status.message());
    }
}
