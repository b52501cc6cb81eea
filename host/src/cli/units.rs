//! Parsers for the values of command-line flags: durations, sizes, grants.

use std::path::PathBuf;
use std::time::Duration;

/// `5s`, `500ms`, `2m`, `1h`, `1.5s`; a bare number is seconds.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a positive duration such as 5s, 500ms, 2m or 1h";
    let (number, unit) = split_unit(text);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("unknown unit `{unit}`: {expected}")),
    };
    let value: f64 = number.parse().map_err(|_| expected.to_string())?;
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(expected.to_string());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| expected.to_string())
}

/// `64MiB`, `1GiB`, `512KiB`, `10MB`, `4096`; a bare number is bytes.
pub(crate) fn size(text: &str) -> Result<usize, String> {
    let expected = "expected a size such as 64MiB, 1GiB, 512KiB or 4096 (bytes)";
    let (number, unit) = split_unit(text);
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("unknown unit `{unit}`: {expected}")),
    };
    let value: u64 = number.parse().map_err(|_| expected.to_string())?;
    value
        .checked_mul(scale)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .filter(|&bytes| bytes > 0)
        .ok_or_else(|| expected.to_string())
}

/// Error kinds; none for every kind.
#[derive(Clone, Debug)]
pub(crate) struct Kinds(pub(crate) Vec<wasmpool::ErrorKind>);

impl Kinds {
    pub(crate) fn cover(&self, name: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|kind| kind.as_str() == name)
    }
}

/// `timeout,trap`: error kinds by name ([`wasmpool::ErrorKind::as_str`]),
/// or `all`: every kind.
pub(crate) fn error_kinds(text: &str) -> Result<Kinds, String> {
    if text == "all" {
        return Ok(Kinds(Vec::new()));
    }
    text.split(',')
        .map(|name| {
            wasmpool::ErrorKind::from_name(name.trim()).ok_or_else(|| {
                let names: Vec<&str> = wasmpool::ErrorKind::ALL.map(|kind| kind.as_str()).to_vec();
                format!(
                    "unknown error kind `{name}`: expected all, or some of {}",
                    names.join(", ")
                )
            })
        })
        .collect::<Result<_, _>>()
        .map(Kinds)
}

/// `KEY=VALUE`.
pub(crate) fn env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err("expected KEY=VALUE".to_string()),
    }
}

/// `HOST[::GUEST]`: a host directory and where the task sees it (by
/// default at the same path).
pub(crate) fn dir_grant(text: &str) -> Result<(PathBuf, String), String> {
    let (host, guest) = match text.split_once("::") {
        Some((host, guest)) => (host, guest),
        None => (text, text),
    };
    if host.is_empty() || guest.is_empty() {
        return Err("expected HOST_DIR or HOST_DIR::GUEST_DIR".to_string());
    }
    Ok((PathBuf::from(host), guest.to_string()))
}

/// A template's words, split as a POSIX shell splits them, without
/// expansions: at unquoted blanks; `'...'` keeps everything, `"..."` all
/// but `\"` and `\\`; a backslash outside quotes keeps the next
/// character.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Words(pub(crate) Vec<String>);

pub(crate) fn shell_words(text: &str) -> Result<Words, String> {
    let mut words = Vec::new();
    // The word being read, if one has begun (`''` is a word, empty).
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a ' is not closed".to_string()),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => word.extend(['\\', c]),
                            None => return Err("a \" is not closed".to_string()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a \" is not closed".to_string()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a \\ ends the template: quote it".to_string()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(Words(words))
}

fn split_unit(text: &str) -> (&str, &str) {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(text.len());
    (&text[..split], text[split..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_words_as_a_shell_splits_them() {
        let split = |text: &str| shell_words(text).map(|words| words.0);
        assert_eq!(split("say {} twice").unwrap(), ["say", "{}", "twice"]);
        assert_eq!(split("  -v   {} ").unwrap(), ["-v", "{}"]);
        assert_eq!(
            split(r#"grep "two words" {}"#).unwrap(),
            ["grep", "two words", "{}"]
        );
        assert_eq!(split("'it''s' x").unwrap(), ["its", "x"]);
        assert_eq!(
            split(r#"a\ b "q\"x\\" 'no\esc'"#).unwrap(),
            ["a b", r#"q"x\"#, r"no\esc"]
        );
        assert_eq!(split("'' {}").unwrap(), ["", "{}"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert!(split("say 'oops").unwrap_err().contains("' is not closed"));
        assert!(
            split("say \"oops")
                .unwrap_err()
                .contains("\" is not closed")
        );
        assert!(split("end\\").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("-1").is_err());
        assert!(duration("0s").is_err());
        assert!(duration("5 fortnights").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("64MiB"), Ok(64 << 20));
        assert_eq!(size("64m"), Ok(64 << 20));
        assert_eq!(size("10MB"), Ok(10_000_000));
        assert_eq!(size("4096"), Ok(4096));
        assert!(size("0").is_err());
        assert!(size("-5MiB").is_err());
        assert!(size("lots").is_err());
    }

    #[test]
    fn grants() {
        assert_eq!(env_pair("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(env_pair("novalue").is_err());
        assert_eq!(dir_grant("/data"), Ok(("/data".into(), "/data".into())));
        assert_eq!(
            dir_grant("./in::/input"),
            Ok(("./in".into(), "/input".into()))
        );
        assert!(dir_grant("::/x").is_err());
    }
}
