//! Limits on the record streams a server sends: how many are open at once (in all, and per
//! caller where authentication knows the caller), how long one may wait for its client to
//! read, and how long one may run.
//!
//! A stream's records are made by a producer (a store's `stream`) that sends them into a
//! bounded channel; [`Streams::start`] runs it beside a watchdog and hands back the
//! [`RecordStream`] the handler answers with. A client that stops reading fills the channel
//! and the producer waits; after `store.stream_idle_secs` without a record taken, the
//! producer is dropped, the records waiting for the client are freed, and the client gets
//! DEADLINE_EXCEEDED after what it had already been sent. Stores read in batches
//! ([`super::stream`]), so a waiting producer holds no database connection.

use std::{
    collections::HashMap,
    future::Future,
    pin::{pin, Pin},
    sync::{Arc, Mutex, OnceLock, PoisonError},
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Status};

use super::{StoreConfig, StoreError, STREAM_BATCH};

/// Most streams open at once unless told otherwise.
pub const DEFAULT_MAX_STREAMS: usize = 100;
/// Most streams one caller has open at once unless told otherwise.
pub const DEFAULT_MAX_STREAMS_PER_CALLER: usize = 10;
/// Seconds a stream waits for its client to take a record unless told otherwise.
pub const DEFAULT_STREAM_IDLE_SECS: u64 = 30;
/// Seconds a stream may run unless told otherwise.
pub const DEFAULT_STREAM_MAX_SECS: u64 = 600;
/// Bytes of encoded records a sized stream ([`Streams::start_sized`], [`stream_records`])
/// keeps waiting for its client; one record bigger than this still passes, alone.
pub const STREAM_BUFFER_BYTES: usize = 1024 * 1024;

/// A record on its way to the client, with the bytes it holds of its stream's budget.
type Item<T> = (Result<T, StoreError>, Option<OwnedSemaphorePermit>);

/// The limits of the record streams of one server; clones share the counts of open streams.
///
/// The server's [`crate::middleware::CallGuard`] hands them to each streaming call (see
/// [`CallGuard::with_streams`](crate::middleware::CallGuard::with_streams)), where
/// [`Streams::of`] finds them.
#[derive(Debug, Clone)]
pub struct Streams {
    shared: Arc<Limits>,
}

#[derive(Debug)]
struct Limits {
    max_streams: usize,
    max_per_caller: usize,
    idle: Duration,
    lifetime: Duration,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_caller: HashMap<String, usize>,
}

impl Default for Streams {
    fn default() -> Self {
        Self::new(&StoreConfig::default())
    }
}

impl Streams {
    /// The limits of `config` (`[store]`); a 0 turns that limit off.
    pub fn new(config: &StoreConfig) -> Self {
        let seconds = |secs: u64| match secs {
            0 => Duration::MAX,
            secs => Duration::from_secs(secs),
        };
        let count = |count: usize| match count {
            0 => usize::MAX,
            count => count,
        };
        Self {
            shared: Arc::new(Limits {
                max_streams: count(config.max_streams),
                max_per_caller: count(config.max_streams_per_caller),
                idle: seconds(config.stream_idle_secs),
                lifetime: seconds(config.stream_max_secs),
                open: Mutex::default(),
            }),
        }
    }

    /// The limits the server handed to `request`, or the defaults (counted apart) when it
    /// handed none.
    pub fn of<R>(request: &Request<R>) -> Self {
        static DEFAULTS: OnceLock<Streams> = OnceLock::new();
        match request.extensions().get::<Self>() {
            Some(streams) => streams.clone(),
            None => DEFAULTS.get_or_init(Self::default).clone(),
        }
    }

    /// How many streams are open now.
    pub fn open(&self) -> usize {
        self.shared.lock().total
    }

    /// Starts a stream for `caller` (who it is, when known): `produce` is given the channel
    /// to send its records into, and runs until it returns, its client goes away, its
    /// client takes no record for the idle limit, or the stream reaches its lifetime. At
    /// most [`STREAM_BATCH`] records wait for the client.
    ///
    /// RESOURCE_EXHAUSTED when as many streams are open as the limits allow.
    pub fn start<T, F, Fut>(
        &self,
        caller: Option<&str>,
        produce: F,
    ) -> Result<RecordStream<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(mpsc::Sender<Result<T, StoreError>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.launch(caller, None, produce)
    }

    /// [`Streams::start`], with the records waiting for the client bounded in bytes too:
    /// at most [`STREAM_BUFFER_BYTES`] by `size` (a record's encoded length).
    pub fn start_sized<T, F, Fut>(
        &self,
        caller: Option<&str>,
        size: fn(&T) -> usize,
        produce: F,
    ) -> Result<RecordStream<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(mpsc::Sender<Result<T, StoreError>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.launch(caller, Some(size), produce)
    }

