//! The loaders on small files the tests write (CSV and IDX, gzip or not), every
//! bad input they must refuse with a message naming the place, and the split
//! and scaling that follow.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{array, Array2};
use wgpu_mlp::data::{load_csv, load_idx, read_idx, split, CsvOptions, Scale, TargetColumn};
use wgpu_mlp::Dataset;

/// A fresh folder for one test, removed first if an earlier run left it.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, bytes: &[u8], gzip: bool) {
    let mut file = std::fs::File::create(path).unwrap();
    if gzip {
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap();
    } else {
        file.write_all(bytes).unwrap();
    }
}

fn csv_error(text: &str, options: &CsvOptions) -> String {
    // A folder per call: tests run in parallel and each writes its own file.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = folder(&format!("csv-error-{}", CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let path = dir.join("bad.csv");
    write(&path, text.as_bytes(), false);
    let error = load_csv(&path, options).expect_err("the file must be refused").to_string();
    assert!(error.contains("bad.csv"), "the message names the file: {error}");
    error
}

#[test]
fn csv_with_a_detected_header_and_named_target() {
    for gzip in [false, true] {
        let dir = folder(&format!("csv-header-{gzip}"));
        let path = dir.join(if gzip { "d.csv.gz" } else { "d.csv" });
        write(&path, b"a,label,b\n1,0,2\n3,2,4\n5,1,6\n", gzip);
        let options =
            CsvOptions { target: vec![TargetColumn::Name("label".into())], classify: true, ..Default::default() };
        let data = load_csv(&path, &options).unwrap();
        assert_eq!(data.x, array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        assert_eq!(data.classes, Some(3));
        assert_eq!(data.labels(), vec![0, 2, 1]);
        assert_eq!(data.y.row(1).to_vec(), vec![0.0, 0.0, 1.0]);
    }
}

#[test]
fn csv_without_header_takes_the_last_column_and_skips_metadata_rows() {
    let dir = folder("csv-skip");
    let path = dir.join("iris-like.csv");
    // scikit-learn's files start with a metadata line like this one.
    write(&path, b"3,2,setosa,versicolor\n0.5,1.5,0\n2.5,3.5,1\n4.5,5.5,1\n", false);
    let options = CsvOptions { skip_rows: 1, ..Default::default() };
    let data = load_csv(&path, &options).unwrap();
    assert_eq!(data.x, array![[0.5, 1.5], [2.5, 3.5], [4.5, 5.5]]);
    assert_eq!(data.y, array![[0.0], [1.0], [1.0]]);
    assert_eq!(data.classes, None, "regression unless told to classify");
    // Several target columns by index, for regression.
    let two =
        CsvOptions { skip_rows: 1, target: vec![TargetColumn::Index(0), TargetColumn::Index(2)], ..Default::default() };
    let data = load_csv(&path, &two).unwrap();
    assert_eq!(data.x, array![[1.5], [3.5], [5.5]]);
    assert_eq!(data.y, array![[0.5, 0.0], [2.5, 1.0], [4.5, 1.0]]);
}

#[test]
fn csv_bad_inputs_are_refused_with_their_place() {
    let default = CsvOptions::default();
    let error = csv_error("1,2,3\n4,5\n", &default);
    assert!(error.contains("line 2") && error.contains("2 fields"), "{error}");
    let error = csv_error("x,y\n1,2\n3,abc\n", &default);
    assert!(error.contains("line 3") && error.contains("column 1 (y)") && error.contains("'abc'"), "{error}");
    // NaN is a missing value, refused by default (tests/categorical.rs has the other choices).
    let error = csv_error("1,NaN\n", &default);
    assert!(error.contains("line 1, column 1: a missing value ('NaN')"), "{error}");
    let error = csv_error("1,2\n3,inf\n", &default);
    assert!(error.contains("line 2") && error.contains("not a finite"), "{error}");
    let named = CsvOptions { target: vec![TargetColumn::Name("price".into())], ..Default::default() };
    let error = csv_error("a,b\n1,2\n", &named);
    assert!(error.contains("no column named 'price'") && error.contains("a, b"), "{error}");
    let error = csv_error("1,2\n", &named);
    assert!(error.contains("needs a header"), "{error}");
    let error = csv_error("1,2\n", &CsvOptions { target: vec![TargetColumn::Index(5)], ..Default::default() });
    assert!(error.contains("target column 5 does not exist"), "{error}");
    let classify = CsvOptions { classify: true, ..Default::default() };
    let error = csv_error("1,0\n2,1.5\n", &classify);
    assert!(error.contains("line 2") && error.contains("1.5"), "{error}");
    let error = csv_error("1,0\n2,-1\n", &classify);
    assert!(error.contains("line 2") && error.contains("-1"), "{error}");
    let error = csv_error("1,0\n2,3\n", &CsvOptions { classes: Some(3), ..classify.clone() });
    assert!(error.contains("sample 2 has label 3") && error.contains("3 classes"), "{error}");
    let error = csv_error("a,b\n", &default);
    assert!(error.contains("no data rows"), "{error}");
    let error = csv_error("", &default);
    assert!(error.contains("no rows"), "{error}");
    let error = csv_error("5\n6\n", &default);
    assert!(error.contains("no input columns"), "{error}");
    // A wrong path is bad input (exit code 2); a failing device is Error::Io.
    let missing = load_csv(Path::new("/nonexistent/wgpu-mlp.csv"), &default).unwrap_err();
    assert!(missing.to_string().contains("cannot read /nonexistent/wgpu-mlp.csv"), "{missing}");
    assert!(missing.is_bad_input(), "{missing:?}");
    let folder = load_csv(&std::env::temp_dir(), &default).unwrap_err();
    assert!(folder.is_bad_input() && folder.to_string().contains("cannot read"), "{folder:?}");
    #[cfg(target_os = "linux")]
    {
        // Reading a process's memory at offset 0 (never mapped) fails with EIO.
        let failed = load_csv(Path::new("/proc/self/mem"), &default).unwrap_err();
        assert!(matches!(failed, wgpu_mlp::Error::Io { .. }) && !failed.is_bad_input(), "{failed:?}");
        assert_eq!(failed.to_string(), "cannot read /proc/self/mem");
    }
}

/// An IDX file of unsigned bytes with these dimensions and values.
fn idx_bytes(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(values);
    bytes
}

/// A Fashion-MNIST-shaped folder: `train` and `test` images of 2x3 pixels.
fn idx_folder(name: &str, train: usize, test: usize, gzip: bool) -> PathBuf {
    let dir = folder(name);
    let suffix = if gzip { ".gz" } else { "" };
    for (set, count) in [("train", train), ("t10k", test)] {
        let pixels: Vec<u8> = (0..count * 6).map(|i| (i * 37 % 256) as u8).collect();
        let labels: Vec<u8> = (0..count).map(|i| (i % 3) as u8).collect();
        write(&dir.join(format!("{set}-images-idx3-ubyte{suffix}")), &idx_bytes(&[count as u32, 2, 3], &pixels), gzip);
        write(&dir.join(format!("{set}-labels-idx1-ubyte{suffix}")), &idx_bytes(&[count as u32], &labels), gzip);
    }
    dir
}

#[test]
fn idx_folders_load_plain_and_gzip() {
    for gzip in [false, true] {
        let dir = idx_folder(&format!("idx-{gzip}"), 5, 2, gzip);
        let (train, test) = load_idx(&dir, None).unwrap();
        assert_eq!((train.x.dim(), test.x.dim()), ((5, 6), (2, 6)));
        assert_eq!(train.classes, Some(3));
        assert_eq!(train.labels(), vec![0, 1, 2, 0, 1]);
        assert_eq!(train.x.row(1).to_vec(), (6..12).map(|i| (i * 37 % 256) as f32).collect::<Vec<_>>());
    }
}

#[test]
fn idx_bad_inputs_are_refused() {
    let missing = load_idx(Path::new("/nonexistent/fmnist"), None).unwrap_err().to_string();
    assert!(
        missing.contains("/nonexistent/fmnist is not a folder") && missing.contains("dataset-fashion-mnist"),
        "{missing}"
    );

    let dir = idx_folder("idx-no-test", 3, 1, false);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("missing") && error.contains("t10k-labels-idx1-ubyte"), "{error}");

    let dir = idx_folder("idx-magic", 3, 1, false);
    write(&dir.join("train-images-idx3-ubyte"), &[0, 0, 0x0d, 3, 0, 0, 0, 1], false);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("not an IDX file of unsigned bytes") && error.contains("00 00 0d 03"), "{error}");

    let dir = idx_folder("idx-short", 3, 1, false);
    write(&dir.join("train-images-idx3-ubyte"), &idx_bytes(&[3, 2, 3], &[1; 17]), false);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("call for 18 values") && error.contains("holds 17"), "{error}");

    let dir = idx_folder("idx-counts", 3, 1, true);
    write(&dir.join("train-labels-idx1-ubyte.gz"), &idx_bytes(&[4], &[0, 1, 2, 0]), true);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("3 images") && error.contains("4 labels"), "{error}");

    let dir = idx_folder("idx-dims", 3, 1, false);
    write(&dir.join("train-images-idx3-ubyte"), &idx_bytes(&[3, 6], &[1; 18]), false);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("images need 3 dimensions"), "{error}");

    let dir = idx_folder("idx-classes", 4, 1, false);
    let error = load_idx(&dir, Some(2)).unwrap_err().to_string();
    assert!(error.contains("label 2") && error.contains("2 classes"), "{error}");

    let truncated = folder("idx-truncated").join("x");
    write(&truncated, &[0, 0, 8], false);
    assert!(read_idx(&truncated).unwrap_err().to_string().contains("not an IDX file"));
}

