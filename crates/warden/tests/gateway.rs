//! The HTTP gateway through the real binary, as an operator sets it up with the CLI: a target
//! whose upstream secret is read from a file, a grant, and a program calling through the gateway
//! with its key and with an OAuth token. Afterwards, neither the upstream secret nor the key's
//! secret appears in any log line (at debug level) or any file of the data directory.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::Value;

/// A minimal HTTP/1.1 upstream on a thread: answers every request with 200 and the request's
/// header lines as the body, and remembers them.
fn upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push(line.trim_end().to_owned());
                    }
                    let body = head.join("\n");
                    s.lock().unwrap().push(body.clone());
                    let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{body}", body.len());
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn gateway_forwards_with_injected_secrets_that_never_leak() {
    let dir = tempdir();
    let cwd = dir.path();
    let (upstream_url, seen) = upstream();
    let server = Server::start(
        cwd,
        &["--api-addr", "127.0.0.1:0"],
        &[("WARDEN_LOG", "debug")],
    );
    let gateway = addresses(cwd)["http"].as_str().unwrap().to_owned();

    let upstream_secret = format!("upstream-{}", uuid_like());
    std::fs::write(
        cwd.join("headers"),
        format!("X-Upstream-Key: {upstream_secret}\n"),
    )
    .unwrap();
    cli(
        cwd,
        &[
            "target",
            "add",
            "orders",
            "--upstream",
            &upstream_url,
            "--inject-header-file",
            "headers",
        ],
        &[],
    )
    .ok();
    cli(
        cwd,
        &[
            "account",
            "create",
            "billing-etl",
            "--owner",
            "ada@example.com",
            "--purpose",
            "invoices",
        ],
        &[],
    )
    .ok();
    let issued = cli(cwd, &["key", "create", "billing-etl", "-o", "json"], &[]).json();
    let key = str_field(&issued, "/secret").to_owned();
    let key_id = str_field(&issued, "/key_id").to_owned();
    cli(
        cwd,
        &[
            "grant",
            "add",
            "billing-etl",
            "orders",
            "--allow",
            "GET /v1/orders/*",
        ],
        &[],
    )
    .ok();
    let targets = cli(cwd, &["target", "list", "-o", "json"], &[]);
    assert!(
        !targets.stdout.contains(&upstream_secret),
        "the API showed the upstream secret"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let (allowed, denied, token_status, with_token) = rt.block_on(async {
        let allowed = http
            .get(format!("http://{gateway}/orders/v1/orders/42"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status();
        let denied = http
            .delete(format!("http://{gateway}/orders/v1/orders/42"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status();
        let token: Value = http
            .post(format!("{}/oauth/token", server.url()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", key_id.as_str()),
                ("client_secret", key.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = token["access_token"].as_str().unwrap().to_owned();
        let token_status = http
            .get(format!("http://{gateway}/orders/v1/orders/7"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status();
        (allowed, denied, token_status, access)
    });
    assert_eq!(allowed, 200);
    assert_eq!(denied, 403);
    assert_eq!(token_status, 200);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen.len(),
            2,
            "only the allowed requests reach the upstream"
        );
        for request in seen.iter() {
            assert!(
                request.contains(&format!("x-upstream-key: {upstream_secret}")),
                "{request}"
            );
            assert!(
                !request.to_lowercase().contains("authorization"),
                "{request}"
            );
        }
    }
    let events = cli(cwd, &["events", "--category", "http", "-o", "json"], &[]).json_lines();
    let auth: Vec<&str> = events.iter().map(|e| str_field(e, "/actor/auth")).collect();
    assert_eq!(auth, ["api_key", "api_key", "token"]);

    let stopped = server.stop();
    let secret = secret_part(&key, &key_id).to_owned();
    let mut haystacks = vec![
        ("server stdout".to_owned(), stopped.stdout_bytes()),
        ("server stderr".to_owned(), stopped.stderr_bytes()),
    ];
    assert!(
        !haystacks[1].1.is_empty(),
        "debug logging produced nothing to search"
    );
    for file in files_under(&cwd.join("warden-data")) {
        haystacks.push((file.display().to_string(), std::fs::read(&file).unwrap()));
    }
    for (what, bytes) in &haystacks {
        for needle in [
            upstream_secret.as_str(),
            secret.as_str(),
            with_token.as_str(),
        ] {
            assert!(!contains(bytes, needle), "{what} contains a secret");
        }
    }
}

/// 32 hex digits from the clock and the process, unique enough to search for.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 64))
}
