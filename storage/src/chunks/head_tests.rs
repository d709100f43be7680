//! Tests for head chunk files: golden bytes, reading the file being written and finished
//! files, reopening and replay, rotation, truncation, and cutting a torn tail at every offset.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::chunkenc::XorEncoder;

const XOR_4: [u8; 20] = [
    0x00, 0x04, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x30, 0x97, 0xff, 0xe0, 0x02,
    0x80,
];

fn collect(dir: &Path) -> Vec<HeadChunkInfo> {
    let mut out = Vec::new();
    iterate_head_chunks(dir, &mut |c| {
        out.push(c);
        Ok(())
    })
    .unwrap();
    out
}

fn xor_chunk(n: u16, seed: i64) -> Vec<u8> {
    let mut e = XorEncoder::new();
    for i in 0..i64::from(n) {
        e.append(seed + i * 15_000, (seed + i) as f64 * 0.5);
    }
    e.bytes().to_vec()
}

#[test]
fn golden_bytes_header_and_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HeadChunkWriter::open(dir.path()).unwrap();
    let r = w.write(7, 1000, 4010, Encoding::Xor, &XOR_4).unwrap();
    w.sync().unwrap();
    assert_eq!(r, (1u64 << 32) | 8, "file 000001, offset 8");
    let mut want = vec![0x01, 0x30, 0xbc, 0x91, 0x01, 0, 0, 0]; // magic, v1, pad
    want.extend_from_slice(&7u64.to_be_bytes()); // series ref
    want.extend_from_slice(&1000u64.to_be_bytes()); // mint
    want.extend_from_slice(&4010u64.to_be_bytes()); // maxt
    want.push(0x01); // encoding XOR
    want.push(20); // uvarint data length
    want.extend_from_slice(&XOR_4);
    // CRC32C over series ref..data, from an independent bitwise implementation.
    want.extend_from_slice(&[0x79, 0xcf, 0x2b, 0x0c]);
    assert_eq!(std::fs::read(dir.path().join("000001")).unwrap(), want);
}

#[test]
fn write_read_reopen_iterate() {
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    {
        let mut w = HeadChunkWriter::open(dir.path()).unwrap();
        let rd = w.reader();
        for s in 1..=5u64 {
            let data = xor_chunk(120, s as i64 * 1000);
            let r = w
                .write(s, s as i64, s as i64 + 100, Encoding::Xor, &data)
                .unwrap();
            // Readable at once from the file still being written.
            let c = rd.chunk(r).unwrap();
            assert_eq!(
                (c.series_ref, c.mint, c.maxt),
                (s, s as i64, s as i64 + 100)
            );
            assert_eq!(c.data(), &data[..]);
            written.push((r, s, data));
            if s == 3 {
                w.cut_file().unwrap();
            }
        }
        assert_eq!(w.file_seqs(), vec![1, 2]);
        // Chunks in the finished file are still readable.
        assert_eq!(rd.chunk(written[0].0).unwrap().data(), &written[0].2[..]);
        w.sync().unwrap();
    }
    let infos = collect(dir.path());
    assert_eq!(infos.len(), 5);
    for (info, (r, s, _)) in infos.iter().zip(&written) {
        assert_eq!(info.chunk_ref, *r);
        assert_eq!(info.series_ref, *s);
        assert_eq!((info.mint, info.maxt), (*s as i64, *s as i64 + 100));
        assert_eq!(info.encoding, Encoding::Xor);
        assert!(!info.out_of_order);
        assert_eq!(info.num_samples, 120);
    }
    // Reopening continues in a new file and still reads the old ones.
    let mut w = HeadChunkWriter::open(dir.path()).unwrap();
    let r = w.write(9, 0, 1, Encoding::Xor, &XOR_4).unwrap();
    assert_eq!(ChunkRef(r).seq(), 3);
    assert_eq!(w.current_file_seq(), Some(3));
    let rd = w.reader();
    for (r, s, data) in &written {
        let c = rd.chunk(*r).unwrap();
        assert_eq!(c.series_ref, *s);
        assert_eq!(c.data(), &data[..]);
    }
}

