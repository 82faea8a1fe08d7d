//! The IDX format of MNIST and Fashion-MNIST (unsigned bytes, gzip or not):
//! four files in a folder, a training and a test set of images and labels.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::csv::open;
use super::{class_count, Dataset};
use crate::error::{Error, Result};
use crate::model::zeros;

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

/// An IDX file whose header is read and checked, its body not yet: the
/// headers of every file are compared before any body is read, so a header
/// claiming millions of images costs nothing to refuse.
struct IdxHeader {
    path: PathBuf,
    dims: Vec<usize>,
    /// The product of `dims`: how many values the body must hold.
    values: usize,
    body: Box<dyn Read>,
}

impl IdxHeader {
    fn bad(&self, message: String) -> Error {
        Error::InvalidInput(format!("{}: {message}", self.path.display()))
    }

    /// "60000 x 28 x 28".
    fn shape(&self) -> String {
        shape(&self.dims)
    }

    /// The body, checked against the header as it streams in: read through
    /// a limit of exactly the claimed size (so a gzip bomb stops there), the
    /// vector growing with what arrives, by an eighth at a time, rather than
    /// reserved at the claim or doubled (a body cut short of a huge claim
    /// costs little more than what it holds).
    fn read_body(mut self) -> Result<Vec<u8>> {
        let unreadable = |e: std::io::Error| Error::io(format!("cannot read {}", self.path.display()), e);
        let too_big = self.bad(format!("the dimensions {} call for more memory than this machine has", self.shape()));
        let mut data: Vec<u8> = Vec::new();
        let mut limited = (&mut self.body).take(self.values as u64);
        loop {
            let left = self.values - data.len();
            if left == 0 {
                break;
            }
            let grow = left.min((data.len() / 8).max(1 << 20));
            if data.try_reserve_exact(grow).is_err() {
                return Err(too_big);
            }
            let start = data.len();
            data.resize(start + grow, 0);
            let read = read_up_to(&mut limited, &mut data[start..]).map_err(unreadable)?;
            data.truncate(start + read);
            if read < grow {
                break;
            }
        }
        let found = if data.len() < self.values {
            data.len().to_string()
        } else if self.body.read(&mut [0u8; 1]).map_err(unreadable)? > 0 {
            "more".to_string()
        } else {
            return Ok(data);
        };
        Err(self.bad(format!(
            "the dimensions {} call for {} values, but the file holds {found}",
            self.shape(),
            self.values
        )))
    }
}

/// "60000 x 28 x 28".
fn shape(dims: &[usize]) -> String {
    dims.iter().map(usize::to_string).collect::<Vec<_>>().join(" x ")
}

/// Reads into `buf` until it is full or the stream ends; how many bytes came.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut seen = 0;
    while seen < buf.len() {
        match reader.read(&mut buf[seen..]) {
            Ok(0) => break,
            Ok(n) => seen += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(seen)
}

/// Opens an IDX file and reads its header: the magic number must say unsigned
/// bytes (0x08), and the dimensions' product must be a size this machine has.
fn open_idx(path: &Path) -> Result<IdxHeader> {
    let bad = |message: String| Error::InvalidInput(format!("{}: {message}", path.display()));
    let unreadable = |e: std::io::Error| Error::io(format!("cannot read {}", path.display()), e);
    let mut body = open(path)?;
    let mut magic = [0u8; 4];
    let read = read_up_to(&mut body, &mut magic).map_err(unreadable)?;
    if read < 4 || magic[..3] != [0, 0, 0x08] {
        let magic: Vec<String> = magic[..read].iter().map(|b| format!("{b:02x}")).collect();
        return Err(bad(format!("not an IDX file of unsigned bytes (magic {}, want 00 00 08 nn)", magic.join(" "))));
    }
    let ndims = usize::from(magic[3]);
    let mut sizes = vec![0u8; 4 * ndims];
    if ndims == 0 || read_up_to(&mut body, &mut sizes).map_err(unreadable)? < sizes.len() {
        return Err(bad(format!("the header of {ndims} dimensions is cut short")));
    }
    let dims: Vec<usize> =
        sizes.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let values = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| {
        bad(format!("the dimensions {} call for more values than this machine can address", shape(&dims)))
    })?;
    Ok(IdxHeader { path: path.to_path_buf(), dims, values, body })
}

