//! Prometheus metrics with the names of go-grpc-prometheus, so existing dashboards work: the
//! server's [`MetricsLayer`], the `/metrics` endpoint ([`start`]), and the client's breaker
//! state ([`client_breaker_state`]). Cargo feature `prometheus`.
//!
//! A server keeps one series per route of its method table and one more for every path it
//! does not serve, so no client can create series (and memory) at will.
//!
//! The server's counters are kept per worker thread ("shards") and summed when scraped: a busy
//! server's workers then update separate cache lines instead of contending for one, which
//! costs a few percent of throughput otherwise (benches/load in microframework).

use std::{
    cell::Cell,
    convert::Infallible,
    fmt::Write as _,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, OnceLock,
    },
    task::{Context as TaskContext, Poll},
    time::{Duration, Instant},
};

use anyhow::Context;
use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use pin_project_lite::pin_project;
use prometheus::{Encoder, IntGaugeVec, Opts, TextEncoder};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinHandle};
use tonic::body::Body;
use tower::{Layer, Service};

use serde::Deserialize;

use crate::{
    client::BreakerState,
    methods::{MethodKind, Methods},
    middleware::{code_name, CodeObserver, PendingCode},
};

/// The Prometheus endpoint (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether Prometheus text is served at `http://HOST:PORT/metrics`.
    pub enabled: bool,
    /// Address `/metrics` listens on.
    pub host: String,
    /// Port `/metrics` listens on; 0 picks a free port.
    pub port: u16,
    /// A connection that has not sent a whole request head in this many milliseconds is
    /// closed (slowloris).
    pub header_timeout_ms: u64,
    /// Most `/metrics` connections served at once; more wait in the listen queue.
    pub max_connections: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "0.0.0.0".to_owned(),
            port: 9090,
            header_timeout_ms: 5000,
            max_connections: 16,
        }
    }
}

/// Upper bounds of the latency histogram, in seconds (Prometheus' defaults, as
/// go-grpc-prometheus uses).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Shards of every counter; worker threads pick one each, in turn.
const SHARDS: usize = 8;

/// The labels every call to a path the server does not serve counts under, whatever the
/// path: a client must not be able to create series (and memory) at will.
const UNKNOWN: (&str, &str) = ("unknown", "unknown");

/// The longest pause after failed accepts (such as EMFILE: out of file descriptors).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Every status code, in the order of their numbers.
const CODES: [tonic::Code; 17] = [
    tonic::Code::Ok,
    tonic::Code::Cancelled,
    tonic::Code::Unknown,
    tonic::Code::InvalidArgument,
    tonic::Code::DeadlineExceeded,
    tonic::Code::NotFound,
    tonic::Code::AlreadyExists,
    tonic::Code::PermissionDenied,
    tonic::Code::ResourceExhausted,
    tonic::Code::FailedPrecondition,
    tonic::Code::Aborted,
    tonic::Code::OutOfRange,
    tonic::Code::Unimplemented,
    tonic::Code::Internal,
    tonic::Code::Unavailable,
    tonic::Code::DataLoss,
    tonic::Code::Unauthenticated,
];

/// The server's metrics, one set per server; clones share it.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    methods: Methods,
    /// By shard, then by index in `methods`; the last index counts every path the server
    /// does not serve.
    shards: Vec<Box<[Counters]>>,
}

/// The counters of one method in one shard.
#[derive(Debug, Default)]
struct Counters {
    started: AtomicU64,
    handled: [AtomicU64; 17],
    buckets: [AtomicU64; 11],
    nanos: AtomicU64,
}

impl Counters {
    fn observe(&self, code: tonic::Code, seconds: f64) {
        self.handled[code as usize].fetch_add(1, Ordering::Relaxed);
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }
}

/// The sums of one method's counters over the shards.
#[derive(Default)]
struct Totals {
    started: u64,
    handled: [u64; 17],
    buckets: [u64; 11],
    nanos: u64,
}

impl Totals {
    fn add(&mut self, counters: &Counters) {
        self.started += counters.started.load(Ordering::Relaxed);
        for (total, count) in self.handled.iter_mut().zip(&counters.handled) {
            *total += count.load(Ordering::Relaxed);
        }
        for (total, count) in self.buckets.iter_mut().zip(&counters.buckets) {
            *total += count.load(Ordering::Relaxed);
        }
        self.nanos += counters.nanos.load(Ordering::Relaxed);
    }
}

thread_local! {
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// This thread's shard.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    SHARD.with(|shard| {
        shard.get().unwrap_or_else(|| {
            let picked = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            shard.set(Some(picked));
            picked
        })
    })
}

impl Metrics {
    /// The metrics of a server answering `methods`.
    pub fn new(methods: Methods) -> Self {
        let series = methods.len() + 1;
        let shards = (0..SHARDS)
            .map(|_| (0..series).map(|_| Counters::default()).collect())
            .collect();
        Self {
            inner: Arc::new(Inner { methods, shards }),
        }
    }

