//! The `tower-principal` binary: printed keys validate against printed entries.

#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use tower_principal::{Authenticator, Credential, Principal};
use tower_principal_apikey::{ApiKey, ApiKeyAuthenticator, KeyPrefix, MemoryStore};

const BIN: &str = env!("CARGO_BIN_EXE_tower-principal");

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Splits the output of `apikey new` into the key and the store entry.
fn key_and_entry(stdout: &str) -> (String, String) {
    let mut lines = stdout.lines();
    let label = lines.next().unwrap();
    assert!(label.starts_with("# API key for "), "{label}");
    let key = lines.next().unwrap().to_owned();
    let rest: Vec<&str> = lines.collect();
    (key, rest.join("\n"))
}

async fn authenticate(authenticator: &ApiKeyAuthenticator, key: &str) -> Principal {
    let (parts, ()) = http::Request::new(()).into_parts();
    let credential = Credential::ApiKey(key.to_owned());
    authenticator
        .authenticate(&credential, &parts)
        .await
        .unwrap()
}

#[tokio::test]
async fn new_key_validates_against_its_printed_entry() {
    let args = [
        "apikey",
        "new",
        "--account",
        "order-processor",
        "--scope",
        "orders:read",
        "--scope",
        "orders:process",
        "--expires-in-days",
        "30",
    ];
    let output = run(&args, "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let stdout = String::from_utf8(output.stdout).unwrap();
    let (key, entry) = key_and_entry(&stdout);
    assert_eq!(stdout.matches(&key).count(), 1, "the key is printed once");
    assert!(
        !entry.contains(&key[key.len() - 43..]),
        "the entry holds no secret"
    );

    let store = MemoryStore::from_toml(&entry).unwrap();
    let parsed = ApiKey::parse(&key).unwrap();
    let stored = store.get(parsed.id()).unwrap();
    let expires_at = stored.expires_at().unwrap();
    let expected = SystemTime::now() + Duration::from_secs(30 * 86_400);
    assert!(expires_at <= expected && expires_at + Duration::from_secs(60) > expected);

    let principal = authenticate(&ApiKeyAuthenticator::new(store), &key).await;
    assert_eq!(principal.subject(), "order-processor");
    assert_eq!(principal.scopes().to_string(), "orders:process orders:read");
}

#[tokio::test]
async fn custom_prefix_is_used() {
    let output = run(
        &["apikey", "new", "--account", "svc", "--prefix", "shop"],
        "",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (key, entry) = key_and_entry(&String::from_utf8(output.stdout).unwrap());
    assert!(key.starts_with("shop_"), "{key}");
    let store = MemoryStore::from_toml(&entry).unwrap();
    let authenticator =
        ApiKeyAuthenticator::new(store).with_prefix(KeyPrefix::new("shop").unwrap());
    let principal = authenticate(&authenticator, &key).await;
    assert!(principal.scopes().is_empty());
}

#[tokio::test]
async fn hash_prints_the_entry_of_a_key_on_stdin() {
    let key = ApiKey::generate(&KeyPrefix::default()).unwrap();
    let stdin = format!("{}\n", key.expose_secret());
    let output = run(
        &["apikey", "hash", "--account", "billing", "--scope", "x"],
        &stdin,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let entry = String::from_utf8(output.stdout).unwrap();
    assert!(!entry.contains(key.expose_secret()));
    let store = MemoryStore::from_toml(&entry).unwrap();
    let principal = authenticate(&ApiKeyAuthenticator::new(store), key.expose_secret()).await;
    assert_eq!(principal.subject(), "billing");
    assert!(principal.has_scope("x"));
}

#[test]
fn bad_arguments_fail_without_printing_a_key() {
    let cases: [&[&str]; 4] = [
        &["apikey", "new", "--account", "order processor"],
        &["apikey", "new", "--account", "svc", "--prefix", "TP"],
        &["apikey", "new", "--account", "svc", "--scope", "a\"b"],
        &["apikey", "new", "--scope", "orders:read"],
    ];
    for args in cases {
        let output = run(args, "");
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
    }

    let output = run(&["apikey", "hash", "--account", "svc"], "not a key\n");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
}
