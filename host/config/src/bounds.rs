//! What a configuration input may be, checked before it is parsed: its
//! size (a config and a cloud-config may be URLs, and the cloud-config is
//! embedded in every artifact and handed to each plugin in memory) and its
//! YAML nesting depth (the parser gets slow long before its own recursion
//! limit: 100,000 nested `[` took 56 s to be refused). The depth is found
//! by a linear scan of indentation and flow brackets that errs on the side
//! of counting too much only for shapes no configuration has.

use crate::ConfigError;
use crate::layers::Source;

/// The largest configuration document or cloud-config, in bytes: real ones
/// are a few KiB; this leaves room for certificates and files embedded
/// with `write_files`.
pub const MAX_DOCUMENT: usize = 16 << 20;

/// Why documents are capped, said whenever one is refused.
pub const WHY: &str = "a config or cloud-config is read whole, embedded in every artifact \
    and handed to each plugin in memory";

/// The deepest YAML nesting accepted (mappings, lists and flow brackets
/// together); Kubernetes manifests inside a cloud-config nest ~15 levels.
pub const MAX_DEPTH: usize = 64;

/// Refuses a document over [`MAX_DOCUMENT`] bytes or nested deeper than
/// [`MAX_DEPTH`], naming its source.
pub fn check_document(text: &str, source: &Source) -> Result<(), ConfigError> {
    check_size(text.len(), source)?;
    if let Some((depth, line)) = too_deep(text, MAX_DEPTH) {
        return Err(ConfigError::TooDeep {
            source_name: source.to_string(),
            depth,
            line,
            limit: MAX_DEPTH,
        });
    }
    Ok(())
}

/// Refuses `len` bytes over [`MAX_DOCUMENT`].
pub fn check_size(len: usize, source: &Source) -> Result<(), ConfigError> {
    if len > MAX_DOCUMENT {
        return Err(ConfigError::TooLarge {
            source_name: source.to_string(),
            size: len as u64,
            limit: MAX_DOCUMENT as u64,
        });
    }
    Ok(())
}

/// The first point where the nesting passes `limit`: (depth, line number).
fn too_deep(text: &str, limit: usize) -> Option<(usize, usize)> {
    let mut scan = Scan::default();
    for (number, line) in text.lines().enumerate() {
        let depth = scan.line(line);
        if depth > limit {
            return Some((depth, number + 1));
        }
    }
    None
}

/// The scanner's state between lines.
#[derive(Default)]
struct Scan {
    /// Indentation of the open block levels, innermost last.
    indents: Vec<usize>,
    /// Open `[`/`{` brackets.
    flow: usize,
    /// Inside a quoted scalar (may span lines): its quote character.
    quote: Option<char>,
    /// Inside a block scalar (`|`, `>`): the indentation of its key line;
    /// more-indented lines are its text.
    block_scalar: Option<usize>,
}

impl Scan {
    /// Reads one line; returns the nesting depth reached on it.
    fn line(&mut self, line: &str) -> usize {
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if let Some(parent) = self.block_scalar {
            if content.is_empty() || indent > parent {
                return 0;
            }
            self.block_scalar = None;
        }
        if self.quote.is_none() && (content.is_empty() || content.starts_with('#')) {
            return 0;
        }
        let mut block = self.indents.len();
        if self.flow == 0 && self.quote.is_none() {
            while self.indents.last().is_some_and(|&i| i >= indent) {
                self.indents.pop();
            }
            self.indents.push(indent);
            // `- - x` opens a list per dash on one line.
            let mut rest = content;
            let mut dashes = 0;
            while let Some(r) = rest.strip_prefix("- ") {
                dashes += 1;
                rest = r.trim_start_matches(' ');
            }
            block = self.indents.len() + dashes;
        }
        let deepest_flow = self.flow_in(content);
        if self.flow == 0 && self.quote.is_none() && opens_block_scalar(content) {
            self.block_scalar = Some(indent);
        }
        block + deepest_flow
    }