    /// The series of a call to `path` (`/package.Service/Method`): its method's, or the one
    /// series of every path the server does not serve.
    fn series(&self, path: &str) -> usize {
        let methods = &self.inner.methods;
        methods.index(path).unwrap_or(methods.len())
    }

    /// A layer counting every call into these metrics.
    pub fn layer(&self) -> MetricsLayer {
        MetricsLayer {
            metrics: Some(self.clone()),
        }
    }

    /// Counts a call that started, in `series`.
    fn started(&self, series: usize) {
        self.inner.shards[shard()][series]
            .started
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a call of `series` that ended with `code` after `seconds`.
    fn handled(&self, series: usize, code: tonic::Code, seconds: f64) {
        self.inner.shards[shard()][series].observe(code, seconds);
    }

    /// These metrics and the process-wide ones (such as the client's circuit breakers), in
    /// the Prometheus text format.
    pub fn render(&self) -> String {
        let known = self
            .inner
            .methods
            .iter()
            .map(|method| (split_path(method.path), method.kind.as_str()));
        let labels = known.chain([(UNKNOWN, "unary")]);
        let series: Vec<([&str; 3], Totals)> = labels
            .enumerate()
            .map(|(index, ((service, method), kind))| {
                let mut totals = Totals::default();
                for shard in &self.inner.shards {
                    totals.add(&shard[index]);
                }
                ([kind, service, method], totals)
            })
            .collect();
        let mut text = String::new();
        render_server(&mut text, &series);
        let mut process = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&prometheus::gather(), &mut process) {
            tracing::error!(%err, "cannot encode metrics");
        }
        text.push_str(&String::from_utf8_lossy(&process));
        text
    }

    /// Serves `GET /metrics` over HTTP/1.1 on `listener` until the task is dropped: one
    /// request per connection, at most `max_connections` at once, each closed when its
    /// request head has not arrived within `header_timeout_ms`. Failed accepts (such as
    /// EMFILE) are retried after a pause that doubles up to a second, not in a busy loop.
    pub async fn serve(self, listener: TcpListener, config: MetricsConfig) {
        let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
        let header_timeout = Duration::from_millis(config.header_timeout_ms);
        let mut backoff = Duration::ZERO;
        loop {
            let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => {
                    backoff = Duration::ZERO;
                    stream
                }
                Err(err) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                    tracing::warn!(%err, ?backoff, "metrics endpoint: accept failed");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            };
            let metrics = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let response = metrics.respond(request.uri().path());
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(err) = connection.await {
                    tracing::debug!(%err, "metrics connection closed");
                }
                drop(permit);
            });
        }
    }

    fn respond(&self, path: &str) -> http::Response<Full<Bytes>> {
        let (status, content_type, body) = if path == "/metrics" {
            (
                http::StatusCode::OK,
                TextEncoder::new().format_type().to_owned(),
                self.render(),
            )
        } else {
            (
                http::StatusCode::NOT_FOUND,
                "text/plain".to_owned(),
                "not found: metrics are at /metrics\n".to_owned(),
            )
        };
        let mut response = http::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = http::HeaderValue::from_str(&content_type) {
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, value);
        }
        response
    }
}

/// The service and method of `/package.Service/Method`.
fn split_path(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", path))
}