#[test]
fn stratified_split_keeps_class_shares_and_is_seeded() {
    // 40 of class 0, 20 of class 1: a quarter of each goes to the test set.
    let labels: Vec<usize> = (0..60).map(|i| usize::from(i % 3 == 2)).collect();
    let x = Array2::from_shape_fn((60, 2), |(r, c)| (r * 2 + c) as f32);
    let data = Dataset::classification(x, &labels, 2).unwrap();
    let (train, test) = split(data.clone(), 0.25, 9).unwrap();
    let test = test.unwrap();
    let count = |d: &Dataset, class| d.labels().iter().filter(|&&l| l == class).count();
    assert_eq!((count(&test, 0), count(&test, 1)), (10, 5));
    assert_eq!((count(&train, 0), count(&train, 1)), (30, 15));
    let mut rows: Vec<f32> = train.x.column(0).iter().chain(test.x.column(0)).copied().collect();
    rows.sort_by(f32::total_cmp);
    assert_eq!(rows, (0..60).map(|r| (r * 2) as f32).collect::<Vec<_>>(), "every row lands in exactly one part");
    assert_eq!(split(data.clone(), 0.25, 9).unwrap().1.unwrap(), test, "the same seed gives the same split");
    assert_ne!(split(data.clone(), 0.25, 10).unwrap().1.unwrap().x, test.x, "another seed, another split");
    assert!(split(data.clone(), 1.0, 9).is_err());
    assert!(split(data, f64::NAN, 9).is_err());
}

