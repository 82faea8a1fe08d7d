//! A fuzzing harness on stable Rust for the CSV, IDX and gzip readers:
//! proptest mutates valid inputs (bit flips, truncations, splices of special
//! text, huge counts in IDX headers, gzip around either) and every case must
//! end in a success or an input error (exit code 2 in the CLI), never a
//! panic or another kind of error, and never a large allocation.
//!
//! The bound on memory: the peak of bytes live during one load, above what
//! was live before it, stays under `64 MiB + 64 x input bytes`. 64 per byte
//! covers the parsed floats (4 per value, a value takes 2 bytes of text at
//! least), vector doubling and gzip's expansion of these small inputs; 64 MiB
//! covers the loaders' fixed costs (buffers, the csv crate's record of up to
//! `MAX_RECORD_BYTES`). A header that claims gigabytes must cost nothing.
//!
//! `FUZZ_CASES` cases per reader (default 64, a few seconds); a longer run:
//! `FUZZ_CASES=20000 cargo test --release --test fuzz_data`.
//! The counting allocator makes this its own test binary, with one #[test],
//! so no other test's allocations mix in.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

mod peak_alloc;

use peak_alloc::{peak_of, PeakAllocator};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use wgpu_mlp::data::{load_csv, load_idx, read_idx, CsvOptions, TargetColumn};

#[global_allocator]
static GLOBAL: PeakAllocator = PeakAllocator;

/// The fixed part of the bound (see the module docs).
const FIXED_BYTES: usize = 64 << 20;
/// The part proportional to the input's size on disk.
const BYTES_PER_INPUT_BYTE: usize = 64;

/// The largest peak seen per reader, for the report at the end.
static CSV_PEAK: AtomicUsize = AtomicUsize::new(0);
static IDX_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Success or an input error, and a peak within the bound.
fn check<T>(what: &str, result: wgpu_mlp::Result<T>, peak: usize, input: usize) -> Result<(), TestCaseError> {
    if let Err(error) = &result {
        prop_assert!(error.is_bad_input(), "{what}: not an input error: {error:?}");
    }
    let bound = FIXED_BYTES + BYTES_PER_INPUT_BYTE * input;
    prop_assert!(peak <= bound, "{what}: peak {peak} bytes above the bound {bound} for {input} input bytes");
    Ok(())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// One change to a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip bit `bit` of the byte at `at` (a position, modulo the length).
    Flip { at: usize, bit: u8 },
    /// Cut the bytes from `at` on.
    Truncate { at: usize },
    /// Insert these bytes at `at`.
    Splice { at: usize, bytes: Vec<u8> },
    /// Overwrite 4 bytes at `at` with this big-endian number (IDX counts).
    Count { at: usize, value: u32 },
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let at = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
        match self {
            Mutation::Flip { at: pos, bit } if !bytes.is_empty() => {
                let i = pos % bytes.len();
                bytes[i] ^= 1 << (bit % 8);
            }
            Mutation::Truncate { at: pos } => bytes.truncate(at(*pos, bytes.len())),
            Mutation::Splice { at: pos, bytes: insert } => {
                let i = at(*pos, bytes.len());
                bytes.splice(i..i, insert.iter().copied());
            }
            Mutation::Count { at: pos, value } if bytes.len() >= 4 => {
                let i = pos % (bytes.len() - 3);
                bytes[i..i + 4].copy_from_slice(&value.to_be_bytes());
            }
            _ => {}
        }
    }
}

/// Text a CSV parser finds hard: special floats, quotes, separators, NULs,
/// invalid UTF-8, and a long field.
fn special_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"NaN".to_vec()),
        Just(b"inf".to_vec()),
        Just(b"-inf".to_vec()),
        Just(b"1e39".to_vec()),
        Just(b"-1e-50".to_vec()),
        Just(b"1e308".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\"a,\nb\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"70000".to_vec()),
        Just(b"4294967296".to_vec()),
        Just(b"-0".to_vec()),
        (1usize..200_000).prop_map(|n| vec![b'9'; n]),
        proptest::collection::vec(any::<u8>(), 1..16),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let huge =
        prop_oneof![Just(0u32), Just(1), Just(255), Just(4_000_000), Just(1 << 31), Just(u32::MAX), any::<u32>()];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), special_text()).prop_map(|(at, bytes)| Mutation::Splice { at, bytes }),
        (any::<usize>(), huge).prop_map(|(at, value)| Mutation::Count { at, value }),
    ]
}

