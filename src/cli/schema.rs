//! `dbstash schema`: the JSON Schema generated from the manifest types.

pub fn run() -> i32 {
    out!("{}", crate::manifest::schema::schema_text());
    0
}
