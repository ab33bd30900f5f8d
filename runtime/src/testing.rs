//! Helpers for a service's tests (feature `testing`, for dev-dependencies): a health service
//! that follows a script ([`Scripted`]) to test a client's retries and breaker against,
//! clients of health and reflection, a Prometheus scrape and its samples, and a registry's
//! listing awaited.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, health_server::Health,
    HealthCheckRequest, HealthCheckResponse,
};
use tonic_reflection::pb::v1::{
    server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse, ServerReflectionRequest,
};

use crate::{client::Transport, discovery::Registry};

/// Two sockets bound to one free loopback port (`SO_REUSEPORT`), neither listening yet.
///
/// A server can listen on the first, stop, and a later one listen on the second: between
/// them, connections to the port are refused, and no other test can take the port.
pub fn shared_port() -> (TcpSocket, TcpSocket) {
    let share = |address: SocketAddr| {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.set_reuseport(true).expect("SO_REUSEPORT");
        socket.bind(address).expect("bind a loopback port");
        socket
    };
    let first = share(SocketAddr::from(([127, 0, 0, 1], 0)));
    let address = first.local_addr().expect("bound address");
    (first, share(address))
}

/// What the scripted health service does on one call.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Answers SERVING.
    Serve,
    /// Fails with UNAVAILABLE.
    Unavailable,
    /// Fails with DEADLINE_EXCEEDED.
    DeadlineExceeded,
    /// Panics.
    Panic,
    /// Fails with UNAVAILABLE after this many milliseconds.
    SlowUnavailable(u64),
    /// Fails with UNAVAILABLE and this `grpc-retry-pushback-ms`.
    Pushback(&'static str),
}

/// A health service that follows a script, then serves (or keeps failing until healed).
#[derive(Debug, Clone)]
pub struct Scripted {
    steps: Arc<Vec<Step>>,
    calls: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    timeouts: Arc<Mutex<Vec<Option<Duration>>>>,
}

impl Scripted {
    /// Follows `steps`, then serves.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            steps: Arc::new(steps.into_iter().collect()),
            calls: Arc::default(),
            failing: Arc::default(),
            timeouts: Arc::default(),
        }
    }

    /// Fails with UNAVAILABLE until healed.
    pub fn failing() -> Self {
        let health = Self::new([]);
        health.failing.store(true, Ordering::SeqCst);
        health
    }

    /// Stops failing.
    pub fn heal(&self) {
        self.failing.store(false, Ordering::SeqCst);
    }

    /// The calls of `Check` so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The deadline (`grpc-timeout`) each call of `Check` carried, in order.
    pub fn timeouts(&self) -> Vec<Option<Duration>> {
        self.timeouts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The duration of a `grpc-timeout` value in milliseconds (`250m`), as the client sends it.
fn millis(value: &str) -> Option<Duration> {
    let millis = value.strip_suffix('m')?.parse().ok()?;
    Some(Duration::from_millis(millis))
}

#[tonic::async_trait]
impl Health for Scripted {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let timeout = request.metadata().get("grpc-timeout");
        let timeout = timeout.and_then(|value| millis(value.to_str().ok()?));
        self.timeouts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(timeout);
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let step = if self.failing.load(Ordering::SeqCst) {
            Step::Unavailable
        } else {
            self.steps.get(call).copied().unwrap_or(Step::Serve)
        };
        match step {
            Step::Serve => Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving.into(),
            })),
            Step::Unavailable => Err(Status::unavailable("scripted failure")),
            Step::DeadlineExceeded => Err(Status::deadline_exceeded("scripted timeout")),
            Step::Panic => panic!("scripted panic"),
            Step::SlowUnavailable(millis) => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                Err(Status::unavailable("scripted slow failure"))
            }
            Step::Pushback(millis) => {
                let mut status = Status::unavailable("scripted overload");
                if let Ok(value) = millis.parse() {
                    status
                        .metadata_mut()
                        .insert("grpc-retry-pushback-ms", value);
                }
                Err(status)
            }
        }
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
}

/// Health's `Check` of `service` (empty: the server as a whole) through `transport`.
pub async fn health_status(transport: Transport, service: &str) -> Result<ServingStatus, Status> {
    let service = service.to_owned();
    let request = HealthCheckRequest { service };
    let response = HealthClient::new(transport).check(request).await?;
    Ok(response.into_inner().status())
}

/// Health's `Watch` of `service` through `transport`: the statuses as the server sends them,
/// the current one first.
pub async fn watch_health(
    transport: Transport,
    service: &str,
) -> Result<impl tokio_stream::Stream<Item = Result<ServingStatus, Status>> + Unpin, Status> {
    let service = service.to_owned();
    let request = HealthCheckRequest { service };
    let statuses = HealthClient::new(transport).watch(request).await?;
    Ok(statuses
        .into_inner()
        .map(|answer| answer.map(|answer| answer.status())))
}

/// One request to the server's reflection (v1) through `transport`, and its answer.
pub async fn reflect(
    transport: Transport,
    request: MessageRequest,
) -> Result<MessageResponse, Status> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = ServerReflectionClient::new(transport)
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    let response = responses.next().await;
    let response = response.ok_or_else(|| Status::internal("no reflection response"))??;
    let message = response.message_response;
    message.ok_or_else(|| Status::internal("a reflection response without a body"))
}

/// The body of `GET /metrics` from the endpoint at `address`; panics unless it answers 200.
pub async fn scrape(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address)
        .await
        .expect("connect to /metrics");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the sample of `metric` in a scrape whose labels include every one of
