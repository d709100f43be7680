//! Tests for the XOR chunk: golden bytes derived by hand from the format, round trips
//! (including NaN payloads and stale markers compared by bits), resumption, seek, and
//! decoding of damaged bytes that must never panic.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::chunkenc::{XorChunk, XorEncoder, XorIterator, STALE_NAN_BITS};
use proptest::prelude::*;

fn encode(samples: &[(i64, u64)]) -> Vec<u8> {
    let mut enc = XorEncoder::new();
    for &(t, v) in samples {
        enc.append(t, f64::from_bits(v));
    }
    enc.bytes().to_vec()
}

fn decode(b: &[u8]) -> (Vec<(i64, u64)>, Option<String>) {
    let mut it = XorIterator::new(b);
    let mut out = Vec::new();
    while it.next() {
        let (t, v) = it.at();
        out.push((t, v.to_bits()));
    }
    (out, it.err().map(|e| e.to_string()))
}

/// Four samples whose bits were worked out by hand:
///
/// ```text
/// 00 04                      count = 4
/// d0 0f                      t0 = 1000: zigzag 2000 as uvarint
/// 3f f0 00 00 00 00 00 00    v0 = 1.0
/// e8 07                      t1 - t0 = 1000 as uvarint
/// then bits:
///   0                        v1 == v0
///   0                        dod(t2) = 0
///   11 00001 001011 11111111111   v2 = 2.0: xor 0x7ff0.. leading 1, 11 significant bits
///   10 00000000001010        dod(t3) = +10 in the 14-bit bucket
///   0                        v3 == v2
///   00000                    padding
/// = 30 97 ff e0 02 80
/// ```
#[test]
fn golden_bytes_four_samples() {
    let samples = [
        (1000, 1.0f64.to_bits()),
        (2000, 1.0f64.to_bits()),
        (3000, 2.0f64.to_bits()),
        (4010, 2.0f64.to_bits()),
    ];
    let want: Vec<u8> = vec![
        0x00, 0x04, // count
        0xd0, 0x0f, // t0
        0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // v0
        0xe8, 0x07, // t1 delta
        0x30, 0x97, 0xff, 0xe0, 0x02, 0x80, // bit-packed rest
    ];
    assert_eq!(encode(&samples), want);
    let (got, err) = decode(&want);
    assert_eq!(err, None);
    assert_eq!(got, samples);
}

