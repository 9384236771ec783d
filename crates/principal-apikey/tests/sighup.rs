//! `SIGHUP` reloads a `FileStore`. Its own test binary: the handler is process-wide.

#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

mod common;

use std::time::Duration;

use tower_principal_apikey::FileStore;

use common::{new_key, store_file, stored, temp_dir, write_atomically};

#[tokio::test]
async fn sighup_reloads_the_file() {
    let path = temp_dir("sighup").join("keys.toml");
    let (first, second) = (new_key(), new_key());
    write_atomically(
        &path,
        &store_file(&[stored(&first, "billing", "orders:read")]),
    );
    let store = FileStore::builder(&path)
        .no_polling()
        .reload_on_sighup(true)
        .build()
        .unwrap();

    let both = [
        stored(&first, "billing", "orders:read"),
        stored(&second, "billing", ""),
    ];
    write_atomically(&path, &store_file(&both));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.len(), 1, "without polling, nothing reloads by itself");

    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while store.len() != 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.len(), 2, "SIGHUP should have reloaded the file");
}
