//! Tower middleware of the clients `microframework` generates: a bearer token, a circuit
//! breaker, and retries with backoff and throttling.

mod bearer;
mod resilience;

pub use bearer::BearerToken;
pub use resilience::{
    Breaker, BreakerPolicy, BreakerState, CircuitBreaker, Retry, RetryPolicy, StateObserver,
};
