//! `warden audit`: verify the ledger (an exported bundle offline, or the live store) and export
//! bundles. The checks themselves are `warden_ledger::verify::Audit` (fed from a store by
//! `warden_ledger::live::verify`, as the console's "Verify now" is); this is the plumbing:
//! reading, trust decisions the auditor makes on the command line, progress and output.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::json;
use warden_core::Clock;
use warden_ledger::bundle::{
    write_entry_line, write_pruned_entry_line, BundleEntry, BundleError, BundleHeader,
    BundleReader, BundleWriter,
};
use warden_ledger::{Audit, Hash, Problem, Signer, Verified, Verifier};
use warden_store::Store;

use crate::cli::{ClientArgs, Output};
use crate::client::Client;

/// Entries asked of the store or the API at once.
const PAGE: u32 = 10_000;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check that the ledger is intact and name the first bad position if it is not.
    ///
    /// Finds edited entries, deleted entries, reordered entries, forged checkpoints, entries
    /// altered together with their hashes, and a ledger cut short. Prints
    /// `ledger verified: N entries, M checkpoints, root <hex> at size N` and exits 0, or
    /// `ledger verification FAILED at position P: <what is wrong>` and exits 1.
    ///
    /// Two sources:
    ///
    /// - `--bundle FILE`: a bundle made by `warden audit export`. Needs no server and no
    ///   database: give the file to an auditor.
    ///
    /// - otherwise the live store: the SQLite database in --data-dir, or the PostgreSQL database
    ///   of --database-url. (The one command that reads the database directly, so that it
    ///   does not have to trust the server it checks.)
    ///
    /// What you trust: the signing key. Pass --key with the ledger's verifier key obtained
    /// independently of what you are checking (saved when the system was known to be good,
    /// e.g. from `GET /v1/ledger/key`); a bundle's own key proves only that the bundle agrees
    /// with itself. Checkpoints saved outside Warden (--checkpoint) also catch a ledger cut
    /// short after its last checkpoint, or rewritten and re-signed by someone holding the key.
    ///
    /// Examples:
    ///
    ///   warden audit verify --bundle ledger.jsonl --key ledger.pub --checkpoint cp-june.txt
    ///
    ///   warden audit verify --data-dir /var/lib/warden
    #[command(verbatim_doc_comment)]
    Verify(VerifyArgs),
    /// Write the whole ledger to one bundle file for an auditor, through the REST API.
    ///
    /// The bundle (JSON Lines, described in docs/LEDGER.md) holds every entry exactly as
    /// hashed, every signed checkpoint and the verifier key. It is written to FILE.tmp and
    /// renamed to FILE when complete. Verify it anywhere with
    /// `warden audit verify --bundle FILE --key KEY`. Needs an admin token.
    Export(ExportArgs),
    /// Print an inclusion proof for one entry against the latest signed checkpoint (or a given
    /// size), checked before it is printed, so it can be handed to anyone holding the key.
    Proof(ProofArgs),
    /// Print the keyed hash that events store in place of a sensitive value, to search for it
    /// (e.g. `warden events -o json | grep <hash>`).
    Hash(HashArgs),
}

#[derive(Debug, Args)]
pub struct ProofArgs {
    /// The entry's position.
    #[arg(long)]
    pub seq: u64,
    /// Tree size to prove against (default: the latest checkpoint's).
    #[arg(long)]
    pub size: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct HashArgs {
    /// The sensitive value.
    pub value: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify this bundle file (from `warden audit export`) instead of a live store.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// The verifier key to trust: a key string `<name>+<id>+<key>` or a file holding one.
    /// Default: for a bundle, the key in its header (with a warning); for a store, the public
    /// half of <data-dir>/ledger-signing-key.
    #[arg(long, value_name = "KEY|FILE")]
    pub key: Option<String>,
    /// A signed checkpoint saved outside Warden (a file holding the note, e.g. from
    /// `GET /v1/ledger/checkpoint`), checked too. Repeatable.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
    /// Data directory of the server whose store to verify (its warden.db and
    /// ledger-signing-key).
    #[arg(
        long,
        env = "WARDEN_DATA_DIR",
        value_name = "DIR",
        default_value = "warden-data"
    )]
    pub data_dir: PathBuf,
    /// Verify this PostgreSQL database instead of the data directory's SQLite file.
    #[arg(long, env = "WARDEN_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Output format: text for people, or one JSON object
    /// ({"ok":true,"entries","checkpoints","size","root"} or
    /// {"ok":false,"problem":{"kind","position","message"}}).
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The bundle file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Verification failed and the verdict was printed: exit 1 without printing more.
#[derive(Debug)]
pub struct VerificationFailed;

impl std::fmt::Display for VerificationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ledger verification failed")
    }
}

