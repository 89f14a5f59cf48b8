//! RFC 5424 syslog over UDP (RFC 5426, one datagram per message) or TCP (RFC 6587 octet
//! counting: `LEN SP MSG`). A TCP sink keeps one connection, reconnecting when it is found
//! closed or a write fails.
//!
//! A message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID alert [warden@32473 …] SUMMARY`, with PRI
//! = facility × 8 + the syslog severity of the alert (critical → 2, high → 3, medium → 4,
//! low → 5, info → 6).

use std::io;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;
use warden_core::{Alert, Clock, Severity, SystemClock, Timestamp};

use crate::config::{Facility, Transport};
use crate::error::Failure;

/// The structured-data id of Warden's parameters. 32473 is the private enterprise number that
/// RFC 5612 reserves for documentation and examples.
pub const SD_ID: &str = "warden@32473";

/// The parts of a message header fixed when the sink is built.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) facility: Facility,
    pub(crate) hostname: String,
    pub(crate) app_name: String,
    pub(crate) procid: u32,
}

/// The syslog severity of an alert severity.
fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// The RFC 5424 message for `alert`, stamped `time`.
pub(crate) fn format(header: &Header, alert: &Alert, time: Timestamp) -> String {
    let pri = u16::from(header.facility.code()) * 8 + u16::from(syslog_severity(alert.severity));
    let id = alert.id.to_string();
    let count = alert.count.to_string();
    let params = [
        ("alert", Some(id.as_str())),
        ("detector", Some(alert.detector.as_str())),
        ("severity", Some(alert.severity.as_str())),
        ("status", Some(alert.status.as_str())),
        ("count", Some(count.as_str())),
        ("account", alert.account.as_deref()),
        ("target", alert.target.as_deref()),
    ];
    let mut sd = format!("[{SD_ID}");
    for (name, value) in params {
        if let Some(value) = value {
            sd.push_str(&format!(" {name}=\"{}\"", escape_param(value)));
        }
    }
    sd.push(']');
    // Collectors that split on line ends would cut a multi-line summary into bogus messages.
    let msg: String = alert
        .summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "<{pri}>1 {time} {} {} {} alert {sd} {msg}",
        header.hostname, header.app_name, header.procid
    )
}

/// Escapes an SD-PARAM value: `"`, `\` and `]` are preceded by `\` (RFC 5424 §6.3.3).
fn escape_param(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A built syslog sink.
#[derive(Debug)]
pub(crate) struct Syslog {
    pub(crate) address: String,
    pub(crate) transport: Transport,
    pub(crate) header: Header,
    /// The TCP connection, when one is open.
    pub(crate) connection: Mutex<Option<TcpStream>>,
}

impl Syslog {
    /// One delivery of `alert`.
    pub(crate) async fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let message = format(&self.header, alert, SystemClock.now());
        match self.transport {
            Transport::Udp => self.send_udp(message.as_bytes()).await?,
            Transport::Tcp => {
                let frame = format!("{} {message}", message.len());
                self.send_tcp(frame.as_bytes()).await?;
            }
        }
        Ok(())
    }

    async fn send_udp(&self, datagram: &[u8]) -> io::Result<()> {
        let to = tokio::net::lookup_host(&self.address)
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "address did not resolve"))?;
        let local = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let socket = UdpSocket::bind(local).await?;
        let sent = socket.send_to(datagram, to).await?;
        if sent != datagram.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "datagram truncated",
            ));
        }
        Ok(())
    }

    async fn send_tcp(&self, frame: &[u8]) -> io::Result<()> {
        let mut slot = self.connection.lock().await;
        // The stream is taken out and put back only after a complete write: if the write fails
        // or the timeout cancels it half-way, the connection is dropped rather than reused with
        // a partial frame on it.
        let mut stream = match slot.take() {
            Some(s) if !peer_closed(&s) => s,
            _ => TcpStream::connect(self.address.as_str()).await?,
        };
        stream.write_all(frame).await?;
        *slot = Some(stream);
        Ok(())
    }
}

/// Whether the collector closed the connection. Collectors never send, so a readable stream
/// at end-of-file is closed; writing to it would appear to succeed and lose the message.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    match stream.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;
    use warden_core::AlertStatus;

    use super::*;

    fn alert() -> Alert {
        Alert {
            id: Uuid::nil(),
            detector: "rule:bulk-deletes".into(),
            severity: Severity::High,
            status: AlertStatus::Open,
            account: Some("etl".into()),
            target: None,
            subject: "s".into(),
            summary: "etl deleted\n500 rows".into(),
            count: 2,
            first_seen: Timestamp::from_micros(0),
            last_seen: Timestamp::from_micros(0),
            seqs: vec![],
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            note: None,
        }
    }

    fn header(facility: Facility) -> Header {
        Header {
            facility,
            hostname: "gw1".into(),
            app_name: "warden".into(),
            procid: 7,
        }
    }

    #[test]
    fn formats_rfc5424() {
        let m = format(
            &header(Facility::Auth),
            &alert(),
            Timestamp::from_micros(1_500_000),
        );
        assert_eq!(
            m,
            "<35>1 1970-01-01T00:00:01.500000Z gw1 warden 7 alert [warden@32473 \
             alert=\"00000000-0000-0000-0000-000000000000\" detector=\"rule:bulk-deletes\" \
             severity=\"high\" status=\"open\" count=\"2\" account=\"etl\"] etl deleted 500 rows"
        );
    }

    #[test]
    fn pri_combines_facility_and_severity() {
        let mut a = alert();
        a.severity = Severity::Critical;
        assert!(
            format(&header(Facility::Local7), &a, Timestamp::from_micros(0)).starts_with("<186>1 ")
        );
        a.severity = Severity::Info;
        assert!(
            format(&header(Facility::User), &a, Timestamp::from_micros(0)).starts_with("<14>1 ")
        );
    }

    #[test]
    fn escapes_param_values() {
        assert_eq!(escape_param(r#"a"b\c]d[e"#), r#"a\"b\\c\]d[e"#);
    }
}
