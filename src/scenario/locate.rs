//! Places in the scenario text: byte offsets to line and column, dotted
//! keys (`load.phases[1].rate`) to where they are written, and back.

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn steps(key: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in key.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(n, rest)| (n, rest));
        out.push(Step::Key(name.to_string()));
        for index in indexes.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Where a dotted key is written: the line and column of the key itself,
/// or of its nearest written ancestor; None if no part of it is written.
pub fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut value: Option<&Spanned<DeValue>> = None;
    let mut found: Option<usize> = None;
    for step in steps(key) {
        match (step, value.map(|v| v.get_ref())) {
            (Step::Key(name), None | Some(DeValue::Table(_))) => {
                if let Some(DeValue::Table(inner)) = value.map(|v| v.get_ref()) {
                    table = inner;
                }
                let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref() == &name) else {
                    break;
                };
                found = Some(k.span().start);
                value = Some(v);
            }
            (Step::Index(i), Some(DeValue::Array(items))) => {
                let Some(item) = items.get(i) else { break };
                found = Some(item.span().start);
                value = Some(item);
            }
            _ => break,
        }
    }
    found.map(|offset| line_column(text, offset))
}

/// The dotted key whose key or value covers `offset`, as deep as it goes.
pub fn key_at(text: &str, offset: usize) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    descend_table(root.get_ref(), offset, &mut path);
    (!path.is_empty()).then(|| render(&path))
}

fn covers(span: std::ops::Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn descend_table(table: &DeTable, offset: usize, path: &mut Vec<Step>) {
    for (key, value) in table.iter() {
        if covers(key.span(), offset) {
            path.push(Step::Key(key.get_ref().to_string()));
            return;
        }
        if covers(value.span(), offset) {
            path.push(Step::Key(key.get_ref().to_string()));
            descend_value(value.get_ref(), offset, path);
            return;
        }
    }
    // Tables written as `[section]` headers span only their header; look
    // inside every sub-table for the offset.
    for (key, value) in table.iter() {
        let mut inner = vec![Step::Key(key.get_ref().to_string())];
        descend_value(value.get_ref(), offset, &mut inner);
        if inner.len() > 1 {
            path.extend(inner);
            return;
        }
    }
}

fn descend_value(value: &DeValue, offset: usize, path: &mut Vec<Step>) {
    match value {
        DeValue::Table(table) => descend_table(table, offset, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let mut inner = vec![Step::Index(i)];
                descend_value(item.get_ref(), offset, &mut inner);
                if inner.len() > 1 || covers(item.span(), offset) {
                    path.extend(inner);
                    return;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n\n[load]\nrate = 10\n\n[[load.phases]]\nkind = \"constant\"\n\n[[load.phases]]\nkind = \"ramp\"\nfrom = 1\n";

    #[test]
    fn offsets_become_lines_and_columns() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }

    #[test]
    fn keys_are_found_where_they_are_written() {
        assert_eq!(locate(TEXT, "name"), Some((1, 1)));
        assert_eq!(locate(TEXT, "load.rate"), Some((4, 1)));
        assert_eq!(locate(TEXT, "load.phases[1].from"), Some((11, 1)));
        assert_eq!(
            locate(TEXT, "load.phases[1].to"),
            Some((9, 1)),
            "the header of the nearest written ancestor"
        );
        assert_eq!(locate(TEXT, "drain.timeout"), None);
    }

    #[test]
    fn offsets_map_back_to_keys() {
        let rate = TEXT.find("rate").unwrap();
        assert_eq!(key_at(TEXT, rate).as_deref(), Some("load.rate"));
        let from = TEXT.find("from").unwrap();
        assert_eq!(key_at(TEXT, from).as_deref(), Some("load.phases[1].from"));
        let value = TEXT.find("10").unwrap();
        assert_eq!(key_at(TEXT, value).as_deref(), Some("load.rate"));
    }
}