impl std::error::Error for VerificationFailed {}

/// Runs one `warden audit` command.
pub async fn run(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Verify(args) => {
            let output = args.output;
            let verdict = match &args.bundle {
                Some(path) => verify_bundle(path, &args)?,
                None => verify_store(&args).await?,
            };
            report(output, verdict)
        }
        AuditCommand::Export(args) => export(args).await,
        AuditCommand::Proof(args) => proof(args).await,
        AuditCommand::Hash(args) => {
            let answer: serde_json::Value = Client::new(&args.client)?
                .post("/v1/ledger/hash", &json!({ "value": args.value }))
                .await?;
            println!("{}", answer["hash"].as_str().unwrap_or_default());
            Ok(())
        }
    }
}

/// Fetches an inclusion proof and checks it against the signed checkpoint before printing it.
async fn proof(args: ProofArgs) -> Result<()> {
    let client = Client::new(&args.client)?;
    let key = client.get_text("/v1/ledger/key").await?;
    let verifier = Verifier::parse(key.trim()).context("the server's ledger key is malformed")?;
    let size = args.size.map(|s| format!("&size={s}")).unwrap_or_default();
    let answer: serde_json::Value = client
        .get(&format!(
            "/v1/ledger/proof/inclusion?seq={}{size}",
            args.seq
        ))
        .await?;
    let proof: warden_ledger::InclusionProof =
        serde_json::from_value(answer["proof"].clone()).context("malformed proof")?;
    let leaf: Hash = answer["leaf_hash"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .context("malformed leaf hash")?;
    let note = answer["checkpoint"]
        .as_str()
        .context("no signed checkpoint at that size; pass a --size that has one")?;
    let checkpoint = warden_ledger::Checkpoint::open(note, &verifier)
        .context("the checkpoint does not verify")?;
    proof
        .verify(&leaf, &checkpoint.root)
        .context("the proof does not verify against the signed checkpoint")?;
    match args.client.output {
        Output::Json | Output::Ocsf => println!(
            "{}",
            json!({ "proof": proof, "leaf_hash": leaf.to_hex(), "checkpoint": note, "key": verifier.to_key_string() })
        ),
        Output::Table => {
            println!(
                "entry {} is in the ledger of size {} (verified)",
                args.seq, proof.tree_size
            );
            println!("leaf hash: {}", leaf.to_hex());
            println!("audit path:");
            for h in &proof.hashes {
                println!("  {h}");
            }
            println!("checkpoint:\n{note}");
        }
    }
    Ok(())
}

/// The outcome of a verification: the audit's, or a bundle whose size disagrees with its header.
enum Verdict {
    Verified(Verified),
    Problem(Problem),
    Incomplete { header: u64, found: u64 },
}

fn report(output: Output, verdict: Verdict) -> Result<()> {
    let (kind, position, message) = match verdict {
        Verdict::Verified(v) => {
            match output {
                Output::Json | Output::Ocsf => println!(
                    "{}",
                    json!({
                        "ok": true,
                        "entries": v.entries,
                        "checkpoints": v.checkpoints,
                        "external_checkpoints": v.external_checkpoints,
                        "size": v.size,
                        "root": v.root.to_hex(),
                        "checkpointed_size": v.checkpointed_size,
                        "pruned": v.pruned,
                    })
                ),
                Output::Table => {
                    println!("ledger verified: {v}");
                    if v.pruned > 0 {
                        eprintln!(
                            "note: {} had their bodies pruned by retention; their leaf hashes are \
                             verified by the checkpoints covering them",
                            plural(v.pruned, "entry", "entries")
                        );
                    }
                    if v.checkpoints == 0 && v.size > 0 {
                        eprintln!(
                            "warning: no signed checkpoint: each entry matches its recorded hash, \
                             but nothing signed vouches for the ledger as a whole"
                        );
                    } else if v.checkpointed_size < v.size {
                        eprintln!(
                            "note: entries {} to {} are newer than the last checkpoint (size {}) \
                             and are checked against their recorded hashes only",
                            v.checkpointed_size,
                            v.size - 1,
                            v.checkpointed_size
                        );
                    }
                }
            }
            return Ok(());
        }
        Verdict::Problem(p) => (p.kind(), p.position(), p.to_string()),
        Verdict::Incomplete { header, found } => (
            "bundle_incomplete",
            found.min(header),
            format!(
                "the bundle holds {found} entries but its header says {header}: the file was cut \
                 short or had lines removed or added"
            ),
        ),
    };
    match output {
        Output::Json | Output::Ocsf => println!(
            "{}",
            json!({
                "ok": false,
                "problem": { "kind": kind, "position": position, "message": message },
            })
        ),
        Output::Table => println!("ledger verification FAILED at position {position}: {message}"),
    }
    Err(VerificationFailed.into())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Reads `--key`: a verifier key string, or a file holding one (or holding the signing key,
/// whose public half is used).
fn load_key(arg: &str) -> Result<Verifier> {
    let looks_secret = arg.trim_start().starts_with("PRIVATE+KEY+");
    if let Ok(v) = Verifier::parse(arg.trim()) {
        return Ok(v);
    }
    if looks_secret {
        bail!(
            "--key was given a private signing key; give the public verifier key \
             (<name>+<id>+<key>, from `GET /v1/ledger/key`) instead"
        );
    }
    let path = Path::new(arg);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if arg.contains('+') && !path.exists() => {
            let reason = Verifier::parse(arg.trim())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| e.to_string());
            bail!("--key is not a valid verifier key string: {reason}")
        }
        Err(e) => {
            bail!("--key {arg}: not a verifier key string, and cannot read it as a file: {e}")
        }
    };
    key_from_text(text.trim()).with_context(|| format!("--key {}", path.display()))
}

/// A verifier from a key file's contents: a verifier key, or a signer key's public half.
fn key_from_text(text: &str) -> Result<Verifier> {
    if text.starts_with("PRIVATE+KEY+") {
        return Ok(Signer::parse(text)
            .context("not a valid signing key")?
            .verifier());
    }
    Verifier::parse(text).context("not a valid verifier key string")
}

/// Reads the `--checkpoint` files.
fn load_external(paths: &[PathBuf]) -> Result<Vec<String>> {
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read checkpoint file {}", p.display()))
        })
        .collect()
}

fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            "{msg} [{bar:30}] {human_pos}/{human_len} entries, {eta} left",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} {msg} {human_pos} entries",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn verify_bundle(path: &Path, args: &VerifyArgs) -> Result<Verdict> {
    let file =
        File::open(path).with_context(|| format!("cannot open bundle {}", path.display()))?;
    let mut reader = BundleReader::open(BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("bundle {}", path.display()))?;
    let header = reader.header().clone();
    let key = match &args.key {
        Some(k) => {
            let key = load_key(k)?;
            if header.key != key.to_key_string() {
                eprintln!(
                    "note: the bundle's header names the key {}; verifying with the key you \
                     gave, {key}",
                    header.key
                );
            }
            key
        }
        None => {
            let key = Verifier::parse(&header.key)
                .with_context(|| format!("bundle {}: the header's key", path.display()))?;
            eprintln!(
                "warning: trusting the key in the bundle itself ({key}). A forger would put \
                 their own key there: pass --key with the ledger's verifier key obtained \
                 independently (e.g. saved from GET /v1/ledger/key when the system was known to \
                 be good)."
            );
            key
        }
    };
    let external = load_external(&args.checkpoints)?;
    let mut audit = Audit::new(&key, reader.checkpoints(), &external);

    // Reading and parsing lines runs on its own thread, auditing on this one.
    let (tx, rx) = mpsc::sync_channel::<Result<Vec<BundleEntry>, BundleError>>(4);
    let parser = std::thread::spawn(move || {
        loop {
            let mut batch = Vec::with_capacity(1024);
            let mut failed = None;
            while batch.len() < 1024 {
                match reader.next_entry() {
                    Ok(Some(e)) => batch.push(e),
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let last = batch.len() < 1024;
            if !batch.is_empty() && tx.send(Ok(batch)).is_err() {
                break;
            }
            if let Some(e) = failed {
                let _ = tx.send(Err(e));
                break;
            }
            if last {
                break;
            }
        }
        reader.entries_read()
    });
    let bar = progress(Some(header.size), "verifying");
    let mut failure = None;
    for batch in &rx {
        match batch {
            Ok(batch) => {
                for e in &batch {
                    if e.pruned {
                        audit.push_pruned(e.seq, e.leaf_hash);
                    } else {
                        audit.push(e.seq, e.body.as_bytes(), Some(e.leaf_hash));
                    }
                }
                bar.inc(batch.len() as u64);
                if audit.is_decided() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    let read = parser
        .join()
        .map_err(|_| anyhow::anyhow!("the bundle reader thread panicked"))?;
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e).with_context(|| format!("bundle {}", path.display()));
    }
    Ok(match audit.finish() {
        Err(p) => Verdict::Problem(p),
        Ok(_) if read != header.size => Verdict::Incomplete {
            header: header.size,
            found: read,
        },
        Ok(v) => Verdict::Verified(v),
    })
}

async fn verify_store(args: &VerifyArgs) -> Result<Verdict> {
    let key = match &args.key {
        Some(k) => load_key(k)?,
        None => {
            let path = args.data_dir.join("ledger-signing-key");
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "no key to trust: cannot read {} (pass --key with the ledger's verifier key, \
                     or --data-dir of the server)",
                    path.display()
                )
            })?;
            key_from_text(text.trim()).with_context(|| path.display().to_string())?
        }
    };
    let store: Arc<dyn Store> = match &args.database_url {
        Some(url) => Arc::new(
            warden_store::PostgresStore::connect(url, 2)
                .await
                .context("cannot open the PostgreSQL store")?,
        ),
        None => {
            let path = args.data_dir.join("warden.db");
            if !path.is_file() {
                bail!(
                    "no ledger at {}: pass --data-dir of a Warden server, --database-url, or \
                     --bundle",
                    path.display()
                );
            }
            Arc::new(
                warden_store::SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        }
    };
    let external = load_external(&args.checkpoints)?;
    let mut bar = None;
    let verdict = warden_ledger::live::verify(store, &key, &external, |p| {
        bar.get_or_insert_with(|| progress(Some(p.total), "verifying"))
            .set_position(p.checked);
    })
    .await
    .context("reading the ledger")?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(match verdict {
        Ok(v) => Verdict::Verified(v),
        Err(p) => Verdict::Problem(p),
    })
}

