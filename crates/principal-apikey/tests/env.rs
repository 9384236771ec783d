//! `MemoryStore::from_env`, checked in a child process (setting variables in
//! this one would need `unsafe`).

#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::process::Command;

use tower_principal::{Authenticator, Credential};
use tower_principal_apikey::{AccountName, ApiKey, ApiKeyAuthenticator, KeyPrefix, MemoryStore};

const VAR: &str = "TP_API_KEYS_ENV_TEST";
const KEY_VAR: &str = "TP_API_KEY_ENV_TEST_KEY";

/// Runs as the child when the variables are set, else spawns the child.
#[tokio::test]
async fn memory_store_from_env_reads_inline_toml() {
    if let (Ok(_), Ok(key)) = (std::env::var(VAR), std::env::var(KEY_VAR)) {
        let store = MemoryStore::from_env(VAR).unwrap();
        let authenticator = ApiKeyAuthenticator::new(store);
        let (parts, ()) = http::Request::new(()).into_parts();
        let principal = authenticator
            .authenticate(&Credential::ApiKey(key), &parts)
            .await
            .unwrap();
        assert_eq!(principal.subject(), "order-processor");
        assert!(principal.has_scope("orders:read"));
        return;
    }

    let key = ApiKey::generate(&KeyPrefix::default()).unwrap();
    let account = AccountName::new("order-processor").unwrap();
    let one_line = format!(
        r#"keys = [{{ id = "{}", account = "{account}", scopes = ["orders:read"], sha256 = "{}" }}]"#,
        key.id(),
        key.secret_hash()
    );
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_store_from_env_reads_inline_toml",
            "--nocapture",
        ])
        .env(VAR, one_line)
        .env(KEY_VAR, key.expose_secret())
        .output()
        .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}