#[test]
fn files_rotate_at_max_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = vec![0u8; 100];
    // Record = 25 + 1 + 100 + 4 = 130 bytes; two fit after the 8-byte header in 300 bytes.
    let mut w = HeadChunkWriter::with_max_file_size(dir.path(), 300).unwrap();
    let refs: Vec<u64> = (1..=5)
        .map(|s| w.write(s, 0, 0, Encoding::Xor, &data).unwrap())
        .collect();
    let seqs: Vec<u32> = refs.iter().map(|r| ChunkRef(*r).seq()).collect();
    assert_eq!(seqs, vec![1, 1, 2, 2, 3]);
    assert_eq!(ChunkRef(refs[1]).offset(), 8 + 130);
    assert!(w.write(1, 0, 0, Encoding::Xor, &[0u8; 300]).is_err());
    for (_, p) in sequence_files(dir.path()).unwrap() {
        assert!(std::fs::metadata(p).unwrap().len() <= 300);
    }
    assert_eq!(collect(dir.path()).len(), 5);
}

#[test]
fn truncate_below_deletes_old_files_but_keeps_handed_out_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HeadChunkWriter::open(dir.path()).unwrap();
    let rd = w.reader();
    let r1 = w.write(1, 0, 10, Encoding::Xor, &XOR_4).unwrap();
    w.cut_file().unwrap();
    let r2 = w.write(2, 0, 10, Encoding::Xor, &XOR_4).unwrap();
    w.cut_file().unwrap();
    let held = rd.chunk(r1).unwrap();
    // The current file (3) is never deleted even if below the bound.
    w.truncate_below(10).unwrap();
    assert_eq!(w.file_seqs(), vec![3]);
    assert!(!dir.path().join("000001").exists());
    assert!(!dir.path().join("000002").exists());
    assert!(matches!(rd.chunk(r1), Err(Error::Corruption { .. })));
    assert!(rd.chunk(r2).is_err());
    assert_eq!(held.data(), &XOR_4[..]);
}

#[test]
fn reader_rejects_bad_refs() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HeadChunkWriter::open(dir.path()).unwrap();
    let r = w.write(1, 0, 10, Encoding::Xor, &XOR_4).unwrap();
    let rd = w.reader();
    for bad in [r + 1, r + 1000, (5u64 << 32) | 8, 1u64 << 32] {
        assert!(
            matches!(rd.chunk(bad), Err(Error::Corruption { .. })),
            "{bad:#x}"
        );
    }
}

/// Three records; cutting the last file anywhere inside the third keeps the first two and
/// truncates the file to the end of the second.
#[test]
fn torn_tail_is_cut_at_every_offset() {
    let src = tempfile::tempdir().unwrap();
    let (ends, full) = {
        let mut w = HeadChunkWriter::open(src.path()).unwrap();
        let mut ends = Vec::new();
        for s in 1..=3u64 {
            w.write(s, 0, 10, Encoding::Xor, &xor_chunk(10, s as i64))
                .unwrap();
            ends.push(std::fs::metadata(src.path().join("000001")).unwrap().len());
        }
        (ends, std::fs::read(src.path().join("000001")).unwrap())
    };
    for cut in ends[1]..ends[2] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("000001");
        std::fs::write(&p, &full[..cut as usize]).unwrap();
        let infos = collect(dir.path());
        assert_eq!(infos.len(), 2, "cut at {cut}");
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            ends[1],
            "cut at {cut}"
        );
        // After repair, a writer continues in a new file.
        let mut w = HeadChunkWriter::open(dir.path()).unwrap();
        let r = w.write(4, 0, 1, Encoding::Xor, &XOR_4).unwrap();
        assert_eq!(ChunkRef(r).seq(), 2);
    }
    // A flipped bit in the last record is cut the same way.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("000001");
    let mut damaged = full.clone();
    damaged[ends[1] as usize + 30] ^= 0x04;
    std::fs::write(&p, &damaged).unwrap();
    assert_eq!(collect(dir.path()).len(), 2);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), ends[1]);
}

