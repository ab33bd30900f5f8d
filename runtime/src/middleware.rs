//! The tower layer around every call a server handles, [`CallGuard`]: it records the
//! call's status in the request span, turns a panicking handler into INTERNAL and puts the
//! call's deadline in force while its handler runs ([`crate::deadline`]). A service
//! wraps its other layers inside it (refusing calls) or outside it (observing every answer,
//! panics included). [`CodeObserver`] and [`PendingCode`] are what a layer uses to learn a
//! call's status code, for unary calls and streams alike.

use std::{
    any::Any,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http_body::{Body as HttpBody, Frame};
use pin_project_lite::pin_project;
use tonic::{body::Body, Code, Status};
use tower::{Layer, Service};

use crate::methods::{MethodKind, Methods};
use crate::store::Streams;

/// Records each call's status code in its span and answers INTERNAL for a panicking handler.
///
/// The span is the one the server opens per request (tonic's `trace_fn`), with an empty
/// `grpc.code` field to fill in.
#[derive(Debug, Clone)]
pub struct CallGuard {
    methods: Methods,
    streams: Option<Streams>,
}

impl CallGuard {
    /// A guard for a server answering `methods` (unary ones complete when their handler
    /// answers).
    pub fn new(methods: Methods) -> Self {
        let streams = None;
        Self { methods, streams }
    }

    /// Hands `streams` to every call whose answer streams, where the handler finds them
    /// ([`Streams::of`]): the limits of the server's record streams.
    pub fn with_streams(mut self, streams: Streams) -> Self {
        self.streams = Some(streams);
        self
    }
}

impl<S> Layer<S> for CallGuard {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner,
            methods: self.methods,
            streams: self.streams.clone(),
        }
    }
}

/// A service behind [`CallGuard`].
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    methods: Methods,
    streams: Option<Streams>,
}

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = GuardedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let kind = self.methods.kind(request.uri().path());
        let status = PendingCode::new(
            SpanStatus {
                span: tracing::Span::none(),
            },
            kind == Some(MethodKind::Unary),
        );
        if let (Some(streams), Some(MethodKind::ServerStream | MethodKind::BidiStream)) =
            (&self.streams, kind)
        {
            request.extensions_mut().insert(streams.clone());
        }
        let deadline = crate::deadline::of_request(request.headers());
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(call) => GuardedFuture {
                call: Some(call),
                answer: None,
                status: Some(status),
                deadline,
            },
            Err(panic) => GuardedFuture {
                call: None,
                answer: Some(panicked(&*panic)),
                status: Some(status),
                deadline,
            },
        }
    }
}

pin_project! {
    /// The response of a call behind [`CallGuard`]: the service's, or INTERNAL when it
    /// panicked.
    pub struct GuardedFuture<F> {
        #[pin]
        call: Option<F>,
        answer: Option<Status>,
        status: Option<PendingCode<SpanStatus>>,
        // The call's `grpc-timeout` from when it came in.
        deadline: Option<tokio::time::Instant>,
    }
}

impl<F, E> Future for GuardedFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // tonic enters the request's span while it polls this future.
        if let Some(observer) = this.status.as_mut().and_then(PendingCode::observer_mut) {
            if observer.span.is_none() {
                observer.span = tracing::Span::current();
            }
        }
        let response = if let Some(status) = this.answer.take() {
            status.into_http()
        } else {
            let Some(call) = this.call.as_mut().as_pin_mut() else {
                return Poll::Pending;
            };
            let deadline = *this.deadline;
            let poll = || crate::deadline::polled_within(deadline, || call.poll(cx));
            match std::panic::catch_unwind(AssertUnwindSafe(poll)) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(Ok(response))) => response,
                Ok(Poll::Ready(Err(err))) => return Poll::Ready(Err(err)),
                Err(panic) => {
                    this.call.set(None);
                    panicked(&*panic).into_http()
                }
            }
        };
        match this.status.take() {
            Some(status) => Poll::Ready(Ok(status.finish(response))),
            None => Poll::Ready(Ok(response)),
        }
    }
}

/// The instances the earlier attempts of one call went to, shared by its attempts through
/// their extensions (the client's retry layer puts it there): a balancer sends a retry to
/// another instance when there is one, as Envoy's `previous_hosts` does.
#[derive(Debug, Clone, Default)]
pub struct Attempted(Arc<std::sync::Mutex<Vec<String>>>);

impl Attempted {
    /// Whether an earlier attempt went to `address`.
    pub fn contains(&self, address: &str) -> bool {
        self.lock().iter().any(|tried| tried == address)
    }

