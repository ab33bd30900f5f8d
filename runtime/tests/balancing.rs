//! The balancer against real servers: one healthy instance and one answering INTERNAL (a
//! server whose migrations are pending, say), 1,000 calls through a client's connection.
//! The failing instance must get under 5% of them with either policy, and the client's
//! calls to the healthy one must keep succeeding (one bad instance cannot open the circuit
//! to all).
#![cfg(feature = "testing")]

use std::{net::SocketAddr, time::Duration};

use microframework_runtime::{
    client::{BreakerPolicy, BreakerState, Connection, Dial, RetryPolicy, Stack},
    discovery::{Balancer, Policy},
    methods::{Method, Methods},
    server::GrpcConfig,
    testing::health_status,
};
use tokio::net::TcpListener;
use tonic::{service::Routes, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus::Serving;
use tonic_health::{
    pb::{
        health_server::{Health, HealthServer},
        HealthCheckRequest, HealthCheckResponse,
    },
    server::HealthReporter,
    ServingStatus,
};

static METHODS: Methods =
    Methods::new(&[Method::unary("/grpc.health.v1.Health/Check").idempotent()]);

/// A server whose every call fails with `code`.
#[derive(Debug, Clone, Copy)]
struct Failing(tonic::Code);

#[tonic::async_trait]
impl Health for Failing {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Err(Status::new(self.0, "migrations pending"))
    }

    type WatchStream = tokio_stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

async fn serve(health: impl Health) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = GrpcConfig::default();
    let incoming = config.incoming(listener);
    let routes = Routes::new(HealthServer::new(health));
    tokio::spawn(config.builder(&[]).serve_with_incoming(routes, incoming));
    address
}

async fn healthy() -> SocketAddr {
    let reporter = HealthReporter::new();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    serve(tonic_health::server::HealthService::from_health_reporter(
        reporter,
    ))
    .await
}

fn dial() -> Dial {
    Dial {
        connect_timeout: Duration::from_secs(1),
        keepalive_interval: Duration::from_secs(30),
        keepalive_timeout: Duration::from_secs(10),
    }
}

/// A client's middleware over the balancer: default retries and breaker, a 2 s deadline.
fn stack(token: &str) -> Stack<'_> {
    Stack {
        token,
        retry: RetryPolicy::default(),
        breaker: BreakerPolicy::default(),
        observers: &[],
        methods: METHODS,
        deadline: Duration::from_secs(2),
        gzip: false,
    }
}

fn connection(policy: Policy, addresses: &[SocketAddr]) -> Connection {
    let dial = dial();
    let balancer = Balancer::new("health", policy, "http", move |address| {
        Ok(dial.endpoint(address)?.connect_lazy())
    });
    let addresses: Vec<String> = addresses.iter().map(|a| format!("http://{a}")).collect();
    balancer.update(&addresses);
    Connection::new(balancer.clone(), "health", Some(balancer), stack("")).unwrap()
}

/// Sends 1,000 calls, 4 at a time; returns how many succeeded and the failing instance's
/// share of the calls.
async fn experiment(policy: Policy, code: tonic::Code) -> (usize, u64) {
    let good = healthy().await;
    let bad = serve(Failing(code)).await;
    let connection = connection(policy, &[good, bad]);
    let mut succeeded = 0;
    for _ in 0..250 {
        let call = || health_status(connection.transport(), "");
        let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
        succeeded += [a, b, c, d]
            .into_iter()
            .filter(|outcome| matches!(outcome, Ok(status) if *status == Serving))
            .count();
    }
    let endpoints = connection.endpoints();
    let bad_calls = endpoints
        .iter()
        .find(|e| e.address == format!("http://{bad}"))
        .expect("the failing instance is known")
        .calls;
    let total: u64 = endpoints.iter().map(|e| e.calls).sum();
    assert!(total >= 1_000, "{endpoints:?}");
    assert_eq!(connection.breaker_state(), BreakerState::Closed);
    (succeeded, bad_calls)
}

#[tokio::test]
async fn an_instance_answering_internal_gets_few_calls_with_either_policy() {
    for policy in [Policy::LeastLoaded, Policy::RoundRobin] {
        let (succeeded, bad_calls) = experiment(policy, tonic::Code::Internal).await;
        println!(
            "{policy:?}: the failing instance got {bad_calls} of 1000 calls; {succeeded} succeeded"
        );
        assert!(
            bad_calls < 50,
            "{policy:?}: the failing instance got {bad_calls} of 1000 calls"
        );
        assert!(
            succeeded >= 950,
            "{policy:?}: only {succeeded} of 1000 succeeded"
        );
    }
}

#[tokio::test]
async fn an_instance_answering_unavailable_cannot_open_the_circuit_to_the_other() {
    // UNAVAILABLE is retried (health Check is idempotent): with the breaker per instance,
    // every call ends on the healthy one.
    let (succeeded, bad_calls) = experiment(Policy::LeastLoaded, tonic::Code::Unavailable).await;
    println!("the failing instance got {bad_calls} of 1000 calls; {succeeded} succeeded");
    assert!(bad_calls < 50, "the failing instance got {bad_calls} calls");
    // A probe of the failing instance whose retry the throttle refuses may fail.
    assert!(succeeded >= 990, "only {succeeded} of 1000 succeeded");
}

/// A registry entry forged to turn TLS off (`http://` in front of a plaintext server's
/// address) gets no call and no token from a client that speaks TLS: the scheme is the
/// client's. The same entry reaches the server from a plaintext client, so the server works.
#[cfg(feature = "tls")]
#[tokio::test]
async fn a_forged_http_entry_gets_no_call_and_no_token_from_a_tls_client() {
    use microframework_runtime::{testing::Scripted, tls::ClientTls};

    let scripted = Scripted::new([]);
    let plaintext = serve(scripted.clone()).await;
    let forged = format!("http://{plaintext}");
    for scheme in ["https", "http"] {
        let dial = dial();
        let balancer = Balancer::new("health", Policy::RoundRobin, scheme, move |uri| {
            let builder = dial.endpoint(uri)?;
            let builder =
                microframework_runtime::tls::configure_client(builder, uri, &ClientTls::default())?;
            Ok(builder.connect_lazy())
        });
        balancer.update(std::slice::from_ref(&forged));
        let connection = Connection::new(
            balancer.clone(),
            "health",
            Some(balancer),
            stack("secret-token"),
        )
        .unwrap();
        let outcome = health_status(connection.transport(), "").await;
        match scheme {
            "https" => {
                assert!(
                    outcome.is_err(),
                    "a TLS client reached a plaintext server: {outcome:?}"
                );
                assert_eq!(
                    scripted.calls(),
                    0,
                    "the forged entry got a call (and the token)"
                );
            }
            _ => {
                assert!(outcome.is_ok(), "{outcome:?}");
                assert_eq!(scripted.calls(), 1);
            }
        }
    }
}