#[test]
fn header_only_torn_last_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut w = HeadChunkWriter::open(dir.path()).unwrap();
        w.write(1, 0, 10, Encoding::Xor, &XOR_4).unwrap();
        w.sync().unwrap();
    }
    std::fs::write(dir.path().join("000002"), [0x01, 0x30]).unwrap();
    assert_eq!(collect(dir.path()).len(), 1);
    assert!(!dir.path().join("000002").exists());
    // An empty last file is also removed by the writer on open.
    std::fs::write(dir.path().join("000002"), []).unwrap();
    let mut w = HeadChunkWriter::open(dir.path()).unwrap();
    assert_eq!(w.file_seqs(), vec![1]);
    let r = w.write(1, 0, 10, Encoding::Xor, &XOR_4).unwrap();
    assert_eq!(ChunkRef(r).seq(), 2);
}

#[test]
fn corruption_in_an_earlier_file_is_reported_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut w = HeadChunkWriter::open(dir.path()).unwrap();
        w.write(1, 0, 10, Encoding::Xor, &XOR_4).unwrap();
        w.write(2, 0, 10, Encoding::Xor, &XOR_4).unwrap();
        w.cut_file().unwrap();
        w.write(3, 0, 10, Encoding::Xor, &XOR_4).unwrap();
        w.sync().unwrap();
    }
    let p1 = dir.path().join("000001");
    let mut b = std::fs::read(&p1).unwrap();
    let second = 8 + 25 + 1 + 20 + 4;
    b[second + 40] ^= 0xff;
    std::fs::write(&p1, &b).unwrap();
    let mut seen = 0;
    let err = iterate_head_chunks(dir.path(), &mut |_| {
        seen += 1;
        Ok(())
    })
    .unwrap_err();
    assert_eq!(seen, 1);
    match err {
        Error::Corruption {
            file,
            offset,
            reason,
        } => {
            assert_eq!(file, p1);
            assert_eq!(offset, second as u64);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("want corruption, got {other}"),
    }
    // The file is left alone; the caller decides to drop it and what follows.
    assert_eq!(std::fs::read(&p1).unwrap(), b);
    remove_head_chunk_files_from(dir.path(), 1).unwrap();
    assert!(sequence_files(dir.path()).unwrap().is_empty());
}

#[test]
fn zero_filled_tail_ends_a_file_and_ooo_bit_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("000001");
    let mut b = file_header(MAGIC_HEAD_CHUNKS, HEAD_CHUNKS_FORMAT_V1).to_vec();
    let start = b.len();
    b.extend_from_slice(&5u64.to_be_bytes());
    b.extend_from_slice(&1i64.to_be_bytes());
    b.extend_from_slice(&2i64.to_be_bytes());
    b.push(Encoding::Xor.as_u8() | OUT_OF_ORDER_MASK);
    b.push(XOR_4.len() as u8);
    b.extend_from_slice(&XOR_4);
    let crc = crc32c::crc32c(&b[start..]);
    b.extend_from_slice(&crc.to_be_bytes());
    let len = b.len();
    b.extend_from_slice(&[0u8; 4096]); // preallocated space, as Prometheus leaves it
    std::fs::write(&p, &b).unwrap();
    let infos = collect(dir.path());
    assert_eq!(infos.len(), 1);
    assert!(infos[0].out_of_order);
    assert_eq!(infos[0].encoding, Encoding::Xor);
    assert_eq!(infos[0].num_samples, 4);
    // Zeros hold no chunks: the last file is cut after its last record.
    assert_eq!(std::fs::metadata(&p).unwrap().len(), len as u64);
}

