//! The harness shared by the binary's end-to-end tests: `warden` processes with a clean
//! environment, output collected in the background, killed on drop, and polling waits with
//! generous timeouts (never timing assertions).
// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any one wait may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// How often waits poll.
pub const POLL: Duration = Duration::from_millis(25);

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A `warden` command with a clean environment: no inherited `WARDEN_*` variable (a developer's
/// WARDEN_URL, WARDEN_TOKEN or the test suite's WARDEN_TEST_PG must not leak in), run in `cwd`.
pub fn warden(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.current_dir(cwd).args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WARDEN_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    // Tests run servers side by side: the gateway must not default to the fixed port 8471.
    cmd.env("WARDEN_HTTP_ADDR", "127.0.0.1:0");
    cmd.env("WARDEN_POSTGRES_ADDR", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running child process whose stdout and stderr are collected in the background. Dropping it
/// kills the process.
pub struct Proc {
    pub child: Child,
    pub what: String,
    pub stdout: Arc<Mutex<Vec<u8>>>,
    pub stderr: Arc<Mutex<Vec<u8>>>,
    pub readers: Vec<JoinHandle<()>>,
    pub status: Option<ExitStatus>,
}

pub fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Self {
        let what = format!(
            "warden {}",
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `{what}`: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Self {
            child,
            what,
            stdout,
            stderr,
            readers,
            status: None,
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    pub fn stdout_bytes(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_bytes(&self) -> Vec<u8> {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything the process printed, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "`{}`\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.stdout(),
            self.stderr()
        )
    }

    /// The exit status if the process has exited (and its output has been read to the end).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.status = Some(status);
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
            }
        }
        self.status
    }

    /// Waits for the process to exit, or fails the test after `timeout` (killing it).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "did not exit within {timeout:?} (killed it):\n{}",
                    self.report()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends `kill -<name>` to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed: {status}");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a finished command did.
pub struct Outcome {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts exit code 0 and returns stdout.
    pub fn ok(&self) -> &str {
        assert!(
            self.status.success(),
            "expected success: {}",
            self.describe()
        );
        &self.stdout
    }

    /// Asserts exit code `code`.
    pub fn fails_with(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit code {code}: {}",
            self.describe()
        );
        self
    }

    /// Asserts success and parses stdout as one JSON document.
    pub fn json(&self) -> Value {
        let out = self.ok();
        serde_json::from_str(out)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.describe()))
    }

    /// Asserts success and parses every stdout line as a JSON object.
    pub fn json_lines(&self) -> Vec<Value> {
        self.ok()
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!("line {line:?} is not JSON ({e}): {}", self.describe())
                });
                assert!(v.is_object(), "line {line:?} is not an object");
                v
            })
            .collect()
    }
}

/// Runs a command to completion (at most [`TIMEOUT`]).
pub fn run(cmd: Command) -> Outcome {
    run_within(cmd, TIMEOUT)
}

/// Runs a command to completion, failing the test if it takes longer than `timeout`.
pub fn run_within(cmd: Command, timeout: Duration) -> Outcome {
    let mut proc = Proc::spawn(cmd);
    let status = proc.wait(timeout);
    Outcome {
        what: proc.what.clone(),
        status,
        stdout: proc.stdout(),
        stderr: proc.stderr(),
    }
}

/// Runs `warden ARGS` in `cwd` with `env`.
pub fn cli(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    run(warden(cwd, args, env))
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

/// A running `warden serve`; killed on drop.
pub struct Server {
    pub proc: Proc,
    /// `host:port` of the REST API, from the "API:" line.
    pub addr: String,
}

impl Server {
    /// Starts `warden serve ARGS` in `cwd` and waits until it prints its API address.
    pub fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let mut proc = Proc::spawn(warden(cwd, &all, env));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(addr) = api_addr(&proc.stdout()) {
                return Self { proc, addr };
            }
            if let Some(status) = proc.try_status() {
                panic!(
                    "the server exited ({status}) before it was ready:\n{}",
                    proc.report()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "the server did not print its API address within {TIMEOUT:?}:\n{}",
                    proc.report()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// `http://host:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until stdout contains `text` (the startup banner is printed line by line).
    pub fn wait_stdout(&mut self, text: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let out = self.proc.stdout();
            if out.contains(text) {
                return out;
            }
            if self.proc.try_status().is_some() || Instant::now() > deadline {
                panic!("stdout never contained {text:?}:\n{}", self.proc.report());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Kills the server with SIGKILL (no chance to clean up) and waits until it is gone.
    pub fn kill9(mut self) {
        self.proc.signal("KILL");
        self.proc.wait(TIMEOUT);
    }

    /// Stops the server with SIGTERM and waits for it to exit; asserts it exited cleanly.
    pub fn stop(mut self) -> Proc {
        self.proc.terminate();
        let status = self.proc.wait(TIMEOUT);
        assert!(
            status.success(),
            "the server did not exit cleanly on SIGTERM ({status}):\n{}",
            self.proc.report()
        );
        self.proc
    }
}

/// The address in the banner line `  API:      http://127.0.0.1:PORT  (OpenAPI…)`.
pub fn api_addr(stdout: &str) -> Option<String> {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("API:"))?;
    let rest = line.split("http://").nth(1)?;
    let addr = rest.split_whitespace().next()?;
    Some(addr.to_owned())
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("warden-cli-test")
        .tempdir()
        .expect("create a temporary directory")
}

#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let entry = entry.unwrap();
            let ty = entry.file_type().unwrap();
            if ty.is_dir() {
                todo.push(entry.path());
            } else if ty.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn str_field<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

/// The secret part of `wdn_<id>_<secret>`, checked to be 64 lowercase hex digits.
pub fn secret_part<'a>(key: &'a str, key_id: &str) -> &'a str {
    let secret = key
        .strip_prefix(&format!("wdn_{key_id}_"))
        .unwrap_or_else(|| panic!("{key:?} is not wdn_{key_id}_<secret>"));
    assert!(
        secret.len() == 64
            && secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "the secret part of {key:?} is not 64 hex digits"
    );
    secret
}

/// The addresses a server in `cwd` bound (`warden-data/addresses.json`).
pub fn addresses(cwd: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(cwd.join("warden-data/addresses.json")).unwrap())
        .unwrap()
}
