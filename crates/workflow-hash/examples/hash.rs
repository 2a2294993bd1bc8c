//! Prints the structural workflow hash of each file, like `sha256sum`.
//!
//! ```text
//! cargo run -q -p workflow-hash --example hash -- [FILE...]
//! ```
//!
//! Reads standard input when no file (or `-`) is given. On bad input prints a one-line error
//! naming the file, carries on with the other files and exits with status 1 at the end.

use std::fs::File;
use std::io::{self, BufReader};
use std::process::ExitCode;

use workflow_hash::WorkflowHash;

fn main() -> ExitCode {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        files.push("-".to_owned());
    }
    let mut failed = false;
    for name in &files {
        let result = if name == "-" {
            WorkflowHash::of_reader(io::stdin().lock())
        } else {
            File::open(name)
                .map_err(workflow_hash::Error::Io)
                .and_then(|file| WorkflowHash::of_reader(BufReader::new(file)))
        };
        match result {
            Ok(hash) => println!("{hash}  {name}"),
            Err(error) => {
                eprintln!("hash: {name}: {error}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