    /// Counts flow brackets outside quotes and comments; returns the
    /// deepest flow level seen on the line.
    fn flow_in(&mut self, content: &str) -> usize {
        let mut deepest = self.flow;
        // The previous character, and the previous one that is not a space
        // (' ' at the start: a value starts there).
        let (mut previous, mut previous_solid) = (' ', ' ');
        let mut chars = content.chars().peekable();
        while let Some(c) = chars.next() {
            let starts_value = matches!(previous_solid, ' ' | ':' | '-' | '[' | '{' | ',');
            match self.quote {
                Some('\'') if c == '\'' => {
                    // '' is an escaped quote inside single quotes.
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        self.quote = None;
                    }
                }
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some(q) if c == q => self.quote = None,
                Some(_) => {}
                None => match c {
                    '#' if previous == ' ' || previous == '\t' => break,
                    '\'' | '"' if starts_value => self.quote = Some(c),
                    // In block context a bracket opens a collection only
                    // where a value starts; inside one, always.
                    '[' | '{' if self.flow > 0 || starts_value => {
                        self.flow += 1;
                        deepest = deepest.max(self.flow);
                    }
                    ']' | '}' => self.flow = self.flow.saturating_sub(1),
                    _ => {}
                },
            }
            previous = c;
            if c != ' ' && c != '\t' {
                previous_solid = c;
            }
        }
        deepest
    }
}

/// `key: |`, `- >-`, `key: |2+ # comment`: a block scalar starts below.
fn opens_block_scalar(content: &str) -> bool {
    let code = match content.find(" #") {
        Some(i) => &content[..i],
        None => content,
    };
    let last = code.trim_end().rsplit(' ').next().unwrap_or("");
    let mut chars = last.chars();
    matches!(chars.next(), Some('|' | '>'))
        && chars.all(|c| matches!(c, '-' | '+') || c.is_ascii_digit())
        && (code.trim_end() == last || code.contains(": ") || code.trim_start().starts_with("- "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        let mut scan = Scan::default();
        text.lines().map(|l| scan.line(l)).max().unwrap_or(0)
    }

    #[test]
    fn ordinary_configs_are_shallow() {
        let config = "\
container_image: quay.io/kairos/core:v1
disk:
  efi: true
  size: 100
netboot:
  cmdline: \"quiet [x]\"  # not a list
cloud_config: |
  #cloud-config
  users:
      - name: kairos
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
  write_files:
    - path: /etc/x
list: [a, [b, {c: d}], 'it''s [']
name: it's fine [
";
        assert!(depth(config) <= 4, "{}", depth(config));
        assert!(too_deep(config, MAX_DEPTH).is_none());
    }

    #[test]
    fn deep_flow_and_block_nesting_are_counted() {
        let flow = format!("x: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert_eq!(too_deep(&flow, 64), Some((101, 1)));
        let mut block = String::new();
        for i in 0..70 {
            block += &format!("{}k{i}:\n", "  ".repeat(i));
        }
        assert_eq!(too_deep(&block, 64).map(|(_, line)| line), Some(65));
        let dashes = format!("x:\n  {}y\n", "- ".repeat(80));
        assert!(too_deep(&dashes, 64).is_some());
        // Brackets inside quotes and comments do not count.
        let quoted = format!("x: \"{}\"\ny: 1 # {}\n", "[".repeat(100), "{".repeat(100));
        assert!(too_deep(&quoted, 64).is_none());
    }

    #[test]
    fn deep_yaml_is_refused_before_parsing() {
        let text = format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = check_document(&text, &Source::Url("http://127.0.0.1/c.yaml".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("config URL http://127.0.0.1/c.yaml"), "{e}");
        assert!(e.contains("nested more than 64 levels"), "{e}");
    }

    #[test]
    fn oversized_documents_are_refused() {
        let e = check_size(MAX_DOCUMENT + 1, &Source::File("big.yaml".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("config file big.yaml"), "{e}");
        assert!(e.contains("at most 16 MiB"), "{e}");
    }
}