#[test]
fn scaling_is_fitted_on_the_training_rows() {
    let mut train = array![[0.0, 5.0, 2.0], [10.0, 5.0, 4.0]];
    let mut test = array![[20.0, 6.0, 3.0]];
    Scale::MinMax.apply(&mut train, Some(&mut test));
    assert_eq!(train, array![[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]);
    assert_eq!(
        test,
        array![[2.0, 1.0, 0.5]],
        "test rows use the training min and range; a constant column only shifts"
    );
    let mut train = array![[0.0], [2.0], [4.0]];
    Scale::Standard.apply(&mut train, None);
    let std = (8.0f32 / 3.0).sqrt();
    assert_eq!(train, array![[-2.0 / std], [0.0], [2.0 / std]]);
    let mut pixels = array![[0.0, 255.0, 51.0]];
    Scale::Pixels.apply(&mut pixels, None);
    assert_eq!(pixels, array![[0.0, 1.0, 0.2]]);
}

#[test]
fn csv_duplicate_and_ambiguous_target_columns_are_refused() {
    let index = |i| TargetColumn::Index(i);
    let name = |n: &str| TargetColumn::Name(n.into());
    let targets = |target| CsvOptions { target, ..Default::default() };
    let error = csv_error("1,2,3,4\n5,6,7,8\n", &targets(vec![index(3), index(3)]));
    assert!(error.contains("column 3") && error.contains("twice"), "{error}");
    let headed = "p,q,r,y\n1,2,3,4\n5,6,7,8\n";
    let error = csv_error(headed, &targets(vec![name("y"), name("y")]));
    assert!(error.contains("column 3 (y)") && error.contains("twice"), "{error}");
    let error = csv_error(headed, &targets(vec![name("y"), index(3)]));
    assert!(error.contains("column 3 (y)") && error.contains("twice"), "{error}");
    let error = csv_error("a,a,y\n1,2,3\n4,5,6\n", &targets(vec![name("a")]));
    assert!(error.contains("'a'") && error.contains("columns 0 and 1"), "{error}");
}

#[test]
fn csv_classification_needs_two_classes_and_a_sane_class_count() {
    let classify = CsvOptions { classify: true, ..Default::default() };
    let error = csv_error("1,4\n2,4\n3,4\n", &classify);
    assert!(error.contains("at least two classes") && error.contains("label 4"), "{error}");
    let error = csv_error("1,0\n2,1\n3,70000\n", &classify);
    assert!(error.contains("label 70000") && error.contains("line 3") && error.contains("65536"), "{error}");
    // One stray label far above the rest would leave most classes empty.
    let error = csv_error("1,0\n2,1\n3,2\n4,200\n", &classify);
    assert!(error.contains("label 200") && error.contains("line 4") && error.contains("`classes`"), "{error}");
    let error = csv_error("1,0\n2,1\n", &CsvOptions { classes: Some(1), ..classify.clone() });
    assert!(error.contains("`classes`") && error.contains("at least 2"), "{error}");
    // Labels counted from 1 leave only class 0 empty: that is fine.
    let dir = folder("csv-one-based");
    let path = dir.join("d.csv");
    write(&path, b"1,1\n2,2\n3,3\n", false);
    assert_eq!(load_csv(&path, &classify).unwrap().classes, Some(4));
}

/// A folder whose training labels and test labels are these (2x3 pixel images).
fn idx_labels_folder(name: &str, train: &[u8], test: &[u8]) -> PathBuf {
    let dir = folder(name);
    for (set, labels) in [("train", train), ("t10k", test)] {
        let images = idx_bytes(&[labels.len() as u32, 2, 3], &vec![7; labels.len() * 6]);
        write(&dir.join(format!("{set}-images-idx3-ubyte")), &images, false);
        write(&dir.join(format!("{set}-labels-idx1-ubyte")), &idx_bytes(&[labels.len() as u32], labels), false);
    }
    dir
}

#[test]
fn idx_classes_come_from_the_training_labels() {
    let dir = idx_labels_folder("idx-test-255", &[0, 1, 2, 0], &[1, 255, 0]);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("test") && error.contains("label 255") && error.contains("sample 2"), "{error}");
    let dir = idx_labels_folder("idx-test-unseen", &[0, 1, 3, 0], &[1, 2]);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("label 2") && error.contains("sample 2"), "{error}");
    let dir = idx_labels_folder("idx-train-200", &[0, 1, 2, 200], &[1, 0]);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("label 200") && error.contains("sample 4"), "{error}");
    let dir = idx_labels_folder("idx-one-class", &[3, 3, 3], &[3]);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("at least two classes") && error.contains("label 3"), "{error}");
    let dir = idx_labels_folder("idx-good", &[0, 1, 2, 1], &[2, 0]);
    let (train, test) = load_idx(&dir, None).unwrap();
    assert_eq!((train.classes, test.classes), (Some(3), Some(3)));
}