/// Writes the server's families in the Prometheus text format, labels in name order.
fn render_server(text: &mut String, series: &[([&str; 3], Totals)]) {
    let labels = |[kind, service, method]: &[&str; 3]| {
        format!(
            r#"grpc_method="{}",grpc_service="{}",grpc_type="{kind}""#,
            escape(method),
            escape(service)
        )
    };
    family(
        text,
        "grpc_server_started_total",
        "counter",
        "Total number of RPCs started on the server.",
    );
    for (names, totals) in series {
        let _ = writeln!(
            text,
            "grpc_server_started_total{{{}}} {}",
            labels(names),
            totals.started
        );
    }
    family(
        text,
        "grpc_server_handled_total",
        "counter",
        "Total number of RPCs completed on the server, regardless of success or failure.",
    );
    for (names, totals) in series {
        for (code, count) in CODES.iter().zip(totals.handled) {
            let code = code_name(*code);
            let names = labels(names);
            let _ = writeln!(
                text,
                r#"grpc_server_handled_total{{grpc_code="{code}",{names}}} {count}"#
            );
        }
    }
    family(
        text,
        "grpc_server_handling_seconds",
        "histogram",
        "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    );
    for (names, totals) in series {
        let names = labels(names);
        let count: u64 = totals.handled.iter().sum();
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(totals.buckets) {
            cumulative += bucket;
            let _ = writeln!(
                text,
                r#"grpc_server_handling_seconds_bucket{{{names},le="{bound}"}} {cumulative}"#
            );
        }
        let _ = writeln!(
            text,
            r#"grpc_server_handling_seconds_bucket{{{names},le="+Inf"}} {count}"#
        );
        let _ = writeln!(
            text,
            "grpc_server_handling_seconds_sum{{{names}}} {}",
            totals.nanos as f64 / 1e9
        );
        let _ = writeln!(
            text,
            "grpc_server_handling_seconds_count{{{names}}} {count}"
        );
    }
    family(
        text,
        "grpc_server_in_flight_requests",
        "gauge",
        "Number of RPCs in progress on the server.",
    );
    for (names, totals) in series {
        let finished: u64 = totals.handled.iter().sum();
        let running = totals.started.saturating_sub(finished);
        let _ = writeln!(
            text,
            "grpc_server_in_flight_requests{{{}}} {running}",
            labels(names)
        );
    }
}

fn family(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

impl MetricsConfig {
    /// The socket address built from `host` and `port`.
    pub fn socket_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        crate::socket_addr("metrics", &self.host, self.port)
    }
}

/// Binds the metrics endpoint when `config` enables it.
pub async fn bind_enabled(config: &MetricsConfig) -> anyhow::Result<Option<TcpListener>> {
    if config.enabled {
        Ok(Some(bind(config).await?))
    } else {
        Ok(None)
    }
}

/// Starts the metrics of a server answering `methods`: serving `/metrics` on `listener`, if
/// any, until the returned task is dropped, with the layer that counts every call (which
/// counts nothing without a listener).
pub fn start(
    listener: Option<TcpListener>,
    config: &MetricsConfig,
    methods: Methods,
) -> anyhow::Result<(MetricsLayer, EndpointTask)> {
    let Some(listener) = listener else {
        return Ok((MetricsLayer { metrics: None }, EndpointTask(None)));
    };
    let metrics = Metrics::new(methods);
    let address = listener.local_addr().context("metrics listener address")?;
    tracing::info!(%address, "serving Prometheus metrics at /metrics");
    let task = tokio::spawn(metrics.clone().serve(listener, config.clone()));
    Ok((
        MetricsLayer {
            metrics: Some(metrics),
        },
        EndpointTask(Some(task)),
    ))
}

/// The task serving `/metrics`; dropping it stops the endpoint.
#[derive(Debug)]
pub struct EndpointTask(Option<JoinHandle<()>>);

impl Drop for EndpointTask {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Counts every call the server answers (refused and panicked ones too, when it wraps
/// [`crate::middleware::CallGuard`]): started, handled with its code, and its latency.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Option<Metrics>,
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A service behind [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Option<Metrics>,
}

impl<S> Service<http::Request<Body>> for Counted<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let record = self.metrics.as_ref().map(|metrics| {
            let series = metrics.series(request.uri().path());
            metrics.started(series);
            let unary = metrics
                .inner
                .methods
                .at(series)
                .is_some_and(|method| method.kind == MethodKind::Unary);
            let handled = Handled {
                metrics: metrics.clone(),
                series,
                started: Instant::now(),
            };
            PendingCode::new(handled, unary)
        });
        CountedFuture {
            call: self.inner.call(request),
            record,
        }
    }
}

pin_project! {
    /// The response of a call behind [`MetricsLayer`].
    pub struct CountedFuture<F> {
        #[pin]
        call: F,
        record: Option<PendingCode<Handled>>,
    }
}

impl<F, E> Future for CountedFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.call.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        Poll::Ready(Ok(match this.record.take() {
            Some(record) => record.finish(response),
            None => response,
        }))
    }
}

/// Counts a call as handled with its code and latency once it is known.
#[derive(Debug)]
pub struct Handled {
    metrics: Metrics,
    series: usize,
    started: Instant,
}

impl CodeObserver for Handled {
    fn observe(&mut self, code: tonic::Code) {
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics.handled(self.series, code, seconds);
    }
}

/// Binds the metrics endpoint described by the configuration.
pub async fn bind(config: &MetricsConfig) -> anyhow::Result<TcpListener> {
    let address = config.socket_addr()?;
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for metrics"))
}

