//! Value types of the configuration file that have Prometheus' own spelling: durations
//! (`15s`, `1m30s`, `2h`) and byte sizes (`10MB`). This module only converts text to
//! numbers and back; it never reads files and never decides defaults.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::flags::{parse_bytes, parse_duration_ms};

/// Milliseconds in each unit Prometheus prints, largest first.
const DURATION_UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// A non-negative duration in milliseconds, written as Prometheus writes durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Duration {
    /// `n` seconds.
    pub const fn from_secs(n: i64) -> Duration {
        Duration(n * 1000)
    }

    /// The duration in milliseconds.
    pub fn as_ms(self) -> i64 {
        self.0
    }

    /// The duration as a std duration (negative values are clamped to zero).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.max(0) as u64)
    }

    /// Parses Prometheus' duration syntax.
    pub fn parse(s: &str) -> Result<Duration, String> {
        parse_duration_ms(s).map(Duration)
    }
}

impl fmt::Display for Duration {
    /// Prometheus' `model.Duration.String()` form: `0s`, `15s`, `1m30s`, `1d`, `250ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        if ms < 0 {
            f.write_str("-")?;
            ms = -ms;
        }
        for (unit, size) in DURATION_UNITS {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A size in bytes written as `512MB`, `1GB` or a plain number (0 means no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// Byte multiples printed by [`ByteSize`]'s `Display`, largest first.
const SIZE_UNITS: [(&str, u64); 5] = [
    ("TB", 1 << 40),
    ("GB", 1 << 30),
    ("MB", 1 << 20),
    ("KB", 1 << 10),
    ("B", 1),
];

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        for (unit, size) in SIZE_UNITS {
            if self.0 % size == 0 {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(ByteSize(n)),
            Raw::Text(s) => parse_bytes(&s)
                .map(ByteSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_prometheus() {
        assert_eq!(Duration(0).to_string(), "0s");
        assert_eq!(Duration(15_000).to_string(), "15s");
        assert_eq!(Duration(90_000).to_string(), "1m30s");
        assert_eq!(Duration(86_400_000).to_string(), "1d");
        assert_eq!(Duration(250).to_string(), "250ms");
        assert_eq!(Duration::parse("1m30s").unwrap(), Duration(90_000));
        assert!(Duration::parse("15").is_err());
    }

    #[test]
    fn sizes_parse_and_print() {
        let s: ByteSize = serde_yaml::from_str("10MB").unwrap();
        assert_eq!(s, ByteSize(10 << 20));
        assert_eq!(s.to_string(), "10MB");
        let n: ByteSize = serde_yaml::from_str("1024").unwrap();
        assert_eq!(n, ByteSize(1024));
        assert!(serde_yaml::from_str::<ByteSize>("ten").is_err());
    }
}
