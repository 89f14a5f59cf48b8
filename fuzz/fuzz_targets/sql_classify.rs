//! Fuzzes statement classification and redaction with what a client controls: the text of a
//! query. Any panic, or a stack overflow on deep nesting, is a bug (one query must never take the
//! gateway down).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The wire codec only hands valid UTF-8 to the classifier.
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let statements = warden_sql::classify(sql);
    for s in &statements {
        // The redacted text must itself be safe to classify again.
        let _ = warden_sql::classify(&s.text);
    }
    let _ = warden_sql::redact(sql);
});
