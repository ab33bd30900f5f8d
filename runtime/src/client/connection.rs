//! What a generated client is made of: the middleware stack over a channel or a balancer
//! ([`Connection`]), and the typed calls of one service through it ([`Calls`]).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tonic::{
    client::Grpc,
    codec::CompressionEncoding,
    codegen::http::uri::PathAndQuery,
    transport::{Channel, Endpoint},
    Status,
};
use tonic_prost::ProstCodec;
use tower::util::BoxCloneSyncService;

use super::{
    BearerToken, Breaker, BreakerPolicy, BreakerState, CircuitBreaker, Retry, RetryPolicy,
    StateObserver, Transport,
};
use crate::{
    discovery::{Balancer, EndpointStats, Policy, Registry, Resolved},
    methods::Methods,
    BoxError,
};

/// How a [`Connection`]'s middleware behaves: the project's client settings and tables.
#[derive(Debug, Clone)]
pub struct Stack<'a> {
    /// Bearer token sent with every call (empty: none).
    pub token: &'a str,
    /// When and how often a failed call is tried again.
    pub retry: RetryPolicy,
    /// When the circuit breaker opens.
    pub breaker: BreakerPolicy,
    /// What is told each state the breaker enters (a metrics gauge, say).
    pub observers: &'static [StateObserver],
    /// The methods of the project, for the retries' idempotency.
    pub methods: Methods,
    /// Deadline of every call (sent as `grpc-timeout`).
    pub deadline: Duration,
    /// Whether requests are gzip-compressed (gzip responses are always accepted).
    pub gzip: bool,
}

/// A connection to a service: bearer token, circuit breaker and retries over a channel (or
/// a [`Balancer`] over several, where each instance has a breaker of its own instead),
/// handing out [`Calls`].
#[derive(Debug, Clone)]
pub struct Connection {
    transport: Transport,
    breaker: Arc<Breaker>,
    balancer: Option<Balancer>,
    deadline: Duration,
    gzip: bool,
}

impl Connection {
    /// The middleware stack over `inner` (a channel, or `balancer` itself when calls are
    /// spread over instances); `target` names it in logs and metrics.
    pub fn new<S>(
        inner: S,
        target: &str,
        balancer: Option<Balancer>,
        stack: Stack<'_>,
    ) -> anyhow::Result<Self>
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        // Over a balancer each instance has its own breaker, so that one failing instance
        // cannot open the circuit to the others; the connection's own stays closed.
        let policy = match &balancer {
            Some(balancer) => {
                balancer.guard_instances(stack.breaker, stack.observers);
                BreakerPolicy {
                    failure_threshold: 0,
                    ..BreakerPolicy::default()
                }
            }
            None => stack.breaker,
        };
        let breaker = Arc::new(Breaker::new(policy, target, stack.observers));
        let retrying = Retry::new(inner, stack.retry, stack.methods);
        let guarded = CircuitBreaker::new(retrying, Arc::clone(&breaker));
        let transport = BearerToken::new(guarded, stack.token).context("invalid client token")?;
        Ok(Self {
            transport: BoxCloneSyncService::new(transport),
            breaker,
            balancer,
            deadline: stack.deadline,
            gzip: stack.gzip,
        })
    }

    /// The same connection with `layer` around its stack (a feature's layer, such as trace
    /// propagation).
    pub fn wrap<L>(self, layer: impl FnOnce(Transport) -> L) -> Self
    where
        L: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = BoxError,
            > + Clone
            + Send
            + Sync
            + 'static,
        L::Future: Send + 'static,
    {
        let transport = BoxCloneSyncService::new(layer(self.transport));
        Self { transport, ..self }
    }

    /// What the balancer knows of each instance (calls sent, in flight, latency); empty
    /// without a balancer.
    pub fn endpoints(&self) -> Vec<EndpointStats> {
        self.balancer
            .as_ref()
            .map(Balancer::endpoints)
            .unwrap_or_default()
    }

    /// The same connection with another per-call deadline.
    pub fn with_deadline(&self, deadline: Duration) -> Self {
        Self {
            deadline,
            ..self.clone()
        }
    }

    /// The middleware stack, for clients of other services (health, reflection, ...).
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    /// The state of this connection's circuit breaker (always closed over a balancer, whose
    /// instances have their own: see [`Connection::endpoints`]).
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Typed calls through this connection, each bounded by its deadline.
    pub fn calls(&self) -> Calls {
        let grpc = Grpc::new(self.transport.clone()).accept_compressed(CompressionEncoding::Gzip);
        let grpc = match self.gzip {
            true => grpc.send_compressed(CompressionEncoding::Gzip),
            false => grpc,
        };
        Calls {
            grpc,
            deadline: self.deadline,
        }
    }
}