/// Exports a client circuit breaker's state (0 closed, 1 open, 2 half-open) for `target`.
pub fn client_breaker_state(target: &str, state: BreakerState) {
    static GAUGE: OnceLock<Option<IntGaugeVec>> = OnceLock::new();
    let gauge = GAUGE.get_or_init(|| {
        let gauge = IntGaugeVec::new(
            Opts::new(
                "grpc_client_circuit_breaker_state",
                "State of the client's circuit breaker: 0 closed, 1 open, 2 half-open.",
            ),
            &["target"],
        )
        .ok()?;
        prometheus::register(Box::new(gauge.clone())).ok()?;
        Some(gauge)
    });
    if let Some(gauge) = gauge {
        gauge.with_label_values(&[target]).set(state.as_metric());
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::methods::Method;

    const METHODS: Methods = Methods::new(&[
        Method::unary("/shop.v1.Shop/Buy"),
        Method::server_stream("/shop.v1.Shop/Watch"),
    ]);

    fn line<'a>(text: &'a str, start: &str) -> Option<&'a str> {
        text.lines().find(|line| line.starts_with(start))
    }

    #[test]
    fn calls_are_counted_per_method_with_their_code_and_latency() {
        let metrics = Metrics::new(METHODS);
        let buy = metrics.series("/shop.v1.Shop/Buy");
        metrics.started(buy);
        metrics.handled(buy, tonic::Code::NotFound, 0.02);
        let text = metrics.render();
        let labels = r#"grpc_method="Buy",grpc_service="shop.v1.Shop",grpc_type="unary""#;
        assert_eq!(
            line(&text, &format!("grpc_server_started_total{{{labels}}}")),
            Some(format!("grpc_server_started_total{{{labels}}} 1").as_str())
        );
        let not_found = format!(r#"grpc_server_handled_total{{grpc_code="NotFound",{labels}}} 1"#);
        assert!(text.contains(&not_found), "{text}");
        let bucket = format!(r#"grpc_server_handling_seconds_bucket{{{labels},le="0.025"}} 1"#);
        assert!(text.contains(&bucket), "{text}");
        let under = format!(r#"grpc_server_handling_seconds_bucket{{{labels},le="0.01"}} 0"#);
        assert!(text.contains(&under), "{text}");
        let streaming =
            r#"grpc_method="Watch",grpc_service="shop.v1.Shop",grpc_type="server_stream""#;
        assert!(text.contains(&format!("grpc_server_started_total{{{streaming}}} 0")));
    }

    #[test]
    fn every_unknown_path_counts_in_one_series() {
        let metrics = Metrics::new(METHODS);
        for n in 0..100 {
            let series = metrics.series(&format!("/evil.Service/M{n}"));
            assert_eq!(series, METHODS.len());
            metrics.started(series);
        }
        let text = metrics.render();
        let unknown = r#"grpc_method="unknown",grpc_service="unknown",grpc_type="unary""#;
        assert!(text.contains(&format!("grpc_server_started_total{{{unknown}}} 100")));
        let series = text
            .lines()
            .filter(|line| line.starts_with("grpc_server_started_total{"))
            .count();
        assert_eq!(series, 3, "two methods and the unknown paths");
    }

    #[test]
    fn counts_from_every_thread_are_summed() {
        let metrics = Metrics::new(METHODS);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        metrics.started(0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        let text = metrics.render();
        let labels = r#"grpc_method="Buy",grpc_service="shop.v1.Shop",grpc_type="unary""#;
        let started = format!("grpc_server_started_total{{{labels}}} 1000");
        assert!(text.contains(&started), "{text}");
        let in_flight = format!("grpc_server_in_flight_requests{{{labels}}} 1000");
        assert!(text.contains(&in_flight), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(split_path("/pkg.S/M"), ("pkg.S", "M"));
        assert_eq!(split_path("nonsense"), ("unknown", "nonsense"));
    }

    #[test]
    fn breaker_states_are_exported_per_target() {
        client_breaker_state("unit-test-target", BreakerState::Open);
        let text = Metrics::new(Methods::empty()).render();
        assert!(
            text.contains(r#"grpc_client_circuit_breaker_state{target="unit-test-target"} 1"#),
            "{text}"
        );
    }

    async fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn the_endpoint_serves_metrics_and_only_metrics() {
        let config = MetricsConfig {
            host: "127.0.0.1".to_owned(),
            port: 0,
            ..MetricsConfig::default()
        };
        let listener = bind(&config).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (_layer, _task) = start(Some(listener), &config, METHODS).expect("start");
        let metrics = get(address, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("grpc_server_started_total"), "{metrics}");
        let other = get(address, "/other").await;
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
    }

    #[tokio::test]
    async fn a_connection_that_never_finishes_its_head_is_closed() {
        let config = MetricsConfig {
            host: "127.0.0.1".to_owned(),
            port: 0,
            header_timeout_ms: 100,
            ..MetricsConfig::default()
        };
        let listener = bind(&config).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (_layer, _task) = start(Some(listener), &config, METHODS).expect("start");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\n")
            .await
            .expect("write");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
        assert!(read.await.is_ok(), "the server closed the connection");
    }

    #[test]
    fn without_a_listener_nothing_is_counted_or_served() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let _guard = runtime.enter();
        let (layer, task) = start(None, &MetricsConfig::default(), METHODS).expect("start");
        assert!(layer.metrics.is_none());
        assert!(task.0.is_none());
    }
}
