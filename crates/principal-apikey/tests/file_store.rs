//! `FileStore`: start-up errors, and reloads while a real server keeps serving.

#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use tower_principal_apikey::{ApiKeyAuthenticator, FileStore, LoadError};

use common::{Server, new_key, store_file, stored, temp_dir, write_atomically};

const POLL: Duration = Duration::from_millis(50);

fn watched(path: &std::path::Path) -> FileStore {
    FileStore::builder(path)
        .poll_interval(POLL)
        .reload_on_sighup(false)
        .build()
        .unwrap()
}

#[tokio::test]
async fn new_key_written_to_the_file_works_without_restart() {
    let path = temp_dir("reload").join("keys.toml");
    let (first, second) = (new_key(), new_key());
    write_atomically(
        &path,
        &store_file(&[stored(&first, "billing", "orders:read")]),
    );
    let store = watched(&path);
    let server = Server::start(ApiKeyAuthenticator::new(store.clone())).await;

    let reply = server.get_with_key("/orders", second.expose_secret()).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "not in the file yet"
    );

    let both = [
        stored(&first, "billing", "orders:read"),
        stored(&second, "billing", "orders:read"),
    ];
    write_atomically(&path, &store_file(&both));
    let reply = server
        .wait_for_status("/orders", second.expose_secret(), StatusCode::OK)
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.json()["subject"], "billing");
    let reply = server.get_with_key("/orders", first.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::OK, "the first key still works");
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn revoking_in_the_file_takes_effect() {
    let path = temp_dir("revoke").join("keys.toml");
    let key = new_key();
    write_atomically(
        &path,
        &store_file(&[stored(&key, "billing", "orders:read")]),
    );
    let server = Server::start(ApiKeyAuthenticator::new(watched(&path))).await;
    let reply = server.get_with_key("/orders", key.expose_secret()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    let revoked = stored(&key, "billing", "orders:read").with_revoked(true);
    write_atomically(&path, &store_file(&[revoked]));
    let reply = server
        .wait_for_status("/orders", key.expose_secret(), StatusCode::UNAUTHORIZED)
        .await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
}

#[tokio::test]
async fn broken_rewrite_keeps_the_old_keys() {
    let path = temp_dir("broken").join("keys.toml");
    let (old, later) = (new_key(), new_key());
    write_atomically(
        &path,
        &store_file(&[stored(&old, "billing", "orders:read")]),
    );
    let store = watched(&path);
    let server = Server::start(ApiKeyAuthenticator::new(store.clone())).await;

    // Truncated mid-entry, then a file without `keys` at all: neither may empty the store.
    for broken in ["[[keys]]\nid = \"abc\"\naccount = ", "# all keys gone?\n"] {
        write_atomically(&path, broken);
        tokio::time::sleep(POLL * 4).await;
        let reply = server.get_with_key("/orders", old.expose_secret()).await;
        assert_eq!(reply.status, StatusCode::OK, "after {broken:?}: {reply:?}");
        assert!(matches!(store.reload(), Err(LoadError::Syntax(_))));
    }

    // The watcher is still alive and takes the next good file.
    write_atomically(
        &path,
        &store_file(&[stored(&later, "billing", "orders:read")]),
    );
    let reply = server
        .wait_for_status("/orders", later.expose_secret(), StatusCode::OK)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = server.get_with_key("/orders", old.expose_secret()).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "the old key left with the good file"
    );
}

#[tokio::test]
async fn bad_file_at_start_up_is_an_error() {
    let dir = temp_dir("startup");
    let key = new_key();
    let entry = store_file(&[stored(&key, "billing", "orders:read")]);
    let cases = [
        ("missing.toml", None),
        ("syntax.toml", Some("[[keys]\n".to_owned())),
        ("duplicate.toml", Some(format!("{entry}\n{entry}"))),
        (
            "unknown-field.toml",
            Some(format!("{entry}revoke = true\n")),
        ),
        (
            "bad-hash.toml",
            Some(entry.replace("sha256 = \"", "sha256 = \"x")),
        ),
    ];

    for (name, text) in cases {
        let path = dir.join(name);
        if let Some(text) = &text {
            write_atomically(&path, text);
        }
        let error = FileStore::builder(&path).build().unwrap_err();
        let expected = match name {
            "missing.toml" => matches!(error, LoadError::Read { .. }),
            "duplicate.toml" => matches!(&error, LoadError::DuplicateKeyId(id) if id == key.id()),
            "bad-hash.toml" => matches!(
                error,
                LoadError::InvalidEntry {
                    field: "sha256",
                    ..
                }
            ),
            _ => matches!(error, LoadError::Syntax(_)),
        };
        assert!(expected, "{name}: unexpected {error:?}");
    }
}

#[tokio::test]
async fn clone_keeps_watching_after_the_original_is_dropped() {
    let path = temp_dir("drop").join("keys.toml");
    write_atomically(
        &path,
        &store_file(&[stored(&new_key(), "billing", "orders:read")]),
    );
    let store = watched(&path);
    let clone = store.clone();
    drop(store);
    write_atomically(&path, "keys = []\n");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !clone.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(clone.is_empty(), "the clone's watcher should have reloaded");
}