#[test]
fn idx_headers_are_checked_before_any_body_and_told_in_words() {
    // 4 million images claimed against 3 labels: refused from the headers.
    let dir = idx_folder("idx-bomb-header", 3, 1, true);
    write(&dir.join("train-images-idx3-ubyte.gz"), &idx_bytes(&[4_000_000, 28, 28], &[0; 100]), true);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("4000000 images") && error.contains("3 labels"), "{error}");
    let dir = idx_folder("idx-short-words", 3, 1, false);
    write(&dir.join("train-images-idx3-ubyte"), &idx_bytes(&[3, 2, 3], &[1; 17]), false);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("3 x 2 x 3") && error.contains("18 values") && error.contains("17"), "{error}");
    assert!(!error.contains("Some(") && !error.contains("None"), "{error}");
    let long = folder("idx-long").join("x");
    write(&long, &idx_bytes(&[3], &[1; 4]), false);
    let error = read_idx(&long).unwrap_err().to_string();
    assert!(error.contains("3 values") && error.contains("more"), "{error}");
    let overflow = folder("idx-overflow").join("x");
    write(&overflow, &idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[]), false);
    let error = read_idx(&overflow).unwrap_err().to_string();
    assert!(!error.contains("None") && error.contains("4294967295 x 4294967295 x 4294967295"), "{error}");
    let dir = idx_folder("idx-dims-words", 3, 1, false);
    write(&dir.join("train-images-idx3-ubyte"), &idx_bytes(&[3, 6], &[1; 18]), false);
    let error = load_idx(&dir, None).unwrap_err().to_string();
    assert!(error.contains("images need 3 dimensions") && !error.contains('['), "{error}");
}
