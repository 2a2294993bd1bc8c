//! [`Table`]: aligned text tables for demo output.

use std::fmt;

/// A text table: a header row, data rows, columns padded to their widest cell. Numbers
/// (cells starting with a digit) are right-aligned.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: ToString>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows
            .push(cells.into_iter().map(|s| s.to_string()).collect());
        self
    }

    /// Whether the table has no data row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn widths(&self) -> Vec<usize> {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .chain([&self.header])
                    .filter_map(|row| row.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }
}

fn write_row(f: &mut fmt::Formatter<'_>, cells: &[String], widths: &[usize]) -> fmt::Result {
    let mut line = String::from(" ");
    for (c, width) in widths.iter().enumerate() {
        let cell = cells.get(c).map_or("", String::as_str);
        let numeric = cell.starts_with(|ch: char| ch.is_ascii_digit());
        if numeric {
            line.push_str(&format!(" {cell:>width$} "));
        } else {
            line.push_str(&format!(" {cell:<width$} "));
        }
        if c + 1 < widths.len() {
            line.push('│');
        }
    }
    writeln!(f, "{}", line.trim_end())
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths = self.widths();
        write_row(f, &self.header, &widths)?;
        let rule: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        writeln!(f, " {}", rule.join("┼"))?;
        for row in &self.rows {
            write_row(f, row, &widths)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let mut table = Table::new(["server", "jobs"]);
        table.row(["gpu-a", "12"]).row(["a-long-name", "3"]);
        let text = table.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].contains("gpu-a       │   12"), "{text}");
        assert!(lines[3].contains("a-long-name │    3"), "{text}");
    }
}