#[derive(Deserialize)]
struct CheckpointView {
    size: u64,
    note: String,
}

#[derive(Deserialize)]
struct EntryView {
    seq: u64,
    body: String,
    leaf_hash: Hash,
    #[serde(default)]
    pruned: bool,
}

#[derive(Deserialize)]
struct EntryPage {
    entries: Vec<EntryView>,
    next: Option<u64>,
}

async fn export(args: ExportArgs) -> Result<()> {
    let client = Client::new(&args.client)?;
    let key_text = client
        .get_text("/v1/ledger/key")
        .await
        .context("fetching the ledger's key")?;
    let key = Verifier::parse(key_text.trim()).context("the server's ledger key")?;
    let mut checkpoints: Vec<CheckpointView> = client
        .get("/v1/ledger/checkpoints")
        .await
        .context("fetching the checkpoints")?;
    checkpoints.sort_by_key(|c| c.size);

    // The header states the entry count, which is known only at the end: entries go to a
    // side file first, then header, checkpoints and entries to FILE.tmp, renamed to FILE.
    let tmp = sibling(&args.out, ".tmp");
    let spool = sibling(&args.out, ".tmp.entries");
    let result = async {
        let count = spool_entries(&client, &spool).await?;
        let exported_at = warden_core::SystemClock.now().to_string();
        let header = BundleHeader::new(&key, count, exported_at);
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut w = BundleWriter::new(BufWriter::with_capacity(1 << 20, file), &header)?;
        for c in &checkpoints {
            w.write_checkpoint(&c.note)?;
        }
        let mut out = w.finish()?;
        let mut entries = File::open(&spool)?;
        std::io::copy(&mut entries, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &args.out).with_context(|| {
            format!("cannot rename {} to {}", tmp.display(), args.out.display())
        })?;
        anyhow::Ok(count)
    }
    .await;
    let _ = std::fs::remove_file(&spool);
    let count = match result {
        Ok(count) => count,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("exporting to {}", args.out.display()));
        }
    };
    match args.client.output {
        Output::Json | Output::Ocsf => println!(
            "{}",
            json!({
                "file": args.out.display().to_string(),
                "entries": count,
                "checkpoints": checkpoints.len(),
                "key": key.to_key_string(),
            })
        ),
        Output::Table => {
            println!(
                "exported {} and {} to {}",
                plural(count, "entry", "entries"),
                plural(checkpoints.len() as u64, "checkpoint", "checkpoints"),
                args.out.display()
            );
            eprintln!(
                "Verify it with: warden audit verify --bundle {} --key {key}",
                args.out.display()
            );
        }
    }
    Ok(())
}

/// Writes every entry line to `spool`, page by page; returns how many.
async fn spool_entries(client: &Client, spool: &Path) -> Result<u64> {
    let file = File::create(spool).with_context(|| format!("cannot create {}", spool.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let bar = progress(None, "exporting");
    let mut from = 0u64;
    let mut count = 0u64;
    loop {
        let page: EntryPage = client
            .get(&format!("/v1/ledger/entries?from={from}&limit={PAGE}"))
            .await
            .with_context(|| format!("fetching entries from {from}"))?;
        for e in &page.entries {
            if e.pruned {
                write_pruned_entry_line(&mut out, e.seq, &e.leaf_hash)?;
            } else {
                write_entry_line(&mut out, e.seq, e.body.as_bytes(), &e.leaf_hash)?;
            }
        }
        count += page.entries.len() as u64;
        bar.inc(page.entries.len() as u64);
        match page.next {
            Some(n) if n > from && !page.entries.is_empty() => from = n,
            _ => break,
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(count)
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}
