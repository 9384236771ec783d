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
#[derive(Debug, Default)]
struct Curl {
    method: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    cacert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    url: String,
    expected: u16,
}

fn parse_curl(line: &str) -> Curl {
    let (command, comment) = line.split_once("  # ").expect("an expected status");
    let mut curl = Curl {
        method: "GET".into(),
        expected: comment[..3].parse().expect("a status code"),
        ..Curl::default()
    };
    let mut words = shell_words(command).into_iter().skip(1);
    while let Some(word) = words.next() {
        let mut value = || words.next().expect("an argument");
        match word.as_str() {
            "-i" => {}
            "-X" => curl.method = value(),
            "-d" => curl.body = Some(value()),
            "--cacert" => curl.cacert = Some(value()),
            "--cert" => curl.cert = Some(value()),
            "--key" => curl.key = Some(value()),
            "-H" => {
                let header = value();
                let (name, value) = header.split_once(": ").expect("a header");
                curl.headers.push((name.to_owned(), value.to_owned()));
            }
            url => curl.url = url.to_owned(),
        }
    }
    curl
}

/// Replaces `$NAME` with the exported value.
fn expand(value: &str, exports: &HashMap<String, String>) -> String {
    let mut out = value.to_owned();
    for (name, exported) in exports {
        out = out.replace(&format!("${name}"), exported);
    }
    out
}

fn client_for(curl: &Curl) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().no_proxy();
    if let Some(ca) = &curl.cacert {
        let pem = std::fs::read(ca).expect("the printed CA file exists");
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()]);
    }
    if let (Some(cert), Some(key)) = (&curl.cert, &curl.key) {
        let mut pem = std::fs::read(cert).expect("the printed certificate exists");
        pem.extend(std::fs::read(key).expect("the printed key exists"));
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
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

fn exports_of(lines: &[String]) -> HashMap<String, String> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
        .collect()
}

/// What follows `label` on the line that holds it.
fn printed<'a>(lines: &'a [String], label: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.split_once(label).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no line with {label:?}"))
}

async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(response.headers()["content-type"], "application/json");
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

/// Runs every printed curl command and checks its status; returns how many
/// `/whoami` answers named the `order-processor` system account.
async fn replay_printed_commands(lines: &[String]) -> (usize, usize) {
    let exports = exports_of(lines);
    let curls: Vec<Curl> = lines
        .iter()
        .filter(|line| line.starts_with("curl "))
        .map(|line| parse_curl(line))
        .collect();

    let mut seen_system = 0;
    for curl in &curls {
        let method = reqwest::Method::from_bytes(curl.method.as_bytes()).unwrap();
        let mut request = client_for(curl).request(method, &curl.url);
        for (name, value) in &curl.headers {
            request = request.header(name, expand(value, &exports));
        }
        if let Some(body) = &curl.body {
            request = request.body(body.clone());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, curl.expected, "{curl:?}: {body}");
        if curl.url.ends_with("/whoami") && body.contains("\"kind\":\"system\"") {
            assert!(body.contains("\"subject\":\"order-processor\""), "{body}");
            seen_system += 1;
        }
    }
    (curls.len(), seen_system)
}

