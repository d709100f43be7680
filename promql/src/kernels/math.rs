//! Element-wise math kernels for instant vectors and scalars (`abs`, `ceil`, `floor`,
//! `exp`, `ln`, `log2`, `log10`, `sqrt`, `sgn`, `round`, `clamp*`, trigonometry, `deg`,
//! `rad`, `pi`, `max_of`/`min_of`) with Go's `math` package semantics for NaN, ±Inf and
//! signed zero. Pure `f64 -> f64` functions; this module never sees labels or series.

/// `pi()`.
pub const PI: f64 = std::f64::consts::PI;

/// `abs(v)`.
pub fn abs(v: f64) -> f64 {
    v.abs()
}

/// `ceil(v)`.
pub fn ceil(v: f64) -> f64 {
    v.ceil()
}

/// `floor(v)`.
pub fn floor(v: f64) -> f64 {
    v.floor()
}

/// `exp(v)`.
pub fn exp(v: f64) -> f64 {
    v.exp()
}

/// `sqrt(v)`.
pub fn sqrt(v: f64) -> f64 {
    v.sqrt()
}

/// `ln(v)`: natural logarithm (0 → -Inf, negative → NaN).
pub fn ln(v: f64) -> f64 {
    v.ln()
}

/// Splits a positive finite `v` into `frac * 2^exp` with `frac` in [0.5, 1).
fn frexp(v: f64) -> (f64, i32) {
    const MANTISSA_BITS: u32 = 52;
    const EXP_MASK: u64 = 0x7ff;
    const EXP_BIAS: i32 = 1022; // bias such that frac lands in [0.5, 1)
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    let (mut v, mut adjust) = (v, 0);
    if v < f64::MIN_POSITIVE {
        // Subnormal: scale into the normal range first.
        v *= TWO_POW_52;
        adjust = -(MANTISSA_BITS as i32);
    }
    let bits = v.to_bits();
    let exp = ((bits >> MANTISSA_BITS) & EXP_MASK) as i32 - EXP_BIAS + adjust;
    let frac_bits = (bits & !(EXP_MASK << MANTISSA_BITS)) | ((EXP_BIAS as u64) << MANTISSA_BITS);
    (f64::from_bits(frac_bits), exp)
}

/// `log2(v)` computed as Go does: exact for powers of two, else
/// `ln(frac) / ln(2) + exp` from the binary decomposition of `v`.
pub fn log2(v: f64) -> f64 {
    if v.is_nan() || v < 0.0 {
        return f64::NAN;
    }
    if v == 0.0 {
        return f64::NEG_INFINITY;
    }
    if v.is_infinite() {
        return v;
    }
    let (frac, exp) = frexp(v);
    if frac == 0.5 {
        return f64::from(exp - 1);
    }
    frac.ln() * (1.0 / std::f64::consts::LN_2) + f64::from(exp)
}

/// `log10(v)` computed as Go does: `ln(v) * (1 / ln(10))`.
pub fn log10(v: f64) -> f64 {
    v.ln() * (1.0 / std::f64::consts::LN_10)
}

/// `sgn(v)`: -1, 1, or `v` itself for ±0 and NaN.
pub fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// `round(v, to_nearest)`: rounds to the nearest multiple of `to_nearest` (default 1),
/// ties up, computed as `floor(v * (1/to_nearest) + 0.5) / (1/to_nearest)`.
pub fn round(v: f64, to_nearest: f64) -> f64 {
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

/// Go's `math.Max`: +Inf wins over NaN, NaN wins over numbers, +0 over -0.
pub fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        return f64::INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN wins over numbers, -0 over +0.
pub fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b {
        a
    } else {
        b
    }
}

/// `clamp(v, min, max)`: None when `max < min` (Prometheus then returns an empty vector
/// for every element); NaN stays NaN.
pub fn clamp(v: f64, min: f64, max: f64) -> Option<f64> {
    if max < min {
        return None;
    }
    Some(go_max(min, go_min(max, v)))
}

/// `clamp_min(v, min)`.
pub fn clamp_min(v: f64, min: f64) -> f64 {
    go_max(min, go_min(f64::INFINITY, v))
}

/// `clamp_max(v, max)`.
pub fn clamp_max(v: f64, max: f64) -> f64 {
    go_max(f64::NEG_INFINITY, go_min(max, v))
}

/// `max_of(a, b)` (Go's `math.Max`).
pub fn max_of(a: f64, b: f64) -> f64 {
    go_max(a, b)
}

/// `min_of(a, b)` (Go's `math.Min`).
pub fn min_of(a: f64, b: f64) -> f64 {
    go_min(a, b)
}

/// `deg(v)`: radians to degrees, `v * 180 / pi`.
pub fn deg(v: f64) -> f64 {
    v * 180.0 / PI
}

/// `rad(v)`: degrees to radians, `v * pi / 180`.
pub fn rad(v: f64) -> f64 {
    v * PI / 180.0
}

/// `sin(v)`.
pub fn sin(v: f64) -> f64 {
    v.sin()
}
/// `cos(v)`.
pub fn cos(v: f64) -> f64 {
    v.cos()
}
/// `tan(v)`.
pub fn tan(v: f64) -> f64 {
    v.tan()
}
/// `asin(v)`.
pub fn asin(v: f64) -> f64 {
    v.asin()
}
/// `acos(v)`.
pub fn acos(v: f64) -> f64 {
    v.acos()
}
/// `atan(v)`.
pub fn atan(v: f64) -> f64 {
    v.atan()
}
/// `sinh(v)`.
pub fn sinh(v: f64) -> f64 {
    v.sinh()
}
/// `cosh(v)`.
pub fn cosh(v: f64) -> f64 {
    v.cosh()
}
/// `tanh(v)`.
pub fn tanh(v: f64) -> f64 {
    v.tanh()
}
/// `asinh(v)`.
pub fn asinh(v: f64) -> f64 {
    v.asinh()
}
/// `acosh(v)` (NaN below 1).
pub fn acosh(v: f64) -> f64 {
    v.acosh()
}
/// `atanh(v)` (±Inf at ±1, NaN beyond).
pub fn atanh(v: f64) -> f64 {
    v.atanh()
}