/// The settings of every channel a client opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dial {
    /// Longest time to establish a connection.
    pub connect_timeout: Duration,
    /// Between HTTP/2 keepalive PINGs, idle or not.
    pub keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is dropped.
    pub keepalive_timeout: Duration,
}

impl Dial {
    /// The endpoint of `address` (`http://host:port`) with these timeouts and keepalives,
    /// Nagle off.
    pub fn endpoint(&self, address: &str) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_shared(address.to_owned())
            .with_context(|| format!("invalid endpoint `{address}`"))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(self.keepalive_interval)
            .keep_alive_timeout(self.keepalive_timeout)
            .keep_alive_while_idle(true);
        Ok(endpoint)
    }
}

/// A balancer over the instances of `service` that `registry` lists, following them until
/// it is dropped: the first answer is waited for up to `wait` (an unreachable registry
/// leaves it empty and logs why), then the registry is asked again at least every
/// `refresh`. Each instance is reached at `scheme://host:port`, the scheme being the
/// client's (`https` when it speaks TLS), whatever the registry's entry says; `connect`
/// makes its channel from that URI.
pub async fn discover<R: Registry>(
    registry: R,
    service: &str,
    policy: Policy,
    scheme: &'static str,
    refresh: Duration,
    wait: Duration,
    connect: impl Fn(&str) -> anyhow::Result<Channel> + Send + Sync + 'static,
) -> Balancer {
    let balancer = Balancer::new(service, policy, scheme, connect);
    let first = match tokio::time::timeout(wait, registry.resolve(service)).await {
        Ok(Ok(resolved)) => resolved,
        Ok(Err(err)) => {
            tracing::warn!(%service, error = %format!("{err:#}"), "cannot resolve yet");
            Resolved::default()
        }
        Err(_) => {
            tracing::warn!(%service, ?wait, "cannot resolve yet: no answer");
            Resolved::default()
        }
    };
    balancer.update(&first.addresses);
    balancer.follow(registry, first, refresh.max(Duration::from_millis(10)));
    balancer
}

/// Typed calls of one service: each waits for the connection to be ready, is tagged with its
/// method (for the retries and breaker) and carries the deadline.
#[derive(Debug, Clone)]
pub struct Calls {
    grpc: Grpc<Transport>,
    deadline: Duration,
}

impl Calls {
    /// The deadline each call carries.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Calls the unary method at `path` (`/package.Service/Method`).
    pub async fn unary<Req, Res>(&self, message: Req, path: &'static str) -> Result<Res, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        let mut request = tonic::Request::new(message);
        let (mut grpc, path) = self.prepare(&mut request, path).await?;
        let response = grpc.unary(request, path, ProstCodec::default()).await?;
        Ok(response.into_inner())
    }