    fn launch<T, F, Fut>(
        &self,
        caller: Option<&str>,
        size: Option<fn(&T) -> usize>,
        produce: F,
    ) -> Result<RecordStream<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(mpsc::Sender<Result<T, StoreError>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let slot = self.take_slot(caller)?;
        let (sink, sent) = mpsc::channel(1);
        let (waiting, receiver) = mpsc::channel(STREAM_BATCH);
        tokio::spawn(relay(sent, waiting, size));
        let state = Arc::new(Mutex::new(State {
            receiver: Some(receiver),
            slot: Some(slot),
            taken: 0,
            ended: None,
            reader: None,
        }));
        let watched = Watched {
            state: Arc::clone(&state),
            idle: self.shared.idle,
            lifetime: self.shared.lifetime,
        };
        tokio::spawn(watched.run(produce(sink)));
        Ok(RecordStream { state })
    }

    fn take_slot(&self, caller: Option<&str>) -> Result<Slot, Status> {
        let limits = &self.shared;
        let mut open = limits.lock();
        if open.total >= limits.max_streams {
            return Err(Status::resource_exhausted(format!(
                "too many streams open ({}, store.max_streams): try again later",
                limits.max_streams
            )));
        }
        if let Some(caller) = caller {
            let mine = open.by_caller.get(caller).copied().unwrap_or(0);
            if mine >= limits.max_per_caller {
                return Err(Status::resource_exhausted(format!(
                    "too many streams open by this caller ({}, store.max_streams_per_caller): \
                     finish one first",
                    limits.max_per_caller
                )));
            }
            open.by_caller.insert(caller.to_owned(), mine + 1);
        }
        open.total += 1;
        Ok(Slot {
            streams: self.clone(),
            caller: caller.map(str::to_owned),
        })
    }
}

impl Limits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts a stream of records for `request` under the limits the server handed it
/// ([`Streams::of`]), counting it against its caller (the JWT subject, with feature `jwt`),
/// with the records waiting for the client bounded by their encoded size
/// ([`STREAM_BUFFER_BYTES`]).
///
/// ```
/// use microframework_runtime::store::memory::{MemoryTable, Record};
/// use microframework_runtime::store::stream_records;
/// use tokio_stream::StreamExt;
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Note {
///     #[prost(string, tag = "1")]
///     id: String,
/// }
///
/// impl Record for Note {
///     fn id(&self) -> &str {
///         &self.id
///     }
///     fn matches(&self, filter: &str) -> bool {
///         self.id.contains(filter)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tonic::Status> {
/// let table = std::sync::Arc::new(MemoryTable::default());
/// table.insert(Note { id: "a".into() }).await?;
/// let request = tonic::Request::new(());
/// let records = stream_records(&request, |sink| async move { table.stream("", sink).await })?;
/// let notes: Vec<String> = records.map(|note| note.expect("a note").id).collect().await;
/// assert_eq!(notes, ["a"]);
/// # Ok(())
/// # }
/// ```
pub fn stream_records<R, T, F, Fut>(
    request: &Request<R>,
    produce: F,
) -> Result<RecordStream<T>, Status>
where
    T: prost::Message + 'static,
    F: FnOnce(mpsc::Sender<Result<T, StoreError>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    Streams::of(request).start_sized(caller(request), T::encoded_len, produce)
}

/// Who makes `request`, where authentication knows: the subject of its verified JWT.
pub fn caller<R>(request: &Request<R>) -> Option<&str> {
    #[cfg(feature = "jwt")]
    if let Some(claims) = request.extensions().get::<crate::auth::Claims>() {
        return Some(claims.sub.as_str());
    }
    let _ = request;
    None
}

/// Moves the producer's records to the client's side, each holding its size of the
/// stream's byte budget (when sized) until the client takes it. Ends when the producer is
/// done or the client's side is gone (a cut-off stream frees its records, and so the budget).
async fn relay<T>(
    mut sent: mpsc::Receiver<Result<T, StoreError>>,
    waiting: mpsc::Sender<Item<T>>,
    size: Option<fn(&T) -> usize>,
) {
    let budget = Arc::new(Semaphore::new(STREAM_BUFFER_BYTES));
    while let Some(record) = sent.recv().await {
        let permit = match (size, &record) {
            (Some(size), Ok(value)) => {
                let bytes = size(value).clamp(1, STREAM_BUFFER_BYTES);
                let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
                tokio::select! {
                    permit = Arc::clone(&budget).acquire_many_owned(bytes) => match permit {
                        Ok(permit) => Some(permit),
                        Err(_) => return,
                    },
                    () = waiting.closed() => return,
                }
            }
            _ => None,
        };
        if waiting.send((record, permit)).await.is_err() {
            return;
        }
    }
}

/// A place among the open streams, given back when dropped.
#[derive(Debug)]
struct Slot {
    streams: Streams,
    caller: Option<String>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.shared.lock();
        open.total -= 1;
        if let Some(caller) = &self.caller {
            if let Some(mine) = open.by_caller.get_mut(caller) {
                *mine -= 1;
                if *mine == 0 {
                    open.by_caller.remove(caller);
                }
            }
        }
    }
}

