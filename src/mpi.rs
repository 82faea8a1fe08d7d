//! [`crate::parallel::Collective`] over MPI (the `mpi` cargo feature, with
//! Open MPI): one rank per process of `mpirun -np K`. Each sum gathers every
//! rank's values to every rank (MPI_Allgather) and adds them in rank order
//! there, so all ranks hold the same bits; MPI_Allreduce leaves the order of
//! its additions to the library.

use std::time::Instant;

use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};

use crate::error::{Error, Result};
use crate::parallel::{sum_in_order, Collective};

/// The world of this process's MPI job; MPI is finalized when it drops.
pub struct MpiWorld {
    /// Kept alive for the world's lifetime.
    _universe: Universe,
    world: SimpleCommunicator,
    gathered: Vec<f32>,
    seconds: f64,
}

impl MpiWorld {
    /// Initializes MPI (once per process): the world of `mpirun`, or of one
    /// rank when the process was started alone.
    pub fn init() -> Result<Self> {
        let universe = mpi::initialize()
            .ok_or_else(|| Error::InvalidInput("MPI was initialized already in this process".into()))?;
        let world = universe.world();
        Ok(Self { _universe: universe, world, gathered: Vec::new(), seconds: 0.0 })
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn ranks(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_in_rank_order(&mut self, values: &mut [f32]) -> Result<()> {
        let started = Instant::now();
        self.gathered.resize(values.len() * self.ranks(), 0.0);
        self.world.all_gather_into(&values[..], &mut self.gathered[..]);
        sum_in_order(self.gathered.chunks_exact(values.len().max(1)), values);
        self.seconds += started.elapsed().as_secs_f64();
        Ok(())
    }

    fn seconds(&self) -> f64 {
        self.seconds
    }
}
