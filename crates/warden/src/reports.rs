//! `warden report access-review|least-privilege|compliance`: asks the server for a report and
//! writes it to a file, with a spinner while the server analyses and renders.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ClientArgs;
use crate::client::Client;
use crate::commands::path;

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Every account, its owner, grants, keys and findings, and the review's decisions.
    AccessReview,
    /// Unused grants, grants broader than their use, wildcard grants.
    LeastPrivilege,
    /// Every finding and the evidence mapping to SOC 2, ISO 27001, PCI DSS, HIPAA and GDPR.
    Compliance,
}

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One self-contained HTML file (inline CSS and SVG charts), printable to PDF.
    Html,
    /// JSON, as docs/schemas/report.schema.json describes it.
    Json,
    /// CSV (RFC 4180): one row per account (access review) or per finding.
    Csv,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(value_enum)]
    pub kind: Kind,
    /// How it is written.
    #[arg(long, value_enum, default_value_t = Format::Html)]
    pub format: Format,
    /// The file to write (mode 0644; replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Usage considered: this long back.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub window: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn value_name<T: ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// The checkpoint size a report states: JSON `checkpoint.size`, the first CSV record's first
/// field, or the HTML's `warden-checkpoint-size` meta tag.
fn checkpoint_size(format: Format, body: &str) -> Option<u64> {
    match format {
        Format::Json => {
            serde_json::from_str::<serde_json::Value>(body).ok()?["checkpoint"]["size"].as_u64()
        }
        Format::Csv => body.lines().nth(1)?.split(',').next()?.parse().ok(),
        Format::Html => {
            let marker = "<meta name=\"warden-checkpoint-size\" content=\"";
            let rest = &body[body.find(marker)? + marker.len()..];
            rest[..rest.find('"')?].parse().ok()
        }
    }
}

/// Runs `warden report`.
pub async fn report(args: ReportArgs) -> Result<()> {
    let client = Client::new(&args.client)?;
    let kind = value_name(args.kind);
    let format = value_name(args.format);
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(format!(
        "Warden is analysing and writing the {kind} report…"
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let body = client
        .get_text(&format!(
            "/v1/reports/{kind}?format={format}&window={}",
            path(&args.window)
        ))
        .await;
    spinner.finish_and_clear();
    let body = body?;
    write_file(&args.out, body.as_bytes())?;
    match checkpoint_size(args.format, &body) {
        Some(size) => println!(
            "wrote {} ({} bytes), computed from ledger checkpoint size {size}",
            args.out.display(),
            body.len()
        ),
        None => println!(
            "wrote {} ({} bytes); no ledger checkpoint was signed yet",
            args.out.display(),
            body.len()
        ),
    }
    Ok(())
}

fn write_file(out: &PathBuf, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    let mut file = options
        .open(out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot set the mode of {}", out.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkpoint_size_is_read_from_every_format() {
        assert_eq!(
            checkpoint_size(Format::Json, r#"{"checkpoint":{"size":42}}"#),
            Some(42)
        );
        assert_eq!(
            checkpoint_size(Format::Json, r#"{"checkpoint":null}"#),
            None
        );
        assert_eq!(
            checkpoint_size(Format::Csv, "checkpoint_size,x\r\n42,abc\r\n"),
            Some(42)
        );
        assert_eq!(
            checkpoint_size(Format::Csv, "checkpoint_size,x\r\n,\r\n"),
            None
        );
        assert_eq!(
            checkpoint_size(
                Format::Html,
                "<head><meta name=\"warden-checkpoint-size\" content=\"7\">"
            ),
            Some(7)
        );
        assert_eq!(value_name(Kind::AccessReview), "access-review");
    }
}
