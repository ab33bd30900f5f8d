//! A bearer token on every call.

use std::task::{Context, Poll};

use http::{header::AUTHORIZATION, HeaderValue, Request};
use tower::Service;

/// Adds `authorization: Bearer <token>` to calls that carry no authorization; the header is
/// marked sensitive, so it is never logged.
///
/// ```
/// use microframework_runtime::client::BearerToken;
/// use tower::service_fn;
///
/// let inner = service_fn(|_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(()) });
/// let client = BearerToken::new(inner, "s3cret").expect("a token is a header value");
/// # drop(client);
/// ```
#[derive(Debug, Clone)]
pub struct BearerToken<S> {
    inner: S,
    value: Option<HeaderValue>,
}

impl<S> BearerToken<S> {
    /// Wraps `inner`; an empty token adds nothing.
    ///
    /// # Errors
    /// A token that cannot be a header value (a line break, say).
    pub fn new(inner: S, token: &str) -> Result<Self, http::header::InvalidHeaderValue> {
        let value = if token.is_empty() {
            None
        } else {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
            value.set_sensitive(true);
            Some(value)
        };
        Ok(Self { inner, value })
    }
}

impl<S: Service<Request<B>>, B> Service<Request<B>> for BearerToken<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(value) = &self.value {
            let headers = request.headers_mut();
            if !headers.contains_key(AUTHORIZATION) {
                headers.insert(AUTHORIZATION, value.clone());
            }
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{service_fn, ServiceExt};

    use super::*;

    /// What the wrapped service saw in `authorization`.
    async fn seen(token: &str, preset: Option<&'static str>) -> Option<HeaderValue> {
        let echo = service_fn(|request: Request<()>| async move {
            Ok::<_, Infallible>(request.headers().get(AUTHORIZATION).cloned())
        });
        let mut request = Request::new(());
        if let Some(preset) = preset {
            request
                .headers_mut()
                .insert(AUTHORIZATION, HeaderValue::from_static(preset));
        }
        BearerToken::new(echo, token)
            .unwrap()
            .oneshot(request)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_token_is_added_once_and_marked_sensitive() {
        let value = seen("s3cret", None).await.unwrap();
        assert_eq!(value, "Bearer s3cret");
        assert!(value.is_sensitive());
        assert_eq!(seen("s3cret", Some("Basic x")).await.unwrap(), "Basic x");
        assert_eq!(seen("", None).await, None);
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused() {
        let echo = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(()) });
        assert!(BearerToken::new(echo, "a\nb").is_err());
    }
}
