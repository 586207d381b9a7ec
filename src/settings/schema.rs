//! Pieces of JSON Schema that every section's schema is written with: choice words in
//! any case, a secret in the file or kept out of it, a duration with a unit.
//!
//! They live here, apart from the config file's schema (`config::schema`), so a service
//! or the BEC bridge can describe its own section without importing the assembled config
//! that is built from those sections.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A string that is not empty or blank, as the loader's `non_empty` wants.
pub const NON_BLANK: &str = r"\S";

/// One of a fixed set of words; the loader takes them in any case, so besides the list
/// (which editors offer) any casing matches. `trim`: blanks around the word are fine.
pub fn words(list: &[&str], trim: bool) -> Schema {
    let alternatives: Vec<String> = list
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else {
                        // Digits and `-` stand for themselves; escaping `-` outside a
                        // class is an error in the ECMA-262 regexes of editors.
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    let blank = if trim { r"\s*" } else { "" };
    let pattern = format!("^{blank}(?:{}){blank}$", alternatives.join("|"));
    json_schema!({
        "type": "string",
        "anyOf": [{"enum": list}, {"pattern": pattern}],
    })
}

/// A value in the file, or kept out of it.
pub fn secret_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "string", "pattern": NON_BLANK},
            {"type": "object", "properties": {"env": {"type": "string", "pattern": NON_BLANK}},
             "required": ["env"], "additionalProperties": false},
            {"type": "object", "properties": {"file": {"type": "string", "pattern": NON_BLANK}},
             "required": ["file"], "additionalProperties": false},
        ],
    })
}

/// A duration between `min` and `max` seconds as a number, or a string with a unit (the
/// string's range is the loader's to check).
pub fn duration(min: u64, max: u64) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "number", "minimum": min, "maximum": max},
            {"type": "string", "pattern": r"^\s*(?:[0-9]+\.?[0-9]*|\.[0-9]+)\s*(?:s|m|min|h|d)\s*$"},
        ],
    })
}
