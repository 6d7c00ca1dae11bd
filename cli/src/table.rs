//! A plain aligned table, kubectl style: upper-case headers, columns
//! separated by three spaces, no borders.

use std::fmt;

/// Rows under headers.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers.
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }
}

/// Keeps a cell on one line and at most `max` characters.
pub fn cell(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut line = |cells: &[String]| -> fmt::Result {
            let mut out = String::new();
            for (i, width) in widths.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                out.push_str(c);
                if i + 1 < cols {
                    out.push_str(&" ".repeat(width - c.chars().count() + 3));
                }
            }
            writeln!(f, "{}", out.trim_end())
        };
        line(&self.headers)?;
        for row in &self.rows {
            line(row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_trims() {
        let mut t = Table::new(["NAME", "DESC"]);
        t.row(["a", "first"]);
        t.row(["longer-name", ""]);
        assert_eq!(
            t.to_string(),
            "NAME          DESC\na             first\nlonger-name\n"
        );
        assert_eq!(cell("one\ntwo   three", 9), "one tw...");
        assert_eq!(cell("short", 9), "short");
    }
}
