//! The deadline of the call a server is handling, for the work it does on the call's behalf.
//!
//! [`crate::middleware::CallGuard`] reads each call's `grpc-timeout` and makes it the
//! [`remaining`] time of whatever the handler awaits (a task the handler spawns does not
//! inherit it). tonic drops a handler whose deadline passed, but a database does not notice a
//! dropped query: a PostgreSQL statement runs on until its `statement_timeout`, holding its
//! connection and locks. The SQL tables ([`crate::store::sql`]) give a statement what is left
//! of the deadline when that is the shorter limit.
//!
//! ```
//! use std::time::Duration;
//! use microframework_runtime::deadline;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! assert_eq!(deadline::remaining(), None, "outside a call: no deadline");
//! let left = deadline::within(Duration::from_secs(2), async { deadline::remaining() }).await;
//! assert!(left.is_some_and(|left| left <= Duration::from_secs(2)));
//! # });
//! ```

use std::{future::Future, time::Duration};

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// What is left of the deadline of the call being handled: none outside a call, or for a
/// call without one.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// Runs `work` as a call with `timeout` left (what a test or a task spawned by a handler
/// uses to hand the deadline on); a shorter deadline already in force stays.
pub async fn within<F: Future>(timeout: Duration, work: F) -> F::Output {
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(far_future);
    let deadline = match DEADLINE.try_with(|outer| *outer) {
        Ok(outer) => outer.min(deadline),
        Err(_) => deadline,
    };
    DEADLINE.scope(deadline, work).await
}

/// Polls `poll` with `deadline` in force, if there is one.
pub(crate) fn polled_within<R>(deadline: Option<Instant>, poll: impl FnOnce() -> R) -> R {
    match deadline {
        Some(deadline) => DEADLINE.sync_scope(deadline, poll),
        None => poll(),
    }
}

/// The deadline a request's `grpc-timeout` sets, from now.
pub(crate) fn of_request(headers: &http::HeaderMap) -> Option<Instant> {
    let timeout = parse_grpc_timeout(headers.get("grpc-timeout")?.to_str().ok()?)?;
    Some(
        Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(far_future),
    )
}

/// About thirty years from now: a deadline too far off to matter.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// The duration of a `grpc-timeout` header value (`250m`, `3S`, ...).
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (amount, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = amount.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read_in_each_unit() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(
            parse_grpc_timeout("99999999H").map(|d| d > Duration::ZERO),
            Some(true)
        );
        for bad in ["", "m", "5", "5x", "-5m", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
        let mut headers = http::HeaderMap::new();
        assert_eq!(of_request(&headers), None);
        headers.insert("grpc-timeout", http::HeaderValue::from_static("99999999H"));
        assert!(
            of_request(&headers).is_some(),
            "a far deadline does not overflow"
        );
    }

    #[tokio::test]
    async fn an_inner_deadline_never_extends_an_outer_one() {
        let outer = within(Duration::from_millis(100), async {
            within(Duration::from_secs(60), async { remaining() }).await
        })
        .await;
        assert!(
            outer.is_some_and(|left| left <= Duration::from_millis(100)),
            "{outer:?}"
        );
        let inner = within(Duration::from_secs(60), async {
            within(Duration::from_millis(100), async { remaining() }).await
        })
        .await;
        assert!(
            inner.is_some_and(|left| left <= Duration::from_millis(100)),
            "{inner:?}"
        );
        assert_eq!(remaining(), None);
    }
}
