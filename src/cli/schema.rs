//! `dbstash schema`: the JSON Schema generated from the manifest types.

pub fn run() -> i32 {
    print!("{}", crate::manifest::schema::schema_text());
    0
}
