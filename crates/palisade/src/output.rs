//! Output in the openstack CLI's formats: `-f table|json|yaml|value` and `-c COLUMN`.

use comfy_table::{presets::ASCII_FULL_CONDENSED, Table};
use serde_json::{Map, Value};

/// Output format (`-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// ASCII table (default)
    #[default]
    Table,
    /// JSON
    Json,
    /// YAML
    Yaml,
    /// bare values, one row per line
    Value,
    /// nftables text (`palisade compile`; other commands print a table)
    Nft,
    /// SVG picture (`palisade graph`, `palisade matrix`; other commands print a table)
    Svg,
    /// Graphviz DOT (`palisade graph`; other commands print a table)
    Dot,
    /// HTML page (`palisade matrix`; other commands print a table)
    Html,
}

/// `-f` and `-c` together.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// the format
    pub format: Format,
    /// the columns to keep (empty = all)
    pub columns: Vec<String>,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join("\n"),
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
            .map(|(k, v)| format!("{k}='{}'", cell(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_style(ASCII_FULL_CONDENSED);
    t
}

impl Output {
    fn keep(&self, name: &str) -> bool {
        self.columns.is_empty() || self.columns.iter().any(|c| c == name)
    }

    fn emit_structured(&self, v: &Value) -> anyhow::Result<String> {
        Ok(match self.format {
            Format::Json => serde_json::to_string_pretty(v)?,
            Format::Yaml => serde_saphyr::to_string(v)?,
            _ => unreachable!("structured formats only"),
        })
    }

    /// One object as Field | Value.
    pub fn show(&self, fields: &[(&str, Value)]) -> anyhow::Result<String> {
        let fields: Vec<&(&str, Value)> = fields.iter().filter(|(k, _)| self.keep(k)).collect();
        match self.format {
            Format::Table | Format::Nft | Format::Svg | Format::Dot | Format::Html => {
                let mut t = new_table();
                t.set_header(["Field", "Value"]);
                for (k, v) in fields {
                    t.add_row([k.to_string(), cell(v)]);
                }
                Ok(t.to_string())
            }
            Format::Value => Ok(fields
                .iter()
                .map(|(_, v)| cell(v))
                .collect::<Vec<_>>()
                .join("\n")),
            _ => {
                let m: Map<String, Value> = fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect();
                self.emit_structured(&Value::Object(m))
            }
        }
    }

    /// Rows under headers.
    pub fn list(&self, headers: &[&str], rows: &[Vec<Value>]) -> anyhow::Result<String> {
        let keep: Vec<usize> = (0..headers.len())
            .filter(|i| self.keep(headers[*i]))
            .collect();
        match self.format {
            Format::Table | Format::Nft | Format::Svg | Format::Dot | Format::Html => {
                let mut t = new_table();
                t.set_header(keep.iter().map(|i| headers[*i]));
                for r in rows {
                    t.add_row(keep.iter().map(|i| cell(&r[*i])));
                }
                Ok(t.to_string())
            }
            Format::Value => Ok(rows
                .iter()
                .map(|r| {
                    keep.iter()
                        .map(|i| cell(&r[*i]))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join("\n")),
            _ => {
                let arr: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        Value::Object(
                            keep.iter()
                                .map(|i| (headers[*i].to_string(), r[*i].clone()))
                                .collect(),
                        )
                    })
                    .collect();
                self.emit_structured(&Value::Array(arr))
            }
        }
    }
}
