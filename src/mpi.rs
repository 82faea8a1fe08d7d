//! [`crate::parallel::Collective`] over MPI (the `mpi` cargo feature, with
//! Open MPI): one rank per process of `mpirun -np K`. Each sum gathers every
//! rank's values to every rank (MPI_Allgather) and adds them in rank order
//! there, so all ranks hold the same bits; MPI_Allreduce leaves the order of
//! its additions to the library. [`MpiWorld::gather_to_root`] brings
//! every rank's bytes to rank 0 (a sweep's rows and checkpoints).

use std::time::Instant;

use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

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

    /// Every rank calls it with its bytes: rank 0 gets each rank's, in rank
    /// order (its own first); the other ranks get None. At most 2 GiB in all.
    pub fn gather_to_root(&self, mine: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        let too_large = || Error::InvalidInput("more than 2 GiB to gather to rank 0".into());
        let count = i32::try_from(mine.len()).map_err(|_| too_large())?;
        let root = self.world.process_at_rank(0);
        if self.world.rank() != 0 {
            root.gather_into(&count);
            root.gather_varcount_into(mine);
            return Ok(None);
        }
        let mut counts = vec![0i32; self.ranks()];
        root.gather_into_root(&count, &mut counts[..]);
        let mut displs = Vec::with_capacity(counts.len());
        let mut total = 0i32;
        for &c in &counts {
            displs.push(total);
            total = total.checked_add(c).ok_or_else(too_large)?;
        }
        let mut all = vec![0u8; total as usize];
        root.gather_varcount_into_root(mine, &mut PartitionMut::new(&mut all[..], &counts[..], &displs[..]));
        let parts = counts.iter().zip(&displs).map(|(&c, &d)| all[d as usize..(d + c) as usize].to_vec()).collect();
        Ok(Some(parts))
    }

    /// Whether this process was started by mpirun (Open MPI's or another
    /// PMI launcher's variables): a sweep splits its models only then.
    pub fn launched() -> bool {
        ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].iter().any(|name| std::env::var_os(name).is_some())
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