    /// Notes that an attempt goes to `address`.
    pub fn add(&self, address: &str) {
        self.lock().push(address.to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Writes a call's status code into its span.
#[derive(Debug)]
pub struct SpanStatus {
    span: tracing::Span,
}

impl CodeObserver for SpanStatus {
    fn observe(&mut self, code: Code) {
        self.span.record("grpc.code", code_name(code));
    }
}

/// The INTERNAL status of a call whose handler panicked, logged with the panic message.
fn panicked(panic: &(dyn Any + Send)) -> Status {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)");
    tracing::error!(panic = message, "handler panicked");
    Status::internal("the handler panicked")
}

/// What a layer does once it knows a call's status code.
pub trait CodeObserver: Send + Unpin + 'static {
    /// Called once per call, with its status code.
    fn observe(&mut self, code: Code);
}

/// An observer waiting for its call's status code: told it as soon as the response says
/// (in its headers, or, for a stream, in its trailers), or told `Cancelled` when the call
/// is dropped before that.
#[derive(Debug)]
pub struct PendingCode<O: CodeObserver> {
    observer: Option<O>,
    unary: bool,
}

impl<O: CodeObserver> PendingCode<O> {
    /// Waits for the code of a call; `unary` calls complete when their handler answers (as
    /// go-grpc-prometheus counts them).
    pub fn new(observer: O, unary: bool) -> Self {
        Self {
            observer: Some(observer),
            unary,
        }
    }

    /// The observer, to update while the call runs (`None` once it was told the code).
    pub fn observer_mut(&mut self) -> Option<&mut O> {
        self.observer.as_mut()
    }

    /// Tells the observer the code now if `response` carries it in its headers or the call
    /// is unary; otherwise when the body's trailers pass by.
    pub fn finish(mut self, response: http::Response<Body>) -> http::Response<Body> {
        let Some(mut observer) = self.observer.take() else {
            return response;
        };
        if let Some(code) = grpc_status(response.headers()) {
            observer.observe(code);
            return response;
        }
        if self.unary {
            observer.observe(Code::Ok);
            return response;
        }
        response.map(|body| {
            Body::new(ObservedBody {
                inner: body,
                pending: Self::new(observer, false),
            })
        })
    }

