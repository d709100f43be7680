//! Exact decimal arithmetic for SLO math: the error budget `1 − objective/100` and the alert
//! thresholds `fraction × period / long window × budget` are computed as rationals from the
//! decimal text of the objective, so 99.9 gives exactly 0.001, then printed as the shortest
//! round-trip decimal. Pure; knows nothing about rules.

/// A non-negative rational number `num / den` in lowest terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    pub num: u128,
    pub den: u128,
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Largest number of fractional digits accepted in an objective.
const MAX_FRACTION_DIGITS: usize = 12;

impl Ratio {
    pub fn new(num: u128, den: u128) -> Ratio {
        let g = gcd(num, den).max(1);
        Ratio {
            num: num / g,
            den: den / g,
        }
    }

    pub fn int(n: u128) -> Ratio {
        Ratio::new(n, 1)
    }

    /// Parses a plain non-negative decimal (`99.9`, `30`, `0.25`).
    pub fn parse_decimal(s: &str) -> Option<Ratio> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if frac.len() > MAX_FRACTION_DIGITS {
            return None;
        }
        let digits = format!("{int}{frac}");
        let num: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        Some(Ratio::new(num, 10u128.pow(frac.len() as u32)))
    }

    /// Decimal text of an f64 as Rust prints it (shortest round trip), made exact.
    pub fn from_f64_text(v: f64) -> Option<Ratio> {
        if !v.is_finite() || v < 0.0 {
            return None;
        }
        Ratio::parse_decimal(&format!("{v}"))
    }

    pub fn times(self, o: Ratio) -> Ratio {
        let g1 = gcd(self.num, o.den).max(1);
        let g2 = gcd(o.num, self.den).max(1);
        Ratio::new(
            (self.num / g1) * (o.num / g2),
            (self.den / g2) * (o.den / g1),
        )
    }

    pub fn over(self, o: Ratio) -> Ratio {
        self.times(Ratio::new(o.den, o.num.max(1)))
    }

    /// `self − o`, or `None` when negative.
    pub fn minus(self, o: Ratio) -> Option<Ratio> {
        let l = self.num * o.den;
        let r = o.num * self.den;
        l.checked_sub(r).map(|n| Ratio::new(n, self.den * o.den))
    }

    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// The exact decimal if it terminates, else the shortest round-trip f64 text.
    pub fn to_decimal_string(self) -> String {
        let mut den = self.den;
        while den % 2 == 0 {
            den /= 2;
        }
        while den % 5 == 0 {
            den /= 5;
        }
        if den == 1 {
            let int = self.num / self.den;
            let mut rem = self.num % self.den;
            let mut frac = String::new();
            while rem != 0 {
                rem *= 10;
                frac.push(char::from(b'0' + (rem / self.den) as u8));
                rem %= self.den;
            }
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        } else {
            format!("{}", self.to_f64())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn budget_and_thresholds_are_exact() {
        let obj = Ratio::parse_decimal("99.9").unwrap();
        let b = Ratio::int(1).minus(obj.over(Ratio::int(100))).unwrap();
        assert_eq!(b.to_decimal_string(), "0.001");
        let page = Ratio::new(2, 100).times(Ratio::int(720)).times(b);
        assert_eq!(page.to_decimal_string(), "0.0144");
        let t = Ratio::new(10, 100)
            .times(Ratio::int(672))
            .over(Ratio::int(72))
            .times(b);
        assert_eq!(t.to_decimal_string(), format!("{}", t.to_f64()));
        assert_eq!(
            Ratio::parse_decimal("30").unwrap().to_decimal_string(),
            "30"
        );
        assert!(Ratio::parse_decimal("1e5").is_none());
    }
}
