//! Printing API responses: aligned tables for people, JSON for programs. (OCSF, which only
//! events and alerts have, prints as JSON here.)

use comfy_table::{presets, Table};
use serde_json::Value;

use crate::cli::Output;

/// A column: its header and the JSON field it shows.
pub type Column = (&'static str, &'static str);

/// Prints a list of objects as a table of `columns`, or as a JSON array.
pub fn list(output: Output, items: &[Value], columns: &[Column]) {
    match output {
        Output::Json | Output::Ocsf => println!("{}", Value::Array(items.to_vec())),
        Output::Table => {
            let mut table = Table::new();
            table.load_preset(presets::NOTHING);
            table.set_header(columns.iter().map(|(h, _)| *h));
            for item in items {
                table.add_row(columns.iter().map(|(_, key)| cell(item.get(*key))));
            }
            println!("{table}");
        }
    }
}

/// Prints one object as `field: value` lines, or as JSON.
pub fn object(output: Output, item: &Value, columns: &[Column]) {
    match output {
        Output::Json | Output::Ocsf => println!("{item}"),
        Output::Table => {
            let width = columns.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
            for (header, key) in columns {
                println!("{header:<width$}  {}", cell(item.get(*key)));
            }
        }
    }
}

/// One value as table text: strings bare, absent and null as `-`, objects as `k=v` pairs.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(map)) if map.is_empty() => "-".to_owned(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", cell(Some(v))))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| cell(Some(i)))
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}
