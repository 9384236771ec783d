//! `tower-principal`: mint API keys and their key store entries.
//!
//! ```text
//! tower-principal apikey new --account order-processor --scope orders:read [--prefix tp] [--expires-in-days 90]
//! tower-principal apikey hash --account order-processor --scope orders:read < key.txt
//! ```
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use tower_principal::{Scope, Scopes};
use tower_principal_apikey::{AccountName, ApiKey, KeyPrefix, StoredKey};

/// Tools for tower-principal deployments.
#[derive(Parser)]
#[command(name = "tower-principal", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// API keys for system accounts.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Generates a key; prints it once, and the entry for the key store file.
    New {
        #[command(flatten)]
        entry: EntryArgs,
        /// The key prefix (lowercase letters and digits).
        #[arg(long, default_value = "tp", value_parser = parse_prefix)]
        prefix: KeyPrefix,
    },
    /// Reads a key from standard input and prints its key store entry.
    Hash {
        #[command(flatten)]
        entry: EntryArgs,
    },
}

#[derive(Args)]
struct EntryArgs {
    /// The system account the key authenticates, such as `order-processor`.
    #[arg(long, value_parser = parse_account)]
    account: AccountName,
    /// A scope the key grants; repeat for several.
    #[arg(long = "scope", value_parser = parse_scope)]
    scopes: Vec<Scope>,
    /// Days until the key expires; without it, the key does not expire.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    expires_in_days: Option<u32>,
}

fn parse_prefix(text: &str) -> Result<KeyPrefix, String> {
    KeyPrefix::new(text).map_err(|e| e.to_string())
}

fn parse_account(text: &str) -> Result<AccountName, String> {
    AccountName::new(text).map_err(|e| e.to_string())
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::new(text).ok_or_else(|| "not an RFC 6749 scope token".to_owned())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Apikey(ApiKeyCommand::New { entry, prefix }) => new_key(&entry, &prefix),
        Command::Apikey(ApiKeyCommand::Hash { entry }) => hash_key(&entry),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tower-principal: {message}");
            ExitCode::FAILURE
        }
    }
}

fn new_key(entry: &EntryArgs, prefix: &KeyPrefix) -> Result<(), String> {
    let key = ApiKey::generate(prefix).map_err(|e| format!("no randomness: {e}"))?;
    let stored = entry.stored_key(&key);

    let mut out = io::stdout().lock();
    writeln!(
        out,
        "# API key for {} (shown once; hand it to the client, store it as a secret):",
        stored.account()
    )
    .and_then(|()| writeln!(out, "{}", key.expose_secret()))
    .and_then(|()| writeln!(out))
    .and_then(|()| writeln!(out, "# Key store entry (append to the server's key file):"))
    .and_then(|()| write!(out, "{}", stored.to_toml()))
    .map_err(|e| format!("cannot write output: {e}"))
}

fn hash_key(entry: &EntryArgs) -> Result<(), String> {
    let mut input = String::new();
    io::stdin()
        .take(1024)
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the key from standard input: {e}"))?;
    let key = ApiKey::parse(input.trim()).map_err(|e| e.to_string())?;

    print!("{}", entry.stored_key(&key).to_toml());
    Ok(())
}

impl EntryArgs {
    fn stored_key(&self, key: &ApiKey) -> StoredKey {
        let scopes: Scopes = self.scopes.iter().cloned().collect();
        let stored = StoredKey::new(
            key.id().clone(),
            self.account.clone(),
            scopes,
            key.secret_hash(),
        );
        match self.expires_in_days {
            Some(days) => {
                let lifetime = Duration::from_secs(u64::from(days) * 86_400);
                stored.with_expiry(SystemTime::now() + lifetime)
            }
            None => stored,
        }
    }
}
