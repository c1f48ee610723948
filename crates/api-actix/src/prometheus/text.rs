//! The series a scrape computes itself (see [`super::ScrapeSources`]), written in the Prometheus
//! text format after the registry's.

use std::fmt::{Display, Write as _};

/// Prometheus text being written.
pub(super) struct Text {
    out: String,
}

impl Text {
    /// Continues `rendered` (the registry's text).
    pub(super) fn after(rendered: String) -> Self {
        let mut out = rendered;
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        Self { out }
    }

    /// Starts a family: its help and type lines.
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        // A blank line between families, as the registry writes them.
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub(super) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"");
                escape_into(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    pub(super) fn finish(self) -> String {
        self.out
    }
}

/// A label value as the text format wants it: `\`, `"` and line breaks escaped.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Text;

    #[test]
    fn families_follow_the_registry_text() {
        let mut t = Text::after("# TYPE a counter\na 1".into());
        t.family("b", "gauge", "the b");
        t.sample("b", &[("x", "q\"\\\n")], 2.5);
        t.sample("b", &[], 3);
        assert_eq!(
            t.finish(),
            "# TYPE a counter\na 1\n\n# HELP b the b\n# TYPE b gauge\nb{x=\"q\\\"\\\\\\n\"} 2.5\nb 3\n"
        );
    }

    #[test]
    fn one_blank_line_between_families_whatever_the_registry_ended_with() {
        let mut t = Text::after("a 1\n\n".into());
        t.family("b", "gauge", "the b");
        assert_eq!(t.finish(), "a 1\n\n# HELP b the b\n# TYPE b gauge\n");
        let mut t = Text::after(String::new());
        t.family("b", "gauge", "the b");
        assert_eq!(t.finish(), "# HELP b the b\n# TYPE b gauge\n");
    }
}