    fn complete(&mut self, code: Code) {
        if let Some(mut observer) = self.observer.take() {
            observer.observe(code);
        }
    }
}

impl<O: CodeObserver> Drop for PendingCode<O> {
    fn drop(&mut self) {
        self.complete(Code::Cancelled);
    }
}

/// A response body that tells its observer the call's status when the trailers pass by.
struct ObservedBody<O: CodeObserver> {
    inner: Body,
    pending: PendingCode<O>,
}

impl<O: CodeObserver> HttpBody for ObservedBody<O> {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.pending.complete(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.pending.complete(Code::Unknown),
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The name go-grpc-prometheus gives a status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The gRPC status code in `headers` (a response's, for a trailers-only answer, or its
/// trailers).
pub(crate) fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from)
}

/// A test hook: in the environment `test` (`APP_ENV`), the variable `TEST_CALL_DELAY_MS`
/// delays every call by that many milliseconds (to test balancing with a slow instance).
/// Other environments ignore it; without it the service is `inner` itself, and release
/// builds leave the hook out.
#[cfg(debug_assertions)]
pub fn test_delay<S>(environment: &str, inner: S) -> tower::util::Either<Delayed<S>, S> {
    let delay = (environment == "test")
        .then(|| std::env::var("TEST_CALL_DELAY_MS").ok())
        .flatten()
        .and_then(|millis| millis.parse::<u64>().ok())
        .filter(|millis| *millis > 0);
    match delay {
        Some(millis) => tower::util::Either::Left(Delayed {
            inner,
            delay: std::time::Duration::from_millis(millis),
        }),
        None => tower::util::Either::Right(inner),
    }
}

/// Release builds: `inner` itself.
#[cfg(not(debug_assertions))]
pub fn test_delay<S>(_environment: &str, inner: S) -> S {
    inner
}

/// A service whose calls start after a delay ([`test_delay`]).
#[derive(Debug, Clone)]
pub struct Delayed<S> {
    inner: S,
    delay: std::time::Duration,
}

impl<S> Service<http::Request<Body>> for Delayed<S>
where
    S: Service<http::Request<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is not ready: keep it, and call the instance that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Debug, Clone, Default)]
    struct Seen(Arc<Mutex<Vec<Code>>>);

    impl CodeObserver for Seen {
        fn observe(&mut self, code: Code) {
            self.0.lock().expect("lock").push(code);
        }
    }

    fn ok_response() -> http::Response<Body> {
        http::Response::new(Body::empty())
    }

    #[test]
    fn a_unary_answer_without_a_status_header_is_ok() {
        let seen = Seen::default();
        PendingCode::new(seen.clone(), true).finish(ok_response());
        assert_eq!(*seen.0.lock().expect("lock"), [Code::Ok]);
    }

    #[test]
    fn a_status_in_the_headers_is_told_at_once_and_only_once() {
        let seen = Seen::default();
        let response = Status::not_found("gone").into_http();
        drop(PendingCode::new(seen.clone(), false).finish(response));
        assert_eq!(*seen.0.lock().expect("lock"), [Code::NotFound]);
    }

    /// A body of the given frames.
    struct Frames(std::collections::VecDeque<Frame<bytes::Bytes>>);

    impl HttpBody for Frames {
        type Data = bytes::Bytes;
        type Error = Status;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    #[tokio::test]
    async fn a_stream_is_told_its_code_when_the_trailers_pass_by() {
        use http_body_util::BodyExt;
        let seen = Seen::default();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("14"));
        let frames = Frames(
            [
                Frame::data(bytes::Bytes::from_static(b"x")),
                Frame::trailers(trailers),
            ]
            .into(),
        );
        let response = http::Response::new(Body::new(frames));
        let answered = PendingCode::new(seen.clone(), false).finish(response);
        assert!(
            seen.0.lock().expect("lock").is_empty(),
            "not before the trailers"
        );
        let collected = answered.into_body().collect().await.expect("body");
        assert!(collected.trailers().is_some());
        assert_eq!(*seen.0.lock().expect("lock"), [Code::Unavailable]);
    }

    #[test]
    fn a_stream_dropped_before_its_trailers_is_cancelled() {
        let seen = Seen::default();
        let response = http::Response::new(Body::new(Frames(Default::default())));
        drop(PendingCode::new(seen.clone(), false).finish(response));
        assert_eq!(*seen.0.lock().expect("lock"), [Code::Cancelled]);
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_internal() {
        use tower::ServiceExt;
        let handler = tower::service_fn(|_: http::Request<Body>| async {
            if true {
                panic!("boom");
            }
            Ok::<_, std::convert::Infallible>(ok_response())
        });
        const METHODS: Methods = Methods::new(&[crate::methods::Method::unary("/a.S/M")]);
        let guarded = CallGuard::new(METHODS).layer(handler);
        let request = http::Request::builder()
            .uri("/a.S/M")
            .body(Body::empty())
            .expect("request");
        let response = guarded.oneshot(request).await.expect("an answer");
        assert_eq!(
            response.headers().get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"13"[..])
        );
    }

    #[tokio::test]
    async fn a_handler_sees_what_is_left_of_its_deadline() {
        use tower::ServiceExt;
        let handler = tower::service_fn(|_: http::Request<Body>| async {
            tokio::task::yield_now().await;
            let left = crate::deadline::remaining();
            let mut response = ok_response();
            let left = left.map_or("none".to_owned(), |left| left.as_millis().to_string());
            let left = http::HeaderValue::from_str(&left).expect("a number");
            response.headers_mut().insert("left", left);
            Ok::<_, std::convert::Infallible>(response)
        });
        const METHODS: Methods = Methods::new(&[crate::methods::Method::unary("/a.S/M")]);
        let guarded = CallGuard::new(METHODS).layer(handler);
        let left = |timeout: Option<&'static str>| {
            let mut request = http::Request::builder().uri("/a.S/M");
            if let Some(timeout) = timeout {
                request = request.header("grpc-timeout", timeout);
            }
            let request = request.body(Body::empty()).expect("request");
            let call = guarded.clone().oneshot(request);
            async move {
                let response = call.await.expect("an answer");
                let left = response.headers().get("left").expect("told").to_str();
                left.expect("text").to_owned()
            }
        };
        let millis: u64 = left(Some("300m")).await.parse().expect("a deadline");
        assert!((250..=300).contains(&millis), "{millis} ms left of 300");
        assert_eq!(left(None).await, "none");
        assert_eq!(
            crate::deadline::remaining(),
            None,
            "only while the handler runs"
        );
    }

    #[test]
    fn codes_are_named_as_go_grpc_prometheus_names_them() {
        assert_eq!(code_name(Code::Cancelled), "Canceled");
        assert_eq!(code_name(Code::DeadlineExceeded), "DeadlineExceeded");
    }
}
