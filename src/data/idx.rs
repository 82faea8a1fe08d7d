//! The IDX format of MNIST and Fashion-MNIST (unsigned bytes, gzip or not):
//! four files in a folder, a training and a test set of images and labels.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::csv::open;
use super::Dataset;
use crate::error::{Error, Result};

/// Where Debian's dataset-fashion-mnist package puts the files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// An IDX array of unsigned bytes: its dimensions and its values, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The sizes from the header, outermost first: `[N, 28, 28]` for images, `[N]` for labels.
    pub dims: Vec<usize>,
    /// The product of `dims` values, the last dimension varying fastest.
    pub data: Vec<u8>,
}

/// Reads one IDX file; the magic number must say unsigned bytes (0x08) and the
/// values must fill the dimensions exactly.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bad = |message: String| Error::InvalidInput(format!("{}: {message}", path.display()));
    let mut bytes = Vec::new();
    open(path)?.read_to_end(&mut bytes).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        let magic: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(bad(format!("not an IDX file of unsigned bytes (magic {}, want 00 00 08 nn)", magic.join(" "))));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if ndims == 0 || bytes.len() < header {
        return Err(bad(format!("the header of {ndims} dimensions is cut short")));
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let expected = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let found = bytes.len() - header;
    if expected != Some(found) {
        return Err(bad(format!("the dimensions {dims:?} call for {expected:?} values, but the file holds {found}")));
    }
    bytes.drain(..header);
    Ok(IdxArray { dims, data: bytes })
}

/// `dir/name` or, failing that, `dir/name.gz`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    let gzipped = dir.join(format!("{name}.gz"));
    [plain.clone(), gzipped].into_iter().find(|p| p.is_file()).ok_or_else(|| {
        Error::InvalidInput(format!(
            "missing {}[.gz]; for Fashion-MNIST install Debian's dataset-fashion-mnist package",
            plain.display()
        ))
    })
}

/// Images (N, rows, cols) and labels (N) from one pair of files: x is (N,
/// rows * cols) raw pixel values 0..=255, labels are class numbers.
fn load_pair(dir: &Path, images: &str, labels: &str) -> Result<(Array2<f32>, Vec<usize>)> {
    let images_path = find(dir, images)?;
    let labels_path = find(dir, labels)?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;
    if images.dims.len() != 3 {
        return Err(Error::InvalidInput(format!(
            "{}: images need 3 dimensions (count, rows, cols), found {:?}",
            images_path.display(),
            images.dims
        )));
    }
    if labels.dims.len() != 1 {
        return Err(Error::InvalidInput(format!(
            "{}: labels need 1 dimension, found {:?}",
            labels_path.display(),
            labels.dims
        )));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(Error::InvalidInput(format!(
            "{} holds {} images but {} holds {} labels",
            images_path.display(),
            images.dims[0],
            labels_path.display(),
            labels.dims[0]
        )));
    }
    let pixels = images.dims[1] * images.dims[2];
    let x = Array2::from_shape_vec((images.dims[0], pixels), images.data.iter().map(|&p| f32::from(p)).collect())
        .expect("the IDX payload fills (count, rows * cols)");
    Ok((x, labels.data.iter().map(|&l| usize::from(l)).collect()))
}

/// The training and test sets in `dir` (train-* and t10k-* files). Labels
/// become one-hot over `classes` columns, or largest label + 1 when None.
pub fn load_idx(dir: &Path, classes: Option<usize>) -> Result<(Dataset, Dataset)> {
    if !dir.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is not a folder; for Fashion-MNIST install Debian's dataset-fashion-mnist package",
            dir.display()
        )));
    }
    let (train_x, train_labels) = load_pair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let (test_x, test_labels) = load_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    if train_x.ncols() != test_x.ncols() {
        return Err(Error::InvalidInput(format!(
            "{}: training images have {} pixels, test images {}",
            dir.display(),
            train_x.ncols(),
            test_x.ncols()
        )));
    }
    let largest = train_labels.iter().chain(&test_labels).max().copied().unwrap_or(0);
    let classes = classes.unwrap_or(largest + 1);
    let train = Dataset::classification(train_x, &train_labels, classes)
        .map_err(|e| Error::InvalidInput(format!("{} (training set): {e}", dir.display())))?;
    let test = Dataset::classification(test_x, &test_labels, classes)
        .map_err(|e| Error::InvalidInput(format!("{} (test set): {e}", dir.display())))?;
    Ok((train, test))
}
