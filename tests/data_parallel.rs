//! Data-parallel training (issue 10, item 4), with ranks as threads
//! (parallel::ThreadGroup; tests/mpi.rs runs the same over `mpirun -np 2`):
//! every rank ends with the same parameters bit for bit, and those are the
//! one-process run's with the same global batch, up to the order of the sums.

mod binary;
mod common;

use common::{assert_close, classes, flat};
use wgpu_mlp::model::{Activation, Init, Loss, MlpSpec, Output, Params};
use wgpu_mlp::parallel::{share, Collective, ThreadGroup};
use wgpu_mlp::train::{Clip, Optimizer};
use wgpu_mlp::{CpuTrainer, Run, TrainConfig, Trainer};

/// How far a data-parallel run's parameters may be from the one-process
/// run's after a few epochs: the same sums added in another order.
const DATA_PARALLEL_ATOL: f32 = 1e-5;
const DATA_PARALLEL_RTOL: f32 = 1e-4;

/// Trains `epochs` epochs on `ranks` threads; every rank's parameters and its last epoch's metrics.
fn data_parallel(run: &Run, ranks: usize, epochs: usize) -> Vec<(Params, f32)> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = ThreadGroup::new(ranks)
            .into_iter()
            .map(|rank| {
                scope.spawn(move || {
                    let mut trainer = CpuTrainer::data_parallel(run, Box::new(rank)).unwrap();
                    let history = trainer.train(epochs).unwrap();
                    (trainer.params().unwrap(), history.last().unwrap().train_loss)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

#[test]
fn every_rank_ends_with_the_one_process_model() {
    // 37 rows in shuffled batches of 8 (a short last one of 5): shares of 3, 3, 2 and 2, 2, 1 on 3 ranks.
    let spec =
        MlpSpec::new(vec![5, 13, 3]).unwrap().with(Activation::Tanh, Output::Softmax, Loss::CrossEntropy).unwrap();
    let train = classes(37, 5, 3, 8);
    let params = Params::init(&spec, Init::Xavier, 2).unwrap();
    let adam = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    for optimizer in [Optimizer::Sgd, adam] {
        let config = TrainConfig {
            lr: if optimizer == Optimizer::Sgd { 0.3 } else { 0.01 },
            optimizer,
            batch_size: Some(8),
            shuffle: true,
            seed: 4,
            weight_decay: 1e-3,
            clip: Clip { norm: Some(0.8), value: None },
            ..TrainConfig::default()
        };
        let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
        let mut alone = CpuTrainer::new(&run).unwrap();
        let alone_loss = alone.train(5).unwrap().last().unwrap().train_loss;
        let alone = flat(&alone.params().unwrap());
        for ranks in [2, 3] {
            let results = data_parallel(&run, ranks, 5);
            for (rank, (params, loss)) in results.iter().enumerate() {
                assert_eq!(
                    flat(params),
                    flat(&results[0].0),
                    "{optimizer:?}, rank {rank} of {ranks} differs from rank 0"
                );
                assert_eq!(*loss, results[0].1);
                let what = format!("{optimizer:?} on {ranks} ranks against one process");
                assert_close(&what, &flat(params), &alone, DATA_PARALLEL_ATOL, DATA_PARALLEL_RTOL);
                assert_close(&what, &[*loss], &[alone_loss], DATA_PARALLEL_ATOL, DATA_PARALLEL_RTOL);
            }
        }
    }
}

#[test]
fn a_batch_without_a_row_for_every_rank_is_refused() {
    let spec = MlpSpec::new(vec![3, 4, 1]).unwrap();
    let train = classes(10, 3, 1, 1);
    let params = Params::init(&spec, Init::Xavier, 0).unwrap();
    // Batches of 4: the last has 2 rows, fewer than 3 ranks.
    let config = TrainConfig { batch_size: Some(4), ..TrainConfig::default() };
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    let rank = ThreadGroup::new(3).remove(0);
    let refused = CpuTrainer::data_parallel(&run, Box::new(rank)).err().expect("refused").to_string();
    assert!(refused.contains("a batch of 2 rows does not split across 3 ranks"), "{refused}");
}

#[test]
fn shares_cover_a_batch_in_rank_order() {
    for (rows, ranks) in [(8, 3), (5, 3), (3, 3), (256, 2), (7, 1)] {
        let shares: Vec<_> = (0..ranks).map(|r| share(rows, r, ranks)).collect();
        let mut next = 0;
        for &(first, len) in &shares {
            assert_eq!(first, next, "{rows} rows on {ranks}: {shares:?}");
            assert!(len == rows / ranks || len == rows / ranks + 1, "{shares:?}");
            next += len;
        }
        assert_eq!(next, rows);
    }
}

#[test]
fn a_thread_group_sums_in_rank_order_on_every_rank() {
    let sums: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let threads: Vec<_> = ThreadGroup::new(3)
            .into_iter()
            .map(|mut rank| {
                scope.spawn(move || {
                    // 1e8 + 1 - 1e8 in f32: 0 in rank order (1e8 + 1 rounds to 1e8), not 1.
                    let mut values = vec![[1e8f32, 1.0, -1e8][rank.rank()], rank.rank() as f32];
                    rank.sum_in_rank_order(&mut values).unwrap();
                    values
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(sums.iter().all(|s| s == &vec![0.0, 3.0]), "{sums:?}");
}

#[cfg(not(feature = "mpi"))]
#[test]
fn the_flag_without_the_mpi_feature_says_how_to_build_it() {
    let run = binary::wgpu_mlp_in(&std::env::temp_dir(), &["--data-parallel", "--epochs", "1", "--device", "cpu"]);
    binary::assert_bad_input(&run, "--data-parallel needs a build with MPI");
}
