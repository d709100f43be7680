//! Tests for block chunk segment files: golden bytes, round trips, rotation, damage
//! detection with file and offset, bad references, and interoperability with a segment file
//! written by Prometheus itself (`testdata/prometheus-2.42-block`).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::chunkenc::{XorEncoder, XorIterator};
use std::path::Path;

/// The 4-sample XOR chunk whose bits are derived by hand in `chunkenc` tests.
const XOR_4: [u8; 20] = [
    0x00, 0x04, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x30, 0x97, 0xff, 0xe0, 0x02,
    0x80,
];

fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/chunks/testdata/prometheus-2.42-block")
}

#[test]
fn golden_bytes_header_and_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("chunks");
    let mut w = ChunkWriter::new(&cdir).unwrap();
    let r = w.write_chunk(Encoding::Xor, &XOR_4).unwrap();
    w.close().unwrap();
    assert_eq!(r, 8, "first chunk: segment index 0, offset 8");
    let mut want = vec![0x85, 0xbd, 0x40, 0xdd, 0x01, 0x00, 0x00, 0x00]; // magic, v1, pad
    want.push(20); // uvarint data length
    want.push(0x01); // encoding XOR
    want.extend_from_slice(&XOR_4);
    // CRC32-Castagnoli of encoding byte + data, computed with an independent bitwise
    // implementation (check value of "123456789" = 0xe3069283).
    want.extend_from_slice(&[0xeb, 0x42, 0xc2, 0xd0]);
    assert_eq!(std::fs::read(cdir.join("000001")).unwrap(), want);

    let rd = ChunkReader::open(&cdir).unwrap();
    assert_eq!(rd.chunk(r).unwrap(), (Encoding::Xor, &XOR_4[..]));
    assert_eq!(rd.size(), want.len() as u64);
}

#[test]
fn round_trip_many_chunks_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments force rotation; each chunk is 1+1+100+4 = 106 bytes (112 counted).
    let mut w = ChunkWriter::with_segment_size(dir.path(), 8 + 3 * 112).unwrap();
    let mut refs = Vec::new();
    for i in 0..10u8 {
        let data = vec![i; 100];
        refs.push((w.write_chunk(Encoding::Xor, &data).unwrap(), data));
    }
    // A chunk bigger than a segment gets its own file.
    let big = vec![0xab; 1000];
    refs.push((w.write_chunk(Encoding::Histogram, &big).unwrap(), big));
    assert_eq!(w.num_segments(), 5);
    w.close().unwrap();
    let names: Vec<u64> = sequence_files(dir.path())
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(names, vec![1, 2, 3, 4, 5]);
    for f in sequence_files(dir.path()).unwrap() {
        assert!(std::fs::metadata(&f.1).unwrap().len() <= 8 + 3 * 112 || f.0 == 5);
    }
    let rd = ChunkReader::open(dir.path()).unwrap();
    assert_eq!(rd.num_segments(), 5);
    for (i, (r, data)) in refs.iter().enumerate() {
        let cr = ChunkRef(*r);
        let want_seq = if i == 10 { 4 } else { i / 3 };
        assert_eq!(cr.seq() as usize, want_seq, "chunk {i}");
        let (enc, got) = rd.chunk(*r).unwrap();
        assert_eq!(got, &data[..]);
        assert_eq!(
            enc,
            if i == 10 {
                Encoding::Histogram
            } else {
                Encoding::Xor
            }
        );
    }
}

#[test]
fn writer_refuses_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("000001"), b"x").unwrap();
    assert!(ChunkWriter::new(dir.path()).is_err());
}

fn corruption_at(e: Error) -> (std::path::PathBuf, u64, String) {
    match e {
        Error::Corruption {
            file,
            offset,
            reason,
        } => (file, offset, reason),
        other => panic!("want corruption, got {other}"),
    }
}

#[test]
fn crc_damage_is_detected_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ChunkWriter::new(dir.path()).unwrap();
    let r1 = w.write_chunk(Encoding::Xor, &XOR_4).unwrap();
    let r2 = w.write_chunk(Encoding::Xor, &XOR_4).unwrap();
    w.close().unwrap();
    let path = dir.path().join("000001");
    let mut b = std::fs::read(&path).unwrap();
    // Flip one data bit of the second chunk.
    let off2 = ChunkRef(r2).offset() as usize;
    b[off2 + 2 + 5] ^= 0x10;
    std::fs::write(&path, &b).unwrap();
    let rd = ChunkReader::open(dir.path()).unwrap();
    assert!(rd.chunk(r1).is_ok());
    let (file, offset, reason) = corruption_at(rd.chunk(r2).unwrap_err());
    assert_eq!(file, path);
    assert_eq!(offset, off2 as u64);
    assert!(reason.contains("checksum"), "{reason}");
    // Flipping a checksum bit is caught too.
    let mut b = std::fs::read(&path).unwrap();
    let last = b.len() - 1;
    b[off2 + 2 + 5] ^= 0x10;
    b[last] ^= 1;
    std::fs::write(&path, &b).unwrap();
    let rd = ChunkReader::open(dir.path()).unwrap();
    assert!(rd.chunk(r2).is_err());
}

