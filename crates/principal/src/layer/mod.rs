//! Tower layers: authentication and scope requirements.

pub mod auth;
pub mod scopes;