#[cfg(test)]
// Expected values are the decimal literals of functions.test.
#[allow(clippy::unwrap_used, clippy::approx_constant)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;
    const NAN: f64 = f64::NAN;

    fn same(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    #[test]
    fn rounding_family_matches_functions_test() {
        // functions.test "Test for abs, ceil(), floor(), round()".
        let inputs = [2.5, 2.0, -2.5, -2.0, 0.0, -0.0, INF, -INF, NAN];
        let ceil_want = [3.0, 2.0, -2.0, -2.0, 0.0, -0.0, INF, -INF, NAN];
        let floor_want = [2.0, 2.0, -3.0, -2.0, 0.0, -0.0, INF, -INF, NAN];
        let round_want = [3.0, 2.0, -2.0, -2.0, 0.0, 0.0, INF, -INF, NAN];
        for (i, v) in inputs.iter().enumerate() {
            assert!(same(abs(*v), v.abs()));
            assert!(same(ceil(*v), ceil_want[i]), "ceil({v})");
            assert!(same(floor(*v), floor_want[i]), "floor({v})");
            assert!(
                round(*v, 1.0) == round_want[i]
                    || (round_want[i].is_nan() && round(*v, 1.0).is_nan()),
                "round({v})"
            );
        }
        assert_eq!(round(2.5, 2.0), 2.0);
        assert_eq!(round(3.14159, 0.01), 3.14);
        assert_eq!(round(-5.5, 1.0), -5.0);
        assert_eq!(round(17.0, 5.0), 15.0);
        assert_eq!(round(18.0, 5.0), 20.0);
    }

    #[test]
    fn logs_and_exp_match_functions_test() {
        assert_eq!(exp(10.0), 22026.465794806718);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(ln(10.0), 2.302585092994046);
        assert_eq!(ln(0.0), -INF);
        assert!(ln(-10.0).is_nan());
        assert_eq!(sqrt(10.0), 3.1622776601683795);
        assert_eq!(sqrt(20.0), 4.47213595499958);
        assert!((log2(10.0) - 3.3219280948873626).abs() < 1e-15);
        assert!((log2(20.0) - 4.321928094887363).abs() < 1e-15);
        assert_eq!(log2(8.0), 3.0);
        assert_eq!(log2(0.5), -1.0);
        assert_eq!(log2(f64::from_bits(1)), -1074.0);
        assert_eq!(log2(0.0), -INF);
        assert!(log2(-1.0).is_nan());
        assert_eq!(log2(INF), INF);
        assert!((log10(10.0) - 1.0).abs() < 1e-15);
        assert!((log10(20.0) - 1.301029995663981).abs() < 1e-15);
        assert_eq!(log10(0.0), -INF);
        assert!(log10(-1.0).is_nan());
    }

    #[test]
    fn sign_clamp_minmax() {
        assert_eq!(sgn(-3.0), -1.0);
        assert_eq!(sgn(3.0), 1.0);
        assert!(same(sgn(-0.0), -0.0));
        assert!(sgn(NAN).is_nan());
        assert_eq!(clamp(5.0, 0.0, 3.0), Some(3.0));
        assert_eq!(clamp(-5.0, 0.0, 3.0), Some(0.0));
        assert_eq!(clamp(1.0, 3.0, 0.0), None);
        assert!(clamp(NAN, 0.0, 3.0).unwrap().is_nan());
        assert!(clamp(1.0, NAN, 3.0).unwrap().is_nan());
        assert_eq!(clamp_min(-1.0, 0.0), 0.0);
        assert_eq!(clamp_max(10.0, 5.0), 5.0);
        assert!(clamp_max(NAN, 5.0).is_nan());
        assert_eq!(max_of(1.0, INF), INF);
        assert_eq!(max_of(NAN, INF), INF);
        assert!(max_of(NAN, 1.0).is_nan());
        assert!(same(max_of(-0.0, 0.0), 0.0));
        assert!(same(min_of(-0.0, 0.0), -0.0));
        assert_eq!(min_of(NAN, -INF), -INF);
        assert_eq!(min_of(2.0, 1.0), 1.0);
    }

    #[test]
    fn trig_and_angles() {
        assert_eq!(deg(PI), 180.0);
        assert_eq!(rad(180.0), PI);
        assert_eq!(deg(rad(90.0)), 90.0);
        assert_eq!(sin(0.0), 0.0);
        assert_eq!(cos(0.0), 1.0);
        assert!(tan(INF).is_nan());
        assert!(asin(2.0).is_nan());
        assert_eq!(acos(1.0), 0.0);
        assert_eq!(atan(INF), PI / 2.0);
        assert_eq!(sinh(0.0), 0.0);
        assert_eq!(cosh(0.0), 1.0);
        assert_eq!(tanh(INF), 1.0);
        assert_eq!(asinh(0.0), 0.0);
        assert!(acosh(0.5).is_nan());
        assert_eq!(atanh(1.0), INF);
        assert!(atanh(2.0).is_nan());
    }
}
