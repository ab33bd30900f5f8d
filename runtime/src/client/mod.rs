//! Tower middleware of the clients `microframework` generates: a bearer token, a circuit
//! breaker, and retries with backoff and throttling.

mod bearer;
mod connection;
mod options;
mod resilience;

pub use bearer::BearerToken;
pub use connection::{discover, Calls, Connection, Dial, Stack};
pub use options::ClientOptions;
pub use resilience::{
    Breaker, BreakerPolicy, BreakerState, CircuitBreaker, Retry, RetryPolicy, StateObserver,
};

use tower::util::BoxCloneSyncService;

/// A client's middleware stack over its channel, boxed: what every typed client calls
/// through (and what clients of other services, health or reflection, can be built on).
pub type Transport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    crate::BoxError,
>;
