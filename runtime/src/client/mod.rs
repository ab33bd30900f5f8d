//! Tower middleware of the clients `microframework` generates.

mod bearer;

pub use bearer::BearerToken;
