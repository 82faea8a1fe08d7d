//! `mpirun -np K wgpu-mlp sweep ...` (a build with `--features mpi`): the
//! ranks split the models, rank r training models r, r + K, r + 2K, ... on
//! its own device (its CPU threads, or an adapter), and rank 0 gathers every
//! rank's rows and checkpoints and writes the sweep folder as one process
//! would. The other ranks print nothing and keep their models in a scratch
//! folder removed at the end. Without MPI, or started alone, one rank trains
//! every model.

use std::path::{Path, PathBuf};

use super::table::Row;

/// This process's part in a sweep.
pub(crate) struct Ranks {
    rank: usize,
    size: usize,
    #[cfg(feature = "mpi")]
    world: Option<wgpu_mlp::mpi::MpiWorld>,
}

impl Ranks {
    /// The ranks of mpirun when it started this process (and the build has
    /// MPI), else one rank.
    pub(crate) fn join() -> anyhow::Result<Ranks> {
        #[cfg(feature = "mpi")]
        if wgpu_mlp::mpi::MpiWorld::launched() {
            use wgpu_mlp::parallel::Collective;
            let world = wgpu_mlp::mpi::MpiWorld::init()?;
            let (rank, size) = (world.rank(), world.ranks());
            if rank > 0 {
                crate::stream::silence();
            }
            return Ok(Ranks { rank, size, world: Some(world) });
        }
        Ok(Ranks {
            rank: 0,
            size: 1,
            #[cfg(feature = "mpi")]
            world: None,
        })
    }

    /// Whether this rank writes the sweep folder.
    pub(crate) fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Whether this rank trains model `model`.
    pub(crate) fn owns(&self, model: usize) -> bool {
        model % self.size == self.rank
    }

    /// A folder for a rank but the first's models (None on rank 0).
    pub(crate) fn scratch(&self) -> Option<PathBuf> {
        (!self.is_root())
            .then(|| std::env::temp_dir().join(format!("wgpu-mlp-sweep-rank{}-{}", self.rank, std::process::id())))
    }

    /// Rank 0: every model's row, in model order, with the other ranks'
    /// checkpoints written into `models_dir`; the other ranks send theirs
    /// (`rows`, and their checkpoints from their `models_dir`) and get None.
    pub(crate) fn gather(&self, rows: Vec<Row>, models_dir: &Path) -> anyhow::Result<Option<Vec<Row>>> {
        #[cfg(feature = "mpi")]
        if let Some(world) = &self.world {
            return gather_over_mpi(world, rows, models_dir);
        }
        let _ = models_dir;
        Ok(Some(rows))
    }
}

/// A rank's rows and checkpoints as bytes: the rows' JSON (its length first,
/// 8 bytes little-endian), then each row's checkpoint (its length first; 0
/// for a model that kept none).
#[cfg(feature = "mpi")]
fn gather_over_mpi(
    world: &wgpu_mlp::mpi::MpiWorld,
    rows: Vec<Row>,
    models_dir: &Path,
) -> anyhow::Result<Option<Vec<Row>>> {
    use anyhow::Context;

    let mut mine = Vec::new();
    let json = serde_json::Value::Array(rows.iter().map(super::table::row_json).collect()).to_string();
    mine.extend((json.len() as u64).to_le_bytes());
    mine.extend(json.as_bytes());
    for row in &rows {
        let checkpoint = std::fs::read(super::model_checkpoint(models_dir, row.model)).unwrap_or_default();
        mine.extend((checkpoint.len() as u64).to_le_bytes());
        mine.extend(checkpoint);
    }
    let Some(parts) = world.gather_to_root(&mine)? else {
        return Ok(None);
    };
    let mut all = rows;
    for part in parts.iter().skip(1) {
        let mut at = 0;
        let next = |at: &mut usize| -> anyhow::Result<&[u8]> {
            let len = part.get(*at..*at + 8).context("a rank's rows end early")?;
            let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
            let bytes = part.get(*at + 8..*at + 8 + len).context("a rank's rows end early")?;
            *at += 8 + len;
            Ok(bytes)
        };
        let json: serde_json::Value = serde_json::from_slice(next(&mut at)?).context("a rank's rows")?;
        let rows = json.as_array().context("a rank's rows")?.iter().map(super::table::row_from_json);
        for row in rows.collect::<anyhow::Result<Vec<_>>>()? {
            let checkpoint = next(&mut at)?;
            if !checkpoint.is_empty() {
                let path = super::model_checkpoint(models_dir, row.model);
                wgpu_mlp::report::write_atomically(&path, |file| std::io::Write::write_all(file, checkpoint))?;
            }
            all.push(row);
        }
    }
    all.sort_by_key(|row| row.model);
    Ok(Some(all))
}
