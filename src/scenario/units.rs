//! Units a scenario is written in: byte sizes ("10GiB") and duration lists.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes, written as an integer or a string such as "512B",
/// "64KiB", "10GiB" or "1MB" (powers of 1000 for kB/MB/GB, 1024 for KiB/MiB/GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number.parse().map_err(|_| {
            format!("`{text}` is not a size; write e.g. \"256B\", \"64KiB\", \"10GiB\"")
        })?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "k" | "kB" | "KB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            "TB" => 1_000_000_000_000,
            "TiB" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit `{other}`; use B, kB, KiB, MB, MiB, GB, GiB, TB or TiB"
                ))
            }
        };
        let bytes = (number * factor as f64).round();
        // 2^64 itself is the first value that does not fit.
        if !(bytes.is_finite() && bytes < 18_446_744_073_709_551_616.0) {
            return Err(format!("`{text}` is too large a size"));
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (factor, unit) in UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 256 or \"64KiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `with = "units::duration_list"`: a list of humantime durations.
pub mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(list: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        let texts: Vec<String> = list
            .iter()
            .map(|d| humantime::format_duration(*d).to_string())
            .collect();
        texts.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Duration>, D::Error> {
        let list: Vec<humantime_serde::Serde<Duration>> = Vec::deserialize(deserializer)?;
        Ok(list.into_iter().map(|d| d.into_inner()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_families() {
        assert_eq!(ByteSize::parse("256").unwrap(), ByteSize(256));
        assert_eq!(ByteSize::parse("256B").unwrap(), ByteSize(256));
        assert_eq!(ByteSize::parse("64KiB").unwrap(), ByteSize(65_536));
        assert_eq!(ByteSize::parse("10GiB").unwrap(), ByteSize(10 << 30));
        assert_eq!(ByteSize::parse("1MB").unwrap(), ByteSize(1_000_000));
        assert_eq!(ByteSize::parse("1.5KiB").unwrap(), ByteSize(1536));
        assert!(ByteSize::parse("10 parsecs").is_err());
        assert!(ByteSize::parse("GiB").is_err());
        assert!(ByteSize::parse("16777216TiB").is_err(), "2^64 overflows");
        assert!(ByteSize::parse("1e400").is_err());
    }

    #[test]
    fn sizes_print_in_their_largest_whole_unit() {
        assert_eq!(ByteSize(10 << 30).to_string(), "10GiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }
}