/// One sample at t=0 with value 0: count 1, varint 0, 64 zero bits.
#[test]
fn golden_bytes_single_sample() {
    assert_eq!(encode(&[(0, 0)]), vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // A negative first timestamp uses the zigzag varint: -1 -> 1.
    assert_eq!(
        encode(&[(-1, STALE_NAN_BITS)]),
        vec![0, 1, 0x01, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0x02]
    );
}

/// The value window: a new window is "11" + 5 bits leading + 6 bits length (64 stored as 0),
/// a reused window is "10" + the bits inside the previous window.
#[test]
fn golden_bytes_value_windows() {
    // v0 = 0, v1 = all ones: xor has 0 leading (no cap), 0 trailing, 64 significant -> 0.
    let b = encode(&[(0, 0), (1, u64::MAX)]);
    // header, t0, v0 (8 zero bytes), delta 1, then 11 00000 000000 + 64 ones + pad.
    let mut bits = String::from("11");
    bits += "00000";
    bits += "000000";
    bits += &"1".repeat(64);
    let mut want = vec![0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    want.extend(pack(&bits));
    assert_eq!(b, want);
    // Leading zeros are capped at 31: xor = 1 has 63 leading zeros, 0 trailing.
    let b = encode(&[(0, 0), (1, 1), (2, 0)]);
    // v1: 11 11111 100001 (33 sig bits) + 32 zeros + 1; t2: dod 0 -> 0; v2: xor = 1 fits the
    // window (leading 63 >= 31, trailing 0 >= 0) -> 10 + 33 bits.
    let mut bits = String::from("11");
    bits += "11111";
    bits += "100001";
    bits += &"0".repeat(32);
    bits += "1";
    bits += "0";
    bits += "10";
    bits += &"0".repeat(32);
    bits += "1";
    let mut want = vec![0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    want.extend(pack(&bits));
    assert_eq!(b, want);
}

fn pack(bits: &str) -> Vec<u8> {
    let mut s = bits.to_string();
    while s.len() % 8 != 0 {
        s.push('0');
    }
    (0..s.len())
        .step_by(8)
        .map(|i| u8::from_str_radix(&s[i..i + 8], 2).unwrap())
        .collect()
}

/// The delta-of-delta buckets and their asymmetric limits, exactly as Prometheus.
#[test]
fn dod_buckets_and_limits() {
    let cases: [(i64, &str, u32); 10] = [
        (0, "0", 0),
        (1, "10", 14),
        (8192, "10", 14),  // +2^13 fits 14 bits
        (-8191, "10", 14), // -(2^13 - 1) fits 14 bits
        (-8192, "110", 17),
        (8193, "110", 17),
        (65536, "110", 17),
        (65537, "1110", 20),
        (524288, "1110", 20),
        (524289, "1111", 64),
    ];
    for (dod, prefix, width) in cases {
        // t0 = 0, t1 = 100, t2 = 200 + dod; equal values so each value costs one 0 bit.
        let b = encode(&[(0, 0), (100, 0), (200 + dod, 0)]);
        let rest = &b[2 + 1 + 8 + 1..];
        let bits: String = rest.iter().map(|x| format!("{x:08b}")).collect();
        let payload = if width == 0 {
            String::new()
        } else {
            let v = (dod as u64) & (u64::MAX >> (64 - width));
            format!("{v:0w$b}", w = width as usize)
        };
        // v1 "0", then the dod prefix and payload, then v2 "0", then zero padding.
        let want = format!("0{prefix}{payload}0");
        assert!(
            bits.starts_with(&want),
            "dod {dod}: bits {bits} want {want}"
        );
        assert!(bits[want.len()..].chars().all(|c| c == '0'));
        assert_eq!(bits.len(), want.len().div_ceil(8) * 8, "dod {dod}");
        let (got, err) = decode(&b);
        assert_eq!(err, None);
        assert_eq!(got[2].0, 200 + dod, "dod {dod}");
    }
}

#[test]
fn stale_markers_and_nan_payloads_survive() {
    let vals = [
        STALE_NAN_BITS,
        f64::NAN.to_bits(),
        0x7ff8_dead_beef_0001,
        0xfff0_0000_0000_0001,
        (-0.0f64).to_bits(),
        f64::INFINITY.to_bits(),
        STALE_NAN_BITS,
        1.5f64.to_bits(),
    ];
    let samples: Vec<(i64, u64)> = vals
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 15_000, v))
        .collect();
    let (got, err) = decode(&encode(&samples));
    assert_eq!(err, None);
    assert_eq!(got, samples);
}

#[test]
fn appender_resumes_identically_to_uninterrupted_encoding() {
    let samples: Vec<(i64, u64)> = (0..50)
        .map(|i| {
            (
                1_600_000_000_000 + i * 15_000 + (i % 3),
                ((i * i) as f64 * 0.25).to_bits(),
            )
        })
        .collect();
    let whole = encode(&samples);
    for split in 0..samples.len() {
        let mut c = XorChunk::from_bytes(encode(&samples[..split])).unwrap();
        {
            let mut app = c.appender().unwrap();
            for &(t, v) in &samples[split..] {
                app.append(t, f64::from_bits(v));
            }
        }
        assert_eq!(c.bytes(), &whole[..], "split at {split}");
        assert_eq!(c.num_samples() as usize, samples.len());
        // The owned encoder resumes the same way.
        let mut e =
            XorEncoder::from_chunk(XorChunk::from_bytes(encode(&samples[..split])).unwrap())
                .unwrap();
        for &(t, v) in &samples[split..] {
            e.append(t, f64::from_bits(v));
        }
        assert_eq!(e.finish().bytes(), &whole[..]);
    }
}

#[test]
fn appender_ignores_garbage_padding_bits() {
    let samples = [
        (10, 1.0f64.to_bits()),
        (20, 2.0f64.to_bits()),
        (30, 3.0f64.to_bits()),
    ];
    let mut b = encode(&samples);
    let last = b.len() - 1;
    // Set the padding bits of the last byte; the samples still decode.
    let (_, err) = decode(&b);
    assert_eq!(err, None);
    let used_bits = {
        let mut it = XorIterator::new(&b);
        while it.next() {}
        it.br.bit_pos() % 8
    };
    assert_ne!(used_bits, 0, "test needs padding in the last byte");
    b[last] |= 0xff >> used_bits;
    let mut c = XorChunk::from_bytes(b).unwrap();
    c.appender().unwrap().append(40, 4.0);
    let mut all = samples.to_vec();
    all.push((40, 4.0f64.to_bits()));
    assert_eq!(c.bytes(), &encode(&all)[..]);
}

#[test]
fn seek_finds_first_sample_at_or_after() {
    let samples: Vec<(i64, u64)> = (0..10).map(|i| (i * 10, (i as f64).to_bits())).collect();
    let b = encode(&samples);
    let mut it = XorIterator::new(&b);
    assert!(it.seek(-5));
    assert_eq!(it.at().0, 0);
    assert!(it.seek(35));
    assert_eq!(it.at().0, 40);
    // Seeking backwards stays put.
    assert!(it.seek(10));
    assert_eq!(it.at().0, 40);
    assert!(it.seek(90));
    assert_eq!(it.at().0, 90);
    assert!(!it.seek(91));
    assert!(it.err().is_none());
}

#[test]
fn empty_chunk_and_short_bytes() {
    let c = XorChunk::new();
    assert_eq!(c.bytes(), &[0, 0]);
    assert_eq!(c.num_samples(), 0);
    let mut it = c.iter();
    assert!(!it.next());
    assert!(it.err().is_none());
    assert!(XorChunk::from_bytes(vec![1]).is_err());
    let mut it = XorIterator::new(&[7]);
    assert!(!it.next());
    assert!(matches!(it.err(), Some(Error::Corruption { .. })));
    assert!(!it.seek(0));
}

#[test]
fn truncated_chunk_reports_corruption_at_every_cut() {
    let samples: Vec<(i64, u64)> = (0..120)
        .map(|i| (i * 15_000 + (i % 7) * 13, (i as f64 * 1.1).to_bits()))
        .collect();
    let b = encode(&samples);
    for cut in XOR_HEADER_SIZE..b.len() {
        let (got, err) = decode(&b[..cut]);
        assert!(err.is_some(), "cut at {cut} must report an error");
        assert!(got.len() < samples.len());
        assert_eq!(
            &samples[..got.len()],
            &got[..],
            "cut at {cut} must give a prefix"
        );
    }
}

#[test]
fn lying_count_reports_corruption() {
    let mut b = encode(&[(1, 1), (2, 2), (3, 3)]);
    b[0] = 0xff;
    let (got, err) = decode(&b);
    assert!(got.len() >= 3);
    assert!(err.unwrap().contains("unexpected end"));
}

#[test]
fn invalid_window_reports_corruption() {
    // Second sample: delta 1, value "11" + leading 31 + sig 40 (31 + 40 > 64).
    let mut bits = String::from("11");
    bits += "11111";
    bits += "101000";
    bits += &"1".repeat(40);
    let mut b = vec![0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    b.extend(pack(&bits));
    let (got, err) = decode(&b);
    assert_eq!(got.len(), 1);
    let err = err.unwrap();
    assert!(err.contains("exceed 64"), "{err}");
}

#[test]
fn invalid_window_far_from_the_end_reports_corruption() {
    // As above, but with enough bytes after the bad window for the one-word fast path.
    let mut bits = String::from("11");
    bits += "11111";
    bits += "101000";
    bits += &"1".repeat(40);
    let mut b = vec![0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    b.extend(pack(&bits));
    b.extend([0u8; 16]);
    let (got, err) = decode(&b);
    assert_eq!(got.len(), 1);
    let err = err.unwrap();
    assert!(err.contains("exceed 64"), "{err}");
}

#[test]
fn long_chunk_round_trips_every_bucket_and_window() {
    // Mid-chunk samples are parsed from one buffered word; cycle through every
    // delta-of-delta bucket and value case (same, old window, new window, 64-bit window)
    // many times so that every case meets every alignment of the buffer.
    let dods = [
        0i64,
        1,
        -1,
        8_000,
        -8_000,
        60_000,
        -60_000,
        500_000,
        -500_000,
        1 << 40,
    ];
    let vals = [
        1.0f64.to_bits(),
        1.0f64.to_bits(),
        2.0f64.to_bits(),
        3.0f64.to_bits(),
        u64::MAX,
        1,
        STALE_NAN_BITS,
        0x8000_0000_0000_0001,
        0x0000_ffff_0000_0000,
        0x0000_fffe_0000_0000,
        0x0000_0001_0000_0000,
    ];
    let mut samples = Vec::new();
    let (mut t, mut delta) = (1_700_000_000_000i64, 15_000i64);
    for i in 0..2_000 {
        samples.push((t, vals[(i * 7 + i / 3) % vals.len()]));
        delta += dods[(i * 3 + i / 5) % dods.len()];
        t += delta;
    }
    let (got, err) = decode(&encode(&samples));
    assert_eq!(err, None);
    assert_eq!(got, samples);
}

#[test]
fn resuming_after_equal_values_matches_uninterrupted_encoding() {
    // No value window exists while every value equals the first: a resumed appender must
    // not invent one (it used to resume with a 0/0 window and write "10" + 64 bits).
    let samples = [(0i64, 0u64), (0, 0), (0, 0), (0, 1), (15, 3)];
    for split in 1..samples.len() {
        let mut c = XorChunk::from_bytes(encode(&samples[..split])).unwrap();
        {
            let mut app = c.appender().unwrap();
            for &(t, v) in &samples[split..] {
                app.append(t, f64::from_bits(v));
            }
        }
        assert_eq!(c.bytes(), &encode(&samples)[..], "split at {split}");
    }
}

#[test]
fn varint_overflow_reports_corruption() {
    let mut b = vec![0, 1];
    b.extend([0xff; 10]);
    b.extend([0; 8]);
    let (_, err) = decode(&b);
    assert!(err.unwrap().contains("overflow"));
}

#[test]
fn samples_adapter_and_full_chunk() {
    let mut e = XorEncoder::new();
    for i in 0..u16::MAX as i64 {
        e.append(i, 0.0);
    }
    assert!(e.try_append(1 << 20, 0.0).is_err());
    assert_eq!(e.num_samples(), u16::MAX);
    assert_eq!(e.last_sample(), Some((u16::MAX as i64 - 1, 0.0)));
    let n = e.iter().samples().count();
    assert_eq!(n, u16::MAX as usize);
}

/// The head keeps one encoder per active series; its fixed part must stay small.
#[test]
fn encoder_state_is_small() {
    assert!(std::mem::size_of::<XorEncoder>() <= 64);
    // A fresh encoder holds one small allocation.
    assert!(XorEncoder::new().heap_bytes() <= 128);
    let mut e = XorEncoder::new();
    for i in 0..120 {
        e.append(i * 15_000, 1.0 + i as f64);
    }
    let c = e.finish();
    assert_eq!(c.num_samples(), 120);
}

fn arb_timestamps() -> impl Strategy<Value = Vec<i64>> {
    (
        any::<i64>(),
        prop::collection::vec(
            prop_oneof![
                4 => 0i64..100_000,
                2 => Just(15_000i64),
                1 => -1_000_000i64..1_000_000,
                1 => any::<i64>(),
            ],
            0..200,
        ),
    )
        .prop_map(|(start, deltas)| {
            let mut t = start;
            let mut out = vec![t];
            for d in deltas {
                t = t.wrapping_add(d);
                out.push(t);
            }
            out
        })
}

fn arb_value_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => (-1e6f64..1e6).prop_map(f64::to_bits),
        1 => Just(STALE_NAN_BITS),
        1 => (0u64..1 << 51).prop_map(|p| 0x7ff8_0000_0000_0000 | p),
        1 => Just(0u64),
    ]
}

proptest! {
    #[test]
    fn round_trip_arbitrary_samples(
        ts in arb_timestamps(),
        vals in prop::collection::vec(arb_value_bits(), 201),
    ) {
        let samples: Vec<(i64, u64)> = ts.iter().copied().zip(vals.iter().copied()).collect();
        let b = encode(&samples);
        let (got, err) = decode(&b);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, samples.clone());
        // Resuming at any point decodes to the same samples. (Bytes can differ when every
        // value so far repeated the first one: like Prometheus, a resumed appender then
        // starts without the "no XOR window yet" sentinel.)
        let split = samples.len() / 2;
        let mut c = XorChunk::from_bytes(encode(&samples[..split])).unwrap();
        {
            let mut app = c.appender().unwrap();
            for &(t, v) in &samples[split..] {
                app.append(t, f64::from_bits(v));
            }
        }
        let (resumed, err) = decode(c.bytes());
        prop_assert_eq!(err, None);
        prop_assert_eq!(resumed, samples);
    }

    #[test]
    fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..300), seek in any::<i64>()) {
        let (got, _) = decode(&b);
        prop_assert!(got.len() <= usize::from(u16::MAX));
        let mut it = XorIterator::new(&b);
        let _ = it.seek(seek);
        if let Ok(mut c) = XorChunk::from_bytes(b) {
            if let Ok(mut app) = c.appender() {
                let _ = app.try_append(i64::MAX, 1.0);
            }
        }
    }
}
