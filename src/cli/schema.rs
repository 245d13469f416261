//! `dbstash schema`: the JSON Schema generated from the manifest types.

pub fn run() -> Result<super::ExitCode, super::CliError> {
    out!("{}", crate::manifest::schema::schema_text());
    Ok(crate::error::exit::OK)
}