/// What the watchdog and the client's side of a stream share.
struct State<T> {
    /// The records waiting for the client; gone once drained, or freed when cut off.
    receiver: Option<mpsc::Receiver<Item<T>>>,
    slot: Option<Slot>,
    /// Records the client has taken.
    taken: u64,
    /// Why the stream was cut off, for the client once it reads again.
    ended: Option<Status>,
    /// The task reading the stream, to wake when it is cut off.
    reader: Option<Waker>,
}

type Shared<T> = Arc<Mutex<State<T>>>;

fn lock<T>(state: &Mutex<State<T>>) -> std::sync::MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The watchdog of one stream.
struct Watched<T> {
    state: Shared<T>,
    idle: Duration,
    lifetime: Duration,
}

impl<T> Watched<T> {
    async fn run(self, produce: impl Future<Output = ()>) {
        let mut produce = pin!(produce);
        let mut producing = true;
        let deadline = tokio::time::Instant::now().checked_add(self.lifetime);
        let lifetime = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        let mut lifetime = pin!(lifetime);
        let mut taken = 0;
        loop {
            tokio::select! {
                () = &mut produce, if producing => producing = false,
                () = tokio::time::sleep(self.idle.min(Duration::from_secs(86_400))) => {
                    let state = lock(&self.state);
                    let Some(receiver) = &state.receiver else {
                        return; // drained, or the client went away
                    };
                    if !receiver.is_empty() && state.taken == taken {
                        drop(state);
                        let secs = self.idle.as_secs();
                        self.cut_off(format!(
                            "the client took no record for {secs} s (store.stream_idle_secs)"
                        ));
                        return;
                    }
                    taken = state.taken;
                }
                () = &mut lifetime => {
                    let secs = self.lifetime.as_secs();
                    self.cut_off(format!(
                        "the stream ran for {secs} s, its limit (store.stream_max_secs)"
                    ));
                    return;
                }
            }
        }
    }

    /// Frees what waits for the client and tells it why; the producer is dropped on return.
    fn cut_off(&self, reason: String) {
        let mut state = lock(&self.state);
        if state.receiver.is_none() && state.slot.is_none() {
            return;
        }
        tracing::warn!(%reason, "stream cut off");
        state.receiver = None;
        state.slot = None;
        state.ended = Some(Status::deadline_exceeded(reason));
        if let Some(reader) = state.reader.take() {
            reader.wake();
        }
    }
}

/// The records of a stream as its client takes them: each a record or an error, then
/// DEADLINE_EXCEEDED when the stream was cut off (idle or too long).
pub struct RecordStream<T> {
    state: Shared<T>,
}

impl<T> std::fmt::Debug for RecordStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream").finish_non_exhaustive()
    }
}