#[tokio::test]
async fn demo_mode_curl_commands_answer_as_printed() {
    let dir = std::env::temp_dir().join(format!("ecommerce-demo-{}", std::process::id()));
    let dir_arg = dir.to_str().unwrap();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--tls-listen",
        "127.0.0.1:0",
        "--demo-dir",
        dir_arg,
    ];
    let running = run(&args, "ready");
    assert_eq!(exports_of(&running.lines).len(), 5, "{:?}", running.lines);
    assert!(
        dir.join("ca.pem").is_file(),
        "the demo PKI is written where printed"
    );
    assert!(
        running.lines.iter().any(|l| l.contains("--cert")),
        "an mTLS command is printed"
    );

    let (commands, seen_system) = replay_printed_commands(&running.lines).await;
    assert!(commands >= 19, "{commands} commands");
    assert_eq!(
        seen_system, 2,
        "order-processor by API key and by certificate"
    );

    // What the printed commands do not show.
    let exports = exports_of(&running.lines);
    let base = running
        .lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("resource server : "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let bearer = |name: &str| format!("Bearer {}", exports[name]);
    let unknown = client
        .get(format!("{base}/nope"))
        .header("authorization", bearer("ALICE_TOKEN"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        404,
        "unknown routes are not authenticated"
    );
    let two = client
        .post(format!("{base}/reports"))
        .header("authorization", bearer("REPORTS_TOKEN"))
        .header("x-api-key", "junk")
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 400, "two credentials on the reports API");
    let oversized = client
        .get(format!("{base}/whoami"))
        .header(
            "authorization",
            format!("Bearer {}", "a".repeat(100 * 1024)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        oversized.status(),
        401,
        "a 100 KB token reaches the validator"
    );
    assert!(
        oversized.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );

    // Bad order bodies: axum's status, the example's fixed words.
    let huge = format!(r#"{{"item":"{}"}}"#, "a".repeat(20_000));
    for (body, status) in [
        ("not json", 400),
        (r#"{"item":"book","quantity":-1}"#, 422),
        (r#"{"item":"","quantity":1}"#, 422),
        (r#"{"item":"book","quantity":0}"#, 422),
        (r#"{"quantity":2}"#, 422),
        (huge.as_str(), 413),
    ] {
        let response = client
            .post(format!("{base}/orders"))
            .header("authorization", bearer("WRITER_TOKEN"))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body:.40}");
        let text = response.text().await.unwrap();
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["error"], "invalid_order", "{body:.40}: {text}");
        assert!(
            !text.contains("line 1") && !text.contains("Failed"),
            "{text}"
        );
    }
    let created = client
        .post(format!("{base}/orders"))
        .header("authorization", bearer("WRITER_TOKEN"))
        .header("content-type", "application/json")
        .body(r#"{"item":"pen","quantity":3}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let pending = client
        .get(format!("{base}/orders?status=pending"))
        .header("authorization", bearer("ALICE_TOKEN"))
        .send()
        .await
        .unwrap();
    let challenge = pending.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(r#"Bearer realm="ecommerce", error="insufficient_scope""#),
        "{challenge}"
    );

    // RFC 9728: each listener publishes itself as the resource; the demo's
    // challenges stay as they were (config mode can name the document).
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource");
    assert!(!challenge.contains("resource_metadata"), "{challenge}");
    let issuer = printed(&running.lines, "demo issuer     : ")
        .split(' ')
        .next()
        .unwrap();
    let document = get_json(&client, &metadata_url).await;
    assert_eq!(document["resource"], base.as_str(), "{document}");
    assert_eq!(
        document["authorization_servers"],
        serde_json::json!([issuer])
    );
    assert!(
        document["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("orders:process"))
    );
    assert_eq!(
        document["tls_client_certificate_bound_access_tokens"],
        serde_json::Value::Null
    );
    let tls_base = printed(&running.lines, "resource server : ")
        .split(" and ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let tls_client = client_for(&Curl {
        cacert: Some(dir.join("ca.pem").to_str().unwrap().to_owned()),
        ..Curl::default()
    });
    let tls_url = format!("{tls_base}/.well-known/oauth-protected-resource");
    let document = get_json(&tls_client, &tls_url).await;
    assert_eq!(document["resource"], tls_base.as_str(), "{document}");
    assert_eq!(document["tls_client_certificate_bound_access_tokens"], true);
    let refused = tls_client
        .get(format!("{tls_base}/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"Bearer realm="ecommerce""#
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("order-processor.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private keys are for the owner only");
    }

    // A second run reuses the PKI it wrote.
    drop(running);
    let again = run(&args, "ready");
    assert!(again.lines.iter().any(|line| line.contains("(reused:")));
}

#[tokio::test]
async fn demo_without_a_writable_directory_still_serves_plain_http() {
    let file = std::env::temp_dir().join(format!("ecommerce-file-{}", std::process::id()));
    std::fs::write(&file, "not a directory").unwrap();
    let dir = file.join("demo");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--demo-dir",
        dir.to_str().unwrap(),
    ];
    let running = run(&args, "ready");
    assert!(running.lines.iter().any(|l| l.contains("no TLS listener")));
    assert!(!running.lines.iter().any(|l| l.contains("--cert")));

    let (commands, seen_system) = replay_printed_commands(&running.lines).await;
    assert!(commands >= 15, "{commands} commands");
    assert_eq!(seen_system, 1, "order-processor by API key");
}

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ecommerce-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts the binary with `--config path`; the process and its base URL.
fn run_config(path: &std::path::Path) -> (Running, String) {
    let running = run(&["--config", path.to_str().unwrap()], "listening on ");
    let base = running
        .lines
        .last()
        .unwrap()
        .trim_start_matches("listening on ")
        .to_owned();
    (running, base)
}

// Multi-threaded: the test issuers must answer while this thread reads the
// child's output synchronously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mode_trusts_the_external_issuer() {
    let issuer = TestIssuer::start().await.unwrap();
    let path = write_config(
        "config",
        &format!(
            "listen = \"127.0.0.1:0\"\n[jwt]\nissuer = \"{}\"\naudiences = [\"orders-api\"]\njwks_uri = \"{}\"\n[reports]\naudience = \"reports-x\"\n[resource]\nidentifier = \"https://orders.example/api\"\nname = \"Orders\"\n",
            issuer.issuer(),
            issuer.jwks_uri()
        ),
    );

    let (_running, base) = run_config(&path);
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
    let refused = get("/orders", foreign).await.unwrap();
    assert_eq!(refused.status(), 401);

    // [resource]: the configured identifier, whichever address serves it.
    let metadata_url = "https://orders.example/.well-known/oauth-protected-resource/api";
    assert!(
        refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .ends_with(&format!(r#"resource_metadata="{metadata_url}""#)),
        "{:?}",
        refused.headers()
    );
    let document = get_json(
        &client,
        &format!("{base}/.well-known/oauth-protected-resource/api"),
    )
    .await;
    assert_eq!(
        document,
        serde_json::json!({
            "resource": "https://orders.example/api",
            "authorization_servers": [issuer.issuer()],
            "scopes_supported": ["orders:read", "orders:write", "orders:process", "reports:generate"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Orders",
        })
    );
    assert_eq!(issuer.jwks_requests(), 1, "keys loaded once at start-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mode_with_discovery_and_several_issuers() {
    let discovered = TestIssuer::start().await.unwrap();
    let second = TestIssuer::start().await.unwrap();
    let untrusted = TestIssuer::start().await.unwrap();
    let path = write_config(
        "issuers",
        &format!(
            "listen = \"127.0.0.1:0\"\n[jwt]\nissuer = \"{}\"\naudiences = [\"orders-api\"]\n[[jwt.issuers]]\nissuer = \"{}\"\naudiences = [\"orders-api\"]\njwks_uri = \"{}\"\nalgorithms = [\"ES256\"]\n",
            discovered.issuer(),
            second.issuer(),
            second.jwks_uri()
        ),
    );

    let (_running, base) = run_config(&path);
    let client = reqwest::Client::new();
    let status = |token: String| {
        let request = client
            .get(format!("{base}/orders"))
            .header("authorization", format!("Bearer {token}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };

    let ready = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
    assert!(body.to_string().contains(discovered.issuer()), "{body}");

    assert_eq!(
        status(discovered.token().sign()).await,
        200,
        "issuer found by discovery"
    );
    let es256 = second.token().signed_by(second.key("ec-1").unwrap()).sign();
    assert_eq!(status(es256).await, 200, "second issuer");
    assert_eq!(
        status(second.token().sign()).await,
        401,
        "RS256 not allowed for it"
    );
    assert_eq!(
        status(untrusted.token().sign()).await,
        401,
        "untrusted issuer"
    );
    assert_eq!(
        untrusted.jwks_requests(),
        0,
        "no request to an untrusted issuer"
    );
    assert_eq!(discovered.jwks_requests(), 1);

    // Without [resource] nothing is published or named.
    let none = client
        .get(format!("{base}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    let bare = client.get(format!("{base}/whoami")).send().await.unwrap();
    assert_eq!(
        bare.headers()["www-authenticate"],
        r#"Bearer realm="ecommerce""#
    );
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
        (
            "http-resource.toml",
            "[jwt]\nissuer = \"i\"\naudiences = [\"a\"]\njwks_uri = \"http://127.0.0.1:1/\"\n[resource]\nidentifier = \"http://orders.example\"\n",
        ),
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
