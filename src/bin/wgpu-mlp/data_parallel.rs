//! `--data-parallel`: one model trained by the ranks of `mpirun -np K
//! wgpu-mlp --data-parallel ...` (a build with `--features mpi`). Every rank
//! reads the same data and settings and trains its share of each batch
//! (`wgpu_mlp::parallel`), so all end with the same model. Rank 0 prints and
//! writes the run folder as a one-process run would; the others print
//! nothing and keep their run folder in a temporary directory, removed at
//! the end (one writer, and no rank waits on a disk the others share).

use std::path::PathBuf;

use wgpu_mlp::parallel::Collective;

use crate::args::TrainArgs;

/// This process's part in a data-parallel run.
pub(crate) struct Ranks {
    pub(crate) collective: Box<dyn Collective>,
    pub(crate) scratch: Scratch,
}

/// A run folder of a rank but the first, removed when the run ends (a
/// sweep's rank keeps its models in one too).
pub(crate) struct Scratch(pub(crate) Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// With --data-parallel, joins the MPI job; a rank but the first is
/// silenced and trains into a temporary folder. None without the flag.
pub(crate) fn join(cli: &mut TrainArgs) -> anyhow::Result<Option<Ranks>> {
    if !cli.data_parallel {
        return Ok(None);
    }
    joined(cli).map(Some)
}

#[cfg(feature = "mpi")]
fn joined(cli: &mut TrainArgs) -> anyhow::Result<Ranks> {
    let world = wgpu_mlp::mpi::MpiWorld::init()?;
    if world.ranks() == 1 {
        let _ = std::io::Write::write_all(
            &mut crate::stream::stderr(),
            b"notice: --data-parallel with one rank trains as one process does; start it with mpirun -np K\n",
        );
    }
    let scratch = match world.rank() {
        0 => None,
        rank => {
            crate::stream::silence();
            let dir = std::env::temp_dir().join(format!("wgpu-mlp-rank{rank}-{}", std::process::id()));
            cli.out = Some(dir.clone());
            cli.quiet = true;
            Some(dir)
        }
    };
    Ok(Ranks { collective: Box::new(world), scratch: Scratch(scratch) })
}

#[cfg(not(feature = "mpi"))]
fn joined(_cli: &mut TrainArgs) -> anyhow::Result<Ranks> {
    Err(crate::bad_input(
        "--data-parallel needs a build with MPI: install Open MPI and libclang (apt-get install openmpi-bin \
         libopenmpi-dev libclang-dev), build with `cargo build --release --features mpi`, then run \
         `mpirun -np K target/release/wgpu-mlp --data-parallel ...`"
            .into(),
    ))
}