/// `labels` (`grpc_code="OK"`).
pub fn sample(metrics: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{'))
        })
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// The series of a scrape whose names start with `prefix`, without their values: what grows
/// when requests can create series.
pub fn series<'a>(metrics: &'a str, prefix: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series))
        .collect()
}

/// What `registry` lists of `service` now (empty while it cannot be reached).
pub async fn listed(registry: &impl Registry, service: &str) -> Vec<String> {
    let resolved = registry.resolve(service).await;
    resolved
        .map(|resolved| resolved.addresses)
        .unwrap_or_default()
}

/// Asks `registry` every 20 ms until `condition` holds of what it lists of `service`, for
/// up to `limit`: how long that took, or `None`.
pub async fn wait_for_listing(
    registry: &impl Registry,
    service: &str,
    limit: Duration,
    condition: impl Fn(&[String]) -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition(&listed(registry, service).await) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_scripted_service_follows_its_script_then_serves() {
        let health = Scripted::new([Step::Unavailable, Step::Pushback("20")]);
        let mut request = Request::new(HealthCheckRequest::default());
        request
            .metadata_mut()
            .insert("grpc-timeout", "250m".parse().unwrap());
        let first = health.check(request).await.expect_err("scripted");
        assert_eq!(first.code(), tonic::Code::Unavailable);
        let second = health
            .check(Request::new(HealthCheckRequest::default()))
            .await;
        let pushback = second
            .expect_err("scripted")
            .metadata()
            .get("grpc-retry-pushback-ms")
            .cloned();
        assert_eq!(pushback.expect("a pushback"), "20");
        let third = health
            .check(Request::new(HealthCheckRequest::default()))
            .await;
        assert_eq!(
            third.expect("serving").into_inner().status(),
            ServingStatus::Serving
        );
        assert_eq!(health.calls(), 3);
        assert_eq!(
            health.timeouts(),
            [Some(Duration::from_millis(250)), None, None]
        );

        let failing = Scripted::failing();
        let call = || failing.check(Request::new(HealthCheckRequest::default()));
        assert!(call().await.is_err(), "fails until healed");
        failing.heal();
        assert!(call().await.is_ok(), "healed");
    }

    #[tokio::test]
    async fn a_shared_port_refuses_connections_until_its_second_socket_listens() {
        let (first, second) = shared_port();
        let address = first.local_addr().expect("bound");
        drop(first.listen(8).expect("listen"));
        assert!(TcpStream::connect(address).await.is_err(), "refused");
        let listener = second.listen(8).expect("listen again");
        let (connected, accepted) = tokio::join!(TcpStream::connect(address), listener.accept());
        connected.expect("connected");
        accepted.expect("accepted");
    }

    #[tokio::test]
    async fn a_health_watch_hears_the_current_status_then_each_change() {
        use tonic::transport::{Channel, Server};

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_serving::<tonic_health::pb::health_server::HealthServer<Scripted>>()
            .await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("bound");
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let server = Server::builder()
            .add_service(health)
            .serve_with_incoming(incoming);
        let serving = tokio::spawn(server);
        let channel = Channel::from_shared(format!("http://{address}"))
            .expect("an endpoint")
            .connect()
            .await
            .expect("connected");
        let name = "grpc.health.v1.Health";
        let transport = Transport::new(tower::ServiceExt::map_err(channel, crate::BoxError::from));
        let mut statuses = watch_health(transport, name).await.expect("a watch");
        let first = statuses.next().await.expect("a status").expect("no error");
        assert_eq!(first, ServingStatus::Serving);
        reporter
            .set_not_serving::<tonic_health::pb::health_server::HealthServer<Scripted>>()
            .await;
        let next = statuses.next().await.expect("a change").expect("no error");
        assert_eq!(next, ServingStatus::NotServing);
        serving.abort();
    }

    #[test]
    fn samples_and_series_are_read_from_a_scrape() {
        let metrics = "# HELP x\ngrpc_server_started_total{grpc_code=\"OK\",grpc_method=\"Get\"} 3\ngrpc_server_started_total{grpc_code=\"NotFound\",grpc_method=\"Get\"} 1\ngrpc_client_x{a=\"b\"} 2\n";
        let code = r#"grpc_code="NotFound""#;
        assert_eq!(
            sample(metrics, "grpc_server_started_total", &[code]),
            Some(1.0)
        );
        assert_eq!(sample(metrics, "grpc_server_started_total", &[]), Some(3.0));
        assert_eq!(
            sample(metrics, "grpc_server_started", &[]),
            None,
            "a whole name"
        );
        let server = series(metrics, "grpc_server_");
        assert_eq!(server.len(), 2);
        assert!(server[0].ends_with("grpc_method=\"Get\"}"), "{server:?}");
    }

    #[tokio::test]
    async fn a_listing_is_awaited_until_it_holds() {
        let list = crate::discovery::StaticList::parse("10.0.0.5:1", |a| format!("http://{a}"), "")
            .expect("a list");
        assert_eq!(listed(&list, "any").await, ["http://10.0.0.5:1"]);
        let limit = Duration::from_millis(100);
        let found = wait_for_listing(&list, "any", limit, |now| now.len() == 1).await;
        assert!(found.is_some());
        let never = wait_for_listing(&list, "any", limit, |now| now.is_empty()).await;
        assert_eq!(never, None);
    }
}