    /// Calls the method at `path` that streams its responses.
    pub async fn server_streaming<Req, Res>(
        &self,
        message: Req,
        path: &'static str,
    ) -> Result<tonic::Streaming<Res>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        let mut request = tonic::Request::new(message);
        let (mut grpc, path) = self.prepare(&mut request, path).await?;
        let response = grpc
            .server_streaming(request, path, ProstCodec::default())
            .await?;
        Ok(response.into_inner())
    }

    /// Calls the method at `path` that takes a stream of requests.
    pub async fn client_streaming<S, Res>(
        &self,
        messages: S,
        path: &'static str,
    ) -> Result<Res, Status>
    where
        S: tonic::IntoStreamingRequest,
        S::Stream: Send + 'static,
        S::Message: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        let mut request = messages.into_streaming_request();
        let (mut grpc, path) = self.prepare(&mut request, path).await?;
        let response = grpc
            .client_streaming(request, path, ProstCodec::default())
            .await?;
        Ok(response.into_inner())
    }

    /// Calls the method at `path` that streams both ways.
    pub async fn bidirectional<S, Res>(
        &self,
        messages: S,
        path: &'static str,
    ) -> Result<tonic::Streaming<Res>, Status>
    where
        S: tonic::IntoStreamingRequest,
        S::Stream: Send + 'static,
        S::Message: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        let mut request = messages.into_streaming_request();
        let (mut grpc, path) = self.prepare(&mut request, path).await?;
        let response = grpc.streaming(request, path, ProstCodec::default()).await?;
        Ok(response.into_inner())
    }

    /// Waits until the channel can take a call to `path`, then returns it ready with the
    /// path; the request gets the deadline and its gRPC method.
    async fn prepare<T>(
        &self,
        request: &mut tonic::Request<T>,
        path: &'static str,
    ) -> Result<(Grpc<Transport>, PathAndQuery), Status> {
        let mut grpc = self.grpc.clone();
        grpc.ready()
            .await
            .map_err(|err| Status::unavailable(format!("channel not ready: {err}")))?;
        request.set_timeout(self.deadline);
        let (service, method) = path
            .trim_start_matches('/')
            .rsplit_once('/')
            .unwrap_or(("", path));
        request
            .extensions_mut()
            .insert(tonic::GrpcMethod::new(service, method));
        Ok((grpc, PathAndQuery::from_static(path)))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        convert::Infallible,
        sync::{Arc, Mutex},
    };

    use super::*;
    use crate::methods::Method;

    static METHODS: Methods = Methods::new(&[Method::unary("/users.v1.Users/GetUser")]);

    fn stack(token: &str) -> Stack<'_> {
        Stack {
            token,
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            observers: &[],
            methods: METHODS,
            deadline: Duration::from_millis(250),
            gzip: false,
        }
    }

    /// What a call sent, as the server would see it.
    #[derive(Debug, Default)]
    struct Seen {
        path: String,
        timeout: Option<String>,
        authorization: Option<String>,
    }

    #[tokio::test]
    async fn a_call_carries_its_path_deadline_and_token() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let recorder = {
            let seen = Arc::clone(&seen);
            tower::service_fn(move |request: http::Request<tonic::body::Body>| {
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned)
                };
                *seen.lock().unwrap() = Seen {
                    path: request.uri().path().to_owned(),
                    timeout: header("grpc-timeout"),
                    authorization: header("authorization"),
                };
                // A gRPC answer with no message: UNIMPLEMENTED, in trailers-only form.
                let response = http::Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "12")
                    .body(tonic::body::Body::empty())
                    .unwrap();
                async move { Ok::<_, Infallible>(response) }
            })
        };
        let connection = Connection::new(recorder, "test", None, stack("secret")).unwrap();
        let calls = connection.with_deadline(Duration::from_millis(300)).calls();
        let status = calls
            .unary::<(), ()>((), "/users.v1.Users/GetUser")
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.path, "/users.v1.Users/GetUser");
        // What is left of the deadline when the request leaves (the retries keep it current).
        let timeout = seen.timeout.as_deref().expect("a grpc-timeout");
        let left = match timeout.split_at(timeout.len() - 1) {
            (millis, "m") => millis.parse::<u64>().unwrap(),
            (micros, "u") => micros.parse::<u64>().unwrap() / 1000,
            _ => panic!("unexpected unit: {timeout}"),
        };
        assert!((200..=300).contains(&left), "{timeout}");
        assert_eq!(seen.authorization.as_deref(), Some("Bearer secret"));
        assert!(connection.endpoints().is_empty(), "no balancer");
        assert_eq!(connection.breaker_state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn a_bad_address_or_token_is_refused() {
        let dial = Dial {
            connect_timeout: Duration::from_secs(1),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
        };
        let err = dial.endpoint("not a uri").unwrap_err().to_string();
        assert!(err.contains("`not a uri`"), "{err}");
        let channel = dial.endpoint("http://127.0.0.1:1").unwrap().connect_lazy();
        let refused = Connection::new(channel, "test", None, stack("bad\ntoken"));
        assert!(refused.is_err(), "a token that cannot be a header");
    }
}
