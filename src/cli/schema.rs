//! `protowatch schema`: the JSON Schema of the config file, for editors that complete
//! and check JSON as it is typed (see `config::schema` for how it is made).

use super::CliError;
use crate::config::schema::schema;

pub fn run() -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(&schema())
        .map_err(|e| CliError::failed(format!("cannot write the schema: {e}")))?;
    super::print(&text)
}
