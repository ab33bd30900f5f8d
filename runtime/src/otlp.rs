//! OpenTelemetry span export over OTLP/gRPC (feature `otlp`): the exporting layer
//! ([`telemetry`]), the caller's trace continued in a call's span ([`continue_trace`]), and
//! the client's [`PropagateTrace`], which sends the calling span's trace context.

use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::Layer as _;

use crate::telemetry::{filter, TelemetryPart, TracingConfig};

/// The exporting layer, when `config.otlp_endpoint` is set, for the service `package` (the
/// exported `service.name` unless `config.service_name` says otherwise). The part flushes the
/// spans still pending when the telemetry guard is dropped.
pub fn telemetry(config: &TracingConfig, package: &str) -> anyhow::Result<TelemetryPart> {
    let exported = filter("tracing.filter", &config.filter)?;
    let provider = exporter::provider(config, package)?;
    let layer = provider.as_ref().map(|provider| {
        let tracer = provider.tracer(package.to_owned());
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(exported)
            .boxed()
    });
    Ok(TelemetryPart {
        layer,
        keep: Box::new(exporter::Flush(provider)),
    })
}

/// Makes `span` a child of the caller's span named by the `traceparent` and `tracestate`
/// headers, so exported traces continue across services (a
/// [`TraceContinuer`](crate::telemetry::TraceContinuer)).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    exporter::continue_trace(span, headers);
}

/// Client middleware that sends the trace context of the calling span (W3C `traceparent` and
/// `tracestate`), so the callee's spans join the caller's trace. A call that already carries
/// a `traceparent` keeps it.
#[derive(Debug, Clone)]
pub struct PropagateTrace<S> {
    inner: S,
}

impl<S> PropagateTrace<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, B> tower::Service<http::Request<B>> for PropagateTrace<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !request.headers().contains_key("traceparent") {
            exporter::inject_trace(request.headers_mut());
        }
        self.inner.call(request)
    }
}

mod exporter {
    use anyhow::Context;
    use opentelemetry::propagation::{Extractor, Injector};
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::{
        propagation::TraceContextPropagator, trace::SdkTracerProvider, Resource,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::telemetry::TracingConfig;

    /// Flushes the spans not yet sent when dropped.
    pub(super) struct Flush(pub(super) Option<SdkTracerProvider>);

    impl Drop for Flush {
        fn drop(&mut self) {
            if let Some(provider) = self.0.take() {
                if let Err(err) = provider.shutdown() {
                    eprintln!("cannot flush spans: {err}");
                }
            }
        }
    }

    pub(super) fn provider(
        config: &TracingConfig,
        package: &str,
    ) -> anyhow::Result<Option<SdkTracerProvider>> {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        if config.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.otlp_endpoint.clone())
            .build()
            .with_context(|| format!("cannot export spans to {}", config.otlp_endpoint))?;
        let name = if config.service_name.is_empty() {
            package.to_owned()
        } else {
            config.service_name.clone()
        };
        let resource = Resource::builder().with_service_name(name).build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Some(provider))
    }

    struct Headers<'a>(&'a http::HeaderMap);

    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|value| value.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }

    struct HeadersMut<'a>(&'a mut http::HeaderMap);

    impl Injector for HeadersMut<'_> {
        fn set(&mut self, key: &str, value: String) {
            let name = http::HeaderName::from_bytes(key.as_bytes());
            let value = http::HeaderValue::from_str(&value);
            if let (Ok(name), Ok(value)) = (name, value) {
                self.0.insert(name, value);
            }
        }
    }

    pub(super) fn inject_trace(headers: &mut http::HeaderMap) {
        let context = tracing::Span::current().context();
        if context.span().span_context().is_valid() {
            opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.inject_context(&context, &mut HeadersMut(headers));
            });
        }
    }

    pub(super) fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
        if headers.contains_key("traceparent") {
            let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
                propagator.extract(&Headers(headers))
            });
            // Fails only when no OpenTelemetry layer is installed: nothing to continue then.
            let _ = span.set_parent(parent);
        }
    }
}