impl<T> futures_core::Stream for RecordStream<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = lock(&self.state);
        let state = &mut *state;
        let Some(receiver) = &mut state.receiver else {
            return Poll::Ready(state.ended.take().map(Err));
        };
        match receiver.poll_recv(cx) {
            Poll::Ready(Some((record, budget))) => {
                // The record leaves the buffer: its bytes go back to the budget.
                drop(budget);
                state.taken += 1;
                Poll::Ready(Some(record.map_err(Status::from)))
            }
            Poll::Ready(None) => {
                state.receiver = None;
                state.slot = None;
                Poll::Ready(state.ended.take().map(Err))
            }
            Poll::Pending => {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for RecordStream<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        state.receiver = None;
        state.slot = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio_stream::StreamExt;

    use super::*;

    fn limits(max_streams: usize, per_caller: usize, idle: u64, lifetime: u64) -> Streams {
        Streams::new(&StoreConfig {
            max_streams,
            max_streams_per_caller: per_caller,
            stream_idle_secs: idle,
            stream_max_secs: lifetime,
            ..StoreConfig::default()
        })
    }

    /// Sends `count` numbers, one every `every`, and sets `dropped` when it is dropped
    /// (finished or cut off).
    async fn numbers(
        sink: mpsc::Sender<Result<u32, StoreError>>,
        count: u32,
        every: Duration,
        dropped: Arc<AtomicBool>,
    ) {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _flag = Flag(dropped);
        for number in 0..count {
            if !every.is_zero() {
                tokio::time::sleep(every).await;
            }
            if sink.send(Ok(number)).await.is_err() {
                return;
            }
        }
    }

    fn endless(streams: &Streams, caller: Option<&str>) -> Result<RecordStream<u32>, Status> {
        let dropped = Arc::new(AtomicBool::new(false));
        let every = Duration::from_secs(1);
        streams.start(caller, |sink| numbers(sink, u32::MAX, every, dropped))
    }

    #[tokio::test(start_paused = true)]
    async fn streams_past_the_limits_are_refused_until_one_ends() {
        let streams = limits(3, 2, 0, 0);
        let first = endless(&streams, Some("alice")).expect("alice's first");
        let _second = endless(&streams, Some("alice")).expect("alice's second");
        let refused = endless(&streams, Some("alice")).expect_err("alice has 2 open");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("max_streams_per_caller"),
            "{refused:?}"
        );
        let _bobs = endless(&streams, Some("bob")).expect("bob's first");
        let refused = endless(&streams, None).expect_err("3 open in all");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(
            refused.message().contains("store.max_streams)"),
            "{refused:?}"
        );
        assert_eq!(streams.open(), 3);

        drop(first);
        assert_eq!(streams.open(), 2, "a client gone gives its place back");
        endless(&streams, Some("alice")).expect("alice has 1 open");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_read_to_its_end_gives_its_place_back() {
        let streams = limits(1, 1, 30, 600);
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&dropped);
        let records = streams.start(None, |sink| numbers(sink, 250, Duration::ZERO, flag));
        let all: Vec<u32> = records
            .expect("a stream")
            .map(|number| number.expect("a number"))
            .collect()
            .await;
        assert_eq!(all, (0..250).collect::<Vec<_>>());
        assert_eq!(streams.open(), 0);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_off_and_what_waited_for_it_freed() {
        let streams = limits(10, 10, 2, 600);
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&dropped);
        let records = streams.start(None, |sink| numbers(sink, 1000, Duration::ZERO, flag));
        let mut records = records.expect("a stream");
        for expected in 0..5 {
            assert_eq!(records.next().await.expect("a record").ok(), Some(expected));
        }
        // The client stops reading: the producer fills the channel and waits.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!dropped.load(Ordering::SeqCst), "not idle for long yet");
        assert_eq!(streams.open(), 1);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(dropped.load(Ordering::SeqCst), "the producer was dropped");
        assert_eq!(streams.open(), 0, "its place was given back");
        assert!(
            lock(&records.state).receiver.is_none(),
            "the waiting records were freed"
        );
        let ended = records.next().await.expect("why it ended");
        let status = ended.expect_err("cut off");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(
            status.message().contains("store.stream_idle_secs"),
            "{status:?}"
        );
        assert!(records.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_sized_stream_keeps_at_most_its_byte_budget_waiting() {
        let streams = limits(10, 10, 0, 0);
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&sent);
        // Records of 100 KB: about 10 fit in the 1 MiB budget, far fewer than the 100 the
        // channel would otherwise hold.
        let produce = |sink: mpsc::Sender<Result<Vec<u8>, StoreError>>| async move {
            for _ in 0..200 {
                if sink.send(Ok(vec![0; 100 * 1024])).await.is_err() {
                    return;
                }
                counted.fetch_add(1, Ordering::SeqCst);
            }
        };
        let mut records = streams
            .start_sized(None, Vec::len, produce)
            .expect("a stream");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let waiting = sent.load(Ordering::SeqCst);
        // The budget's 10, one in the relay, one in the producer's channel.
        assert!(
            (10..=13).contains(&waiting),
            "{waiting} records sent while unread"
        );
        let mut taken = 0;
        while let Some(record) = records.next().await {
            assert_eq!(record.expect("a record").len(), 100 * 1024);
            taken += 1;
        }
        assert_eq!(taken, 200, "every record, as the client reads");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_within_the_idle_limit_gets_every_record() {
        let streams = limits(10, 10, 2, 0);
        let dropped = Arc::new(AtomicBool::new(false));
        let records = streams.start(None, |sink| numbers(sink, 300, Duration::ZERO, dropped));
        let mut records = records.expect("a stream");
        let mut all = Vec::new();
        while let Some(number) = records.next().await {
            all.push(number.expect("a number"));
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        assert_eq!(all, (0..300).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_past_its_lifetime_is_cut_off() {
        let streams = limits(10, 10, 0, 10);
        let mut records = endless(&streams, None).expect("a stream");
        let mut taken = 0;
        let status = loop {
            match records.next().await.expect("records, then why it ended") {
                Ok(_) => taken += 1,
                Err(status) => break status,
            }
        };
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert!(
            status.message().contains("store.stream_max_secs"),
            "{status:?}"
        );
        assert!((9..=10).contains(&taken), "one a second for 10 s: {taken}");
        assert_eq!(streams.open(), 0);
    }
}