/// A valid numeric CSV: `rows` x `cols` (the last a class label 0..3), with
/// or without a header.
fn csv_text(rows: usize, cols: usize, header: bool, seed: u32) -> Vec<u8> {
    let mut text = String::new();
    if header {
        text += &(0..cols).map(|c| format!("c{c}")).collect::<Vec<_>>().join(",");
        text.push('\n');
    }
    for r in 0..rows {
        let values: Vec<String> = (0..cols)
            .map(|c| if c + 1 == cols { ((r as u32 + seed) % 3).to_string() } else { format!("{}.5", r * 7 + c) })
            .collect();
        text += &values.join(",");
        text.push('\n');
    }
    text.into_bytes()
}

/// How a case reads its CSV.
fn csv_options() -> impl Strategy<Value = CsvOptions> {
    let target = prop_oneof![
        Just(vec![]),
        (0usize..6).prop_map(|i| vec![TargetColumn::Index(i)]),
        (0usize..6).prop_map(|i| vec![TargetColumn::Index(i), TargetColumn::Index(i)]),
        (0usize..6).prop_map(|i| vec![TargetColumn::Name(format!("c{i}"))]),
    ];
    (target, proptest::option::of(Just(true)), 0usize..3, any::<bool>(), proptest::option::of(0usize..5)).prop_map(
        |(target, header, skip_rows, classify, classes)| CsvOptions {
            target,
            header,
            skip_rows,
            classify,
            classes,
            delimiter: b',',
            ..Default::default()
        },
    )
}

/// A fresh scratch folder for this test binary.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-fuzz-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() })
}

fn fuzz_csv(dir: &Path) {
    let input = (1usize..30, 2usize..6, any::<bool>(), any::<u32>(), proptest::collection::vec(mutation(), 0..4));
    let strategy = (input, any::<(bool, bool)>(), proptest::collection::vec(mutation(), 0..2), csv_options());
    let path = dir.join("case.csv");
    runner()
        .run(&strategy, |((rows, cols, header, seed, mutations), (zip, mutate_zip), zip_mutations, options)| {
            let mut bytes = csv_text(rows, cols, header, seed);
            mutations.iter().for_each(|m| m.apply(&mut bytes));
            if zip {
                bytes = gzip(&bytes);
                if mutate_zip {
                    zip_mutations.iter().for_each(|m| m.apply(&mut bytes));
                }
            }
            std::fs::write(&path, &bytes).unwrap();
            let (result, peak) = peak_of(|| load_csv(&path, &options));
            CSV_PEAK.fetch_max(peak, Ordering::Relaxed);
            check("csv", result, peak, bytes.len())
        })
        .unwrap();
}

/// An IDX file of unsigned bytes with these dimensions and values.
fn idx_bytes(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter().for_each(|d| bytes.extend_from_slice(&d.to_be_bytes()));
    bytes.extend_from_slice(values);
    bytes
}

const IDX_FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