#[test]
fn bad_refs_lengths_and_headers_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ChunkWriter::new(dir.path()).unwrap();
    let r = w.write_chunk(Encoding::Xor, &XOR_4).unwrap();
    w.close().unwrap();
    let rd = ChunkReader::open(dir.path()).unwrap();
    for bad in [
        ChunkRef::new(1, 8).0,      // no second segment
        ChunkRef::new(0, 0).0,      // inside the header
        ChunkRef::new(0, 9).0,      // mid-chunk: reads garbage length
        ChunkRef::new(0, 10_000).0, // past the end
        r + 34,                     // exactly at the end
    ] {
        let (_, _, reason) = corruption_at(rd.chunk(bad).unwrap_err());
        assert!(!reason.is_empty());
    }
    // A lying length that runs past the end.
    let path = dir.path().join("000001");
    let mut b = std::fs::read(&path).unwrap();
    b[8] = 0x7f;
    std::fs::write(&path, &b).unwrap();
    let rd = ChunkReader::open(dir.path()).unwrap();
    let (_, off, reason) = corruption_at(rd.chunk(r).unwrap_err());
    assert_eq!(off, 8);
    assert!(reason.contains("past the end"), "{reason}");
    // Bad magic, short file.
    b[0] = 0;
    std::fs::write(&path, &b).unwrap();
    let (file, off, _) = corruption_at(ChunkReader::open(dir.path()).unwrap_err());
    assert_eq!((file, off), (path.clone(), 0));
    std::fs::write(&path, &b[..5]).unwrap();
    assert!(ChunkReader::open(dir.path()).is_err());
    // Unknown version.
    let mut b = std::fs::read(&path).unwrap();
    b.resize(8, 0);
    b[..4].copy_from_slice(&MAGIC_CHUNKS.to_be_bytes());
    b[4] = 2;
    std::fs::write(&path, &b).unwrap();
    let (_, off, _) = corruption_at(ChunkReader::open(dir.path()).unwrap_err());
    assert_eq!(off, 4);
}

#[test]
fn reader_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ChunkReader>();
}

/// Reads `testdata/.../samples.txt`: `metric value timestamp` lines, grouped by metric in
/// file order.
fn fixture_samples() -> Vec<(String, Vec<(i64, u64)>)> {
    let text = std::fs::read_to_string(fixture_dir().join("samples.txt")).unwrap();
    let mut out: Vec<(String, Vec<(i64, u64)>)> = Vec::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (name, v, t) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let sample = (
            t.parse::<i64>().unwrap(),
            v.parse::<f64>().unwrap().to_bits(),
        );
        match out.last_mut() {
            Some((n, s)) if n == name => s.push(sample),
            _ => out.push((name.to_string(), vec![sample])),
        }
    }
    out
}

/// Walks the chunks of a segment file in order, returning their refs.
fn walk_refs(seg: &[u8]) -> Vec<u64> {
    let mut refs = Vec::new();
    let mut off = SEGMENT_HEADER_SIZE;
    while off < seg.len() {
        refs.push(off as u64);
        let (len, n) = read_len_uvarint(&seg[off..]).unwrap();
        off += n + 1 + len as usize + 4;
    }
    refs
}

#[test]
fn reads_prometheus_written_segment_and_reencodes_it_byte_for_byte() {
    let cdir = fixture_dir().join("chunks");
    let prom_file = std::fs::read(cdir.join("000001")).unwrap();
    let rd = ChunkReader::open(&cdir).unwrap();
    let refs = walk_refs(&prom_file);
    assert_eq!(refs.len(), 4, "two series with two chunks each");

    // Decode: the chunks hold exactly the samples promtool dumps, series after series.
    let mut decoded = Vec::new();
    for &r in &refs {
        let (enc, data) = rd.chunk(r).unwrap();
        assert_eq!(enc, Encoding::Xor);
        let mut it = XorIterator::new(data);
        let mut s = Vec::new();
        while it.next() {
            let (t, v) = it.at();
            s.push((t, v.to_bits()));
        }
        assert!(it.err().is_none());
        decoded.push(s);
    }
    let want = fixture_samples();
    assert_eq!(want.len(), 2);
    // Prometheus spreads a series' samples evenly over the chunks it predicts: 143 + 7.
    assert_eq!(decoded[0].len(), 143);
    assert_eq!(decoded[1].len(), 7);
    assert_eq!([&decoded[0][..], &decoded[1][..]].concat(), want[0].1);
    assert_eq!([&decoded[2][..], &decoded[3][..]].concat(), want[1].1);

    // Encode the same samples ourselves and write them: the file is identical.
    let dir = tempfile::tempdir().unwrap();
    let mut w = ChunkWriter::new(dir.path()).unwrap();
    for (i, s) in decoded.iter().enumerate() {
        let mut e = XorEncoder::new();
        for &(t, v) in s {
            e.append(t, f64::from_bits(v));
        }
        assert_eq!(e.bytes(), rd.chunk(refs[i]).unwrap().1, "chunk {i}");
        assert_eq!(w.write_chunk(Encoding::Xor, e.bytes()).unwrap(), refs[i]);
    }
    w.close().unwrap();
    assert_eq!(std::fs::read(dir.path().join("000001")).unwrap(), prom_file);
}
