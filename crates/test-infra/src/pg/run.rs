//! Running PostgreSQL's programs and turning a failure into a [`PgError::Command`].

use super::PgError;
use std::path::Path;
use std::process::{Command, Stdio};

/// How much of a failed program's output an error keeps (its end, where the reason is).
const OUTPUT_TAIL: usize = 2000;

/// Runs `cmd` to its end with its output captured; its standard output when it succeeds.
pub(crate) fn run(cmd: &mut Command) -> Result<String, PgError> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(PgError::io(format!("could not start `{}`", describe(cmd))))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(PgError::Command {
        command: describe(cmd),
        status: output.status.to_string(),
        output: tail(&format!("{stderr}{stdout}"), OUTPUT_TAIL),
    })
}

/// The command line, programs by file name; never the environment.
pub(crate) fn describe(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let mut parts = vec![
        program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned(),
    ];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// The last `max` bytes of `text` (at a character boundary), trimmed.
pub(crate) fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::{describe, tail};
    use std::process::Command;

    #[test]
    fn tail_keeps_the_end_at_a_char_boundary() {
        assert_eq!(tail("  abc\n", 10), "abc");
        assert_eq!(tail("xxéyy", 3), "yy");
        assert_eq!(tail("xxéyy", 4), "éyy");
    }

    #[test]
    fn describe_shows_arguments_but_not_the_environment() {
        let mut cmd = Command::new("/usr/bin/createdb");
        cmd.args(["-h", "127.0.0.1", "db"])
            .env("PGPASSWORD", "s3cret");
        assert_eq!(describe(&cmd), "createdb -h 127.0.0.1 db");
    }
}
