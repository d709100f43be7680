//! The `vigil` command: serves the database, and runs the data tools.

fn main() {}
