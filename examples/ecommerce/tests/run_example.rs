//! Runs the real `ecommerce` binary and checks what it prints and serves.
#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use tower_principal_testing::TestIssuer;

struct Running {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and reads its stdout up to the line `until` (inclusive).
fn run(args: &[&str], until: &str) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecommerce"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the example binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("utf-8 output");
        let done = line.starts_with(until);
        lines.push(line);
        if done {
            break;
        }
    }
    assert!(
        lines.last().is_some_and(|l| l.starts_with(until)),
        "the example stopped before printing {until:?}: {lines:?}"
    );
    Running { child, lines }
}

/// One printed curl command, understood well enough to replay it.
struct Curl {
    method: String,
    token_var: Option<String>,
    bearer_literal: Option<String>,
    body: Option<String>,
    url: String,
    expected: u16,
}

fn parse_curl(line: &str) -> Curl {
    let (command, comment) = line.split_once("  # ").expect("an expected status");
    let expected = comment[..3].parse().expect("a status code");
    let mut words = shell_words(command).into_iter().skip(1);
    let mut curl = Curl {
        method: "GET".into(),
        token_var: None,
        bearer_literal: None,
        body: None,
        url: String::new(),
        expected,
    };
    while let Some(word) = words.next() {
        match word.as_str() {
            "-i" => {}
            "-X" => curl.method = words.next().expect("a method"),
            "-d" => curl.body = words.next(),
            "-H" => {
                let header = words.next().expect("a header");
                if let Some(value) = header.strip_prefix("Authorization: Bearer ") {
                    match value.strip_prefix('$') {
                        Some(var) => curl.token_var = Some(var.to_owned()),
                        None => curl.bearer_literal = Some(value.to_owned()),
                    }
                }
            }
            url => curl.url = url.to_owned(),
        }
    }
    curl
}

/// Splits on spaces, honouring single and double quotes.
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[tokio::test]
async fn demo_mode_curl_commands_answer_as_printed() {
    let running = run(&["--listen", "127.0.0.1:0"], "ready");
    let tokens: HashMap<String, String> = running
        .lines
        .iter()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
        .collect();
    assert_eq!(tokens.len(), 4, "{:?}", running.lines);

    let curls: Vec<Curl> = running
        .lines
        .iter()
        .filter(|line| line.starts_with("curl "))
        .map(|line| parse_curl(line))
        .collect();
    assert!(curls.len() >= 8);

    let client = reqwest::Client::new();
    for curl in curls {
        let method = reqwest::Method::from_bytes(curl.method.as_bytes()).unwrap();
        let mut request = client.request(method, &curl.url);
        let token = curl
            .token_var
            .as_ref()
            .map(|var| tokens[var].clone())
            .or(curl.bearer_literal.clone());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = &curl.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            curl.expected,
            "{} {} with {:?}",
            curl.method,
            curl.url,
            curl.token_var
        );
    }
}

// Multi-threaded: the test issuer must answer while this thread reads the
// child's output synchronously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mode_trusts_the_external_issuer() {
    let issuer = TestIssuer::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("ecommerce-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\n[jwt]\nissuer = \"{}\"\naudiences = [\"orders-api\"]\njwks_uri = \"{}\"\n[reports]\naudience = \"reports-x\"\n",
            issuer.issuer(),
            issuer.jwks_uri()
        ),
    )
    .unwrap();

    let running = run(&["--config", path.to_str().unwrap()], "listening on ");
    let base = running
        .lines
        .last()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();
    let client = reqwest::Client::new();
    let get = |path: &str, token: String| {
        client
            .get(format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };

    let ok = get("/orders", issuer.token().sign()).await.unwrap();
    assert_eq!(ok.status(), 200);
    let report = issuer
        .token()
        .audience(&["reports-x"])
        .scope("reports:generate")
        .sign();
    let response = client
        .post(format!("{base}/reports"))
        .header("authorization", format!("Bearer {report}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let foreign = issuer
        .token()
        .claim("iss", serde_json::json!("https://other/"))
        .sign();
    assert_eq!(get("/orders", foreign).await.unwrap().status(), 401);
}

#[test]
fn bad_config_exits_with_code_2_and_a_message() {
    let dir = std::env::temp_dir().join(format!("ecommerce-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "typo.toml",
            "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\njwks_uri = \"http://127.0.0.1:1/\"\naudeince = 1\n",
        ),
        (
            "no-aud.toml",
            "[jwt]\nissuer = \"i\"\naudiences = []\njwks_uri = \"http://127.0.0.1:1/\"\n",
        ),
        (
            "bad-uri.toml",
            "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\njwks_uri = \"ftp://x\"\n",
        ),
        ("not-toml.toml", "this is not toml"),
    ];
    for (name, text) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_ecommerce"))
            .args(["--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("error:"), "{name}: {stderr}");
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_ecommerce"))
        .args(["--config", "/nonexistent/config.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
