//! Tower layers: authentication and scope requirements.

pub mod auth;
pub mod future;
pub mod scopes;