fn fuzz_idx(dir: &Path) {
    let file_mutations = proptest::collection::vec((0usize..4, mutation()), 0..4);
    let strategy = (1usize..20, 1usize..5, 1usize..5, any::<bool>(), file_mutations, proptest::option::of(0usize..12));
    runner()
        .run(&strategy, |(count, rows, cols, zip, mutations, classes)| {
            let (train, test) = (count + 2, count);
            let mut files: Vec<Vec<u8>> = [train, test]
                .into_iter()
                .flat_map(|n| {
                    let pixels: Vec<u8> = (0..n * rows * cols).map(|i| (i * 31 % 256) as u8).collect();
                    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
                    let dims = [n as u32, rows as u32, cols as u32];
                    [idx_bytes(&dims, &pixels), idx_bytes(&[n as u32], &labels)]
                })
                .collect();
            // Header mutations (counts, flips) hit the raw bytes; with gzip,
            // later ones may hit the compressed stream instead.
            for (file, mutation) in &mutations {
                mutation.apply(&mut files[*file]);
            }
            let mut input = 0;
            for (name, bytes) in IDX_FILES.iter().zip(&mut files) {
                let _ = std::fs::remove_file(dir.join(name));
                let _ = std::fs::remove_file(dir.join(format!("{name}.gz")));
                let (name, bytes) =
                    if zip { (format!("{name}.gz"), gzip(bytes)) } else { (name.to_string(), bytes.clone()) };
                input += bytes.len();
                std::fs::write(dir.join(name), bytes).unwrap();
            }
            let (result, peak) = peak_of(|| load_idx(dir, classes));
            IDX_PEAK.fetch_max(peak, Ordering::Relaxed);
            check("idx", result, peak, input)?;
            let first = dir.join(if zip { format!("{}.gz", IDX_FILES[0]) } else { IDX_FILES[0].to_string() });
            let (result, peak) = peak_of(|| read_idx(&first));
            check("read_idx", result, peak, input)
        })
        .unwrap();
}

/// Gzip bombs: a header claiming 4 million images over a body of 64 MiB of
/// zeros (a 64 KiB file), once against a labels file that disagrees and once
/// against one that agrees (then the body is cut short of the claim).
fn gzip_bombs(dir: &Path) {
    let zeros = vec![0u8; 64 << 20];
    for labels in [10u32, 4_000_000] {
        let images = gzip(&idx_bytes(&[4_000_000, 28, 28], &zeros));
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), &images).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&idx_bytes(&[labels], &[1; 10]))).unwrap();
        std::fs::write(dir.join(IDX_FILES[2]), idx_bytes(&[1, 28, 28], &[0; 784])).unwrap();
        std::fs::write(dir.join(IDX_FILES[3]), idx_bytes(&[1], &[1])).unwrap();
        let (result, peak) = peak_of(|| load_idx(dir, None));
        let error = result.expect_err("a bomb is refused").to_string();
        assert!(error.contains("4000000"), "{error}");
        if labels == 10 {
            assert!(peak < 1 << 20, "the count mismatch is found from the headers; peak {peak} bytes");
        } else {
            assert!(peak < 80 << 20, "the body is read up to the claimed size at most; peak {peak} bytes");
        }
        IDX_PEAK.fetch_max(peak, Ordering::Relaxed);
        eprintln!("gzip bomb with {labels} labels: {error}; peak {peak} bytes for {} file bytes", images.len());
    }
}

/// An endless line stops at the record limit, in bounded memory.
fn endless_line(dir: &Path) {
    let path = dir.join("endless.csv");
    std::fs::write(&path, b"0.12345678901234567,".repeat(1 << 20)).unwrap();
    let (result, peak) = peak_of(|| load_csv(&path, &CsvOptions::default()));
    let error = result.expect_err("the line is too long").to_string();
    assert!(error.contains("MiB"), "{error}");
    assert!(peak < FIXED_BYTES, "an endless line costs the record limit, not its length; peak {peak} bytes");
    eprintln!("endless line of 20 MiB: {error}; peak {peak} bytes");
}

#[test]
fn loaders_refuse_mutated_inputs_without_panics_or_large_allocations() {
    let start = std::time::Instant::now();
    let dir = scratch("cases");
    fuzz_csv(&dir);
    fuzz_idx(&dir);
    gzip_bombs(&scratch("bombs"));
    endless_line(&dir);
    eprintln!(
        "{} cases per reader in {:.1?}; largest peak: csv {} bytes, idx {} bytes",
        cases(),
        start.elapsed(),
        CSV_PEAK.load(Ordering::Relaxed),
        IDX_PEAK.load(Ordering::Relaxed)
    );
}