/// Reads one IDX file; the magic number must say unsigned bytes (0x08) and the
/// values must fill the dimensions exactly.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let header = open_idx(path)?;
    let dims = header.dims.clone();
    Ok(IdxArray { dims, data: header.read_body()? })
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

/// The headers of one pair of files, checked against each other: images
/// (N, rows, cols) and labels (N), N > 0.
struct Pair {
    images: IdxHeader,
    labels: IdxHeader,
}

fn open_pair(dir: &Path, images: &str, labels: &str) -> Result<Pair> {
    let images = open_idx(&find(dir, images)?)?;
    let labels = open_idx(&find(dir, labels)?)?;
    if images.dims.len() != 3 {
        let found = format!("found {} ({})", images.dims.len(), images.shape());
        return Err(images.bad(format!("images need 3 dimensions (count, rows, cols), {found}")));
    }
    if labels.dims.len() != 1 {
        let found = format!("found {} ({})", labels.dims.len(), labels.shape());
        return Err(labels.bad(format!("labels need 1 dimension (count), {found}")));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(Error::InvalidInput(format!(
            "{} holds {} images but {} holds {} labels",
            images.path.display(),
            images.dims[0],
            labels.path.display(),
            labels.dims[0]
        )));
    }
    if images.values == 0 {
        return Err(images.bad(format!("the dimensions {} hold no pixels", images.shape())));
    }
    Ok(Pair { images, labels })
}

impl Pair {
    /// x is (N, rows * cols) raw pixel values 0..=255, labels are class numbers.
    fn read(self) -> Result<(Array2<f32>, Vec<usize>)> {
        let (count, pixels) = (self.images.dims[0], self.images.dims[1] * self.images.dims[2]);
        let what = format!("{} as floats", self.images.path.display());
        let bytes = self.images.read_body()?;
        let labels = self.labels.read_body()?.into_iter().map(usize::from).collect();
        let mut x = zeros((count, pixels), &what)?;
        x.iter_mut().zip(bytes).for_each(|(x, p)| *x = f32::from(p));
        Ok((x, labels))
    }
}

/// The training and test sets in `dir` (train-* and t10k-* files). Labels
/// become one-hot over `classes` columns, or the largest training label + 1
/// when None; a test label no training sample has is an error.
pub fn load_idx(dir: &Path, classes: Option<usize>) -> Result<(Dataset, Dataset)> {
    if !dir.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is not a folder; for Fashion-MNIST install Debian's dataset-fashion-mnist package",
            dir.display()
        )));
    }
    let train = open_pair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let test = open_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    if train.images.dims[1..] != test.images.dims[1..] {
        return Err(Error::InvalidInput(format!(
            "{}: training images are {}, test images {} pixels",
            dir.display(),
            shape(&train.images.dims[1..]),
            shape(&test.images.dims[1..])
        )));
    }
    let (train_x, train_labels) = train.read()?;
    let in_set = |set: &'static str| move |e: Error| Error::InvalidInput(format!("{} ({set} set): {e}", dir.display()));
    let classes =
        class_count(&train_labels, classes, |row| format!("sample {}", row + 1)).map_err(in_set("training"))?;
    let train = Dataset::classification(train_x, &train_labels, classes).map_err(in_set("training"))?;
    let (test_x, test_labels) = test.read()?;
    let mut seen = vec![false; classes];
    train_labels.iter().for_each(|&label| seen[label] = true);
    if let Some((row, label)) =
        test_labels.iter().enumerate().find(|(_, &label)| !seen.get(label).copied().unwrap_or(false))
    {
        return Err(in_set("test")(Error::InvalidInput(format!(
            "sample {} has label {label}, which no training sample has",
            row + 1
        ))));
    }
    let test = Dataset::classification(test_x, &test_labels, classes).map_err(in_set("test"))?;
    Ok((train, test))
}