#[test]
fn concurrent_reader_sees_chunks_as_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HeadChunkWriter::with_max_file_size(dir.path(), 4096).unwrap();
    let rd = w.reader();
    let (tx, rx) = std::sync::mpsc::channel::<(u64, u64, Vec<u8>)>();
    let t = std::thread::spawn(move || {
        let mut n = 0;
        for (r, s, data) in rx {
            let c = rd.chunk(r).unwrap();
            assert_eq!(c.series_ref, s);
            assert_eq!(c.data(), &data[..]);
            n += 1;
        }
        n
    });
    for s in 1..=200u64 {
        let data = xor_chunk((s % 50) as u16 + 1, s as i64);
        let r = w.write(s, 0, 1, Encoding::Xor, &data).unwrap();
        tx.send((r, s, data)).unwrap();
    }
    drop(tx);
    assert_eq!(t.join().unwrap(), 200);
    assert!(w.file_seqs().len() > 1);
}

#[test]
fn missing_directory_has_no_chunks() {
    let dir = tempfile::tempdir().unwrap();
    assert!(collect(&dir.path().join("nope")).is_empty());
}

#[test]
fn writer_and_reader_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<HeadChunkWriter>();
    assert_send_sync::<HeadChunkReader>();
    assert_send_sync::<HeadChunk>();
}

fn fixture_samples(path: &Path) -> Vec<(String, Vec<(i64, u64)>)> {
    let text = std::fs::read_to_string(path).unwrap();
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

#[test]
fn reads_prometheus_written_head_chunk_file() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/chunks/testdata/prometheus-2.42-head");
    let want = fixture_samples(&fixture.join("samples.txt"));
    assert_eq!(want.len(), 2);
    // Replay repairs files, so work on a copy.
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read(fixture.join("chunks_head/000001")).unwrap();
    std::fs::write(dir.path().join("000001"), &original).unwrap();
    let infos = collect(dir.path());
    assert!(infos.len() >= 4, "found {} chunks", infos.len());
    // Only the zero tail was cut.
    let new_len = std::fs::metadata(dir.path().join("000001")).unwrap().len() as usize;
    assert!(original[new_len..].iter().all(|&b| b == 0));
    let w = HeadChunkWriter::open(dir.path()).unwrap();
    let rd = w.reader();
    let mut per_series: BTreeMap<u64, Vec<(i64, u64)>> = BTreeMap::new();
    for info in &infos {
        assert_eq!(info.encoding, Encoding::Xor);
        assert!(!info.out_of_order);
        let c = rd.chunk(info.chunk_ref).unwrap();
        assert_eq!(
            (c.series_ref, c.mint, c.maxt),
            (info.series_ref, info.mint, info.maxt)
        );
        let mut it = crate::chunkenc::XorIterator::new(c.data());
        let mut s = Vec::new();
        while it.next() {
            let (t, v) = it.at();
            s.push((t, v.to_bits()));
        }
        assert!(it.err().is_none());
        assert_eq!(s.len(), usize::from(info.num_samples));
        assert_eq!((s[0].0, s[s.len() - 1].0), (info.mint, info.maxt));
        // Re-encoding gives Prometheus' bytes.
        let mut e = XorEncoder::new();
        for &(t, v) in &s {
            e.append(t, f64::from_bits(v));
        }
        assert_eq!(e.bytes(), c.data());
        per_series.entry(info.series_ref).or_default().extend(s);
    }
    // Series refs are assigned in order of creation: 1 for the first series, 2 for the next.
    assert_eq!(per_series.len(), 2);
    for ((_, got), (name, all)) in per_series.iter().zip(&want) {
        assert!(
            got.len() > 120,
            "{name}: {} samples in head chunks",
            got.len()
        );
        assert_eq!(&all[..got.len()], &got[..], "{name}");
    }
}
