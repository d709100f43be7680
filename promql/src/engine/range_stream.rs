//! Streaming the series of a range-vector argument (matrix selector or subquery) through a
//! `map` (per series, on worker threads when there are many series) and a `fold` (on the
//! calling thread, strictly in selection order). A matrix selector's series are decoded
//! one by one into reused buffers, so only a bounded number of series' samples is held at
//! once, and results never depend on the number of threads. With `selector`, the only
//! place the engine reads storage; it never evaluates operators.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use parking_lot::{Condvar, Mutex};
use vigil_storage::chunkenc::is_stale_nan;
use vigil_storage::querier::Series as StorageSeries;
use vigil_storage::Sample;

use super::error::{exec_err, Result};
use super::eval::Evaluator;
use super::range_kernel::StepValue;
use super::selector::{RangeSeries, SeriesMetric, WindowGrid};
use super::start_ts::{align, StartTimestampSource};
use crate::kernels::Point as KernelPoint;
use crate::parser::ast::Expr;

/// Fewer selected series than this are evaluated on the calling thread alone: thread
/// start-up would cost more than it saves.
pub(crate) const PARALLEL_MIN_SERIES: usize = 256;
/// Series per unit of work handed to a worker thread.
const BLOCK_SERIES: usize = 128;
/// Blocks per worker that may be taken ahead of the next block to fold: a worker waits
/// before starting a block further ahead, which bounds the results held at once.
const BLOCKS_AHEAD_PER_WORKER: usize = 2;
/// The default upper bound of threads per query.
const MAX_DEFAULT_QUERY_THREADS: usize = 4;

/// Threads one query uses by default: the machine's parallelism, at most
/// [`MAX_DEFAULT_QUERY_THREADS`].
pub(crate) fn default_query_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_DEFAULT_QUERY_THREADS)
}

/// Decode buffers reused from one series to the next.
#[derive(Default)]
struct DecodeBufs {
    raw: Vec<Sample>,
    points: Vec<KernelPoint>,
    start_timestamps: Vec<i64>,
}

/// Where a matrix selector's series are read: the storage time range and the optional
/// start-timestamp source.
#[derive(Clone, Copy)]
struct ReadRange<'a> {
    mint: i64,
    maxt: i64,
    start_timestamps: Option<&'a dyn StartTimestampSource>,
}

impl ReadRange<'_> {
    /// Decodes `s` into `bufs` (float samples without stale markers, start timestamps
    /// parallel to them when known); returns the number of samples read.
    fn decode(&self, s: &StorageSeries, bufs: &mut DecodeBufs) -> Result<usize> {
        s.samples_into(&mut bufs.raw)?;
        let sts = match self.start_timestamps {
            Some(src) => align(
                &bufs.raw,
                &src.start_timestamps(&s.labels, self.mint, self.maxt)?,
            ),
            None => Vec::new(),
        };
        bufs.points.clear();
        bufs.start_timestamps.clear();
        for (i, smp) in bufs.raw.iter().enumerate() {
            if is_stale_nan(smp.v) {
                continue;
            }
            bufs.points.push((smp.t, smp.v));
            if let Some(st) = sts.get(i) {
                bufs.start_timestamps.push(*st);
            }
        }
        Ok(bufs.raw.len())
    }
}

/// A worker's result for one block of series.
struct BlockOut<R> {
    /// The mapped series, with the range of their values in `values` (one buffer per
    /// block).
    mapped: Vec<(R, std::ops::Range<usize>)>,
    values: Vec<StepValue>,
    samples_read: usize,
    /// The block's storage series (labels taken), returned so that the thread that
    /// selected them frees them: glibc's per-thread arenas make cross-thread frees contend.
    series: Vec<StorageSeries>,
}

/// Stops the other workers when a worker unwinds, so none waits forever for a block that
/// will never be folded (the panic itself is re-raised on the calling thread).
struct StopOnPanic<'a> {
    stop: &'a AtomicBool,
    folded: &'a Mutex<usize>,
    progress: &'a Condvar,
}

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.stop.store(true, Ordering::Relaxed);
            let _f = self.folded.lock();
            self.progress.notify_all();
        }
    }
}

impl Evaluator<'_, '_> {
    /// Evaluates the series of range-vector argument `e`: `map(state, grid, series, out)`
    /// for every series with a float sample, appending its per-step values to `out`, then
    /// `fold(result, values)` on the calling thread in selection order. With at least [`PARALLEL_MIN_SERIES`] selected series and more
    /// than one query thread, `map` runs on worker threads, each with its own state from
    /// `init`; the states are returned (one per thread that ran). Matrix selectors fetch
    /// start timestamps when `with_start_timestamps` and the query uses them. Same
    /// selection and `samples_read` accounting as [`Evaluator::eval_range_input`].
    pub fn map_range_series<S: Send, R: Send>(
        &self,
        e: &Expr,
        with_start_timestamps: bool,
        init: impl Fn() -> S + Sync,
        map: impl Fn(&mut S, &WindowGrid<'_>, RangeSeries<'_>, &mut Vec<StepValue>) -> Result<R> + Sync,
        mut fold: impl FnMut(R, &[StepValue]) -> Result<()>,
    ) -> Result<Vec<S>> {
        match e {
            Expr::Paren(p) => {
                self.map_range_series(&p.expr, with_start_timestamps, init, map, fold)
            }
            Expr::StepInvariant(s) => {
                self.map_range_series(&s.expr, with_start_timestamps, init, map, fold)
            }
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vector_selector;
                let refs = self.selector_refs(vs.timestamp, vs.original_offset);
                let (ext_back, ext_fwd) = self.range_extension(vs);
                let (Some(&first), Some(&last)) = (refs.first(), refs.last()) else {
                    return Ok(Vec::new());
                };
                let grid = WindowGrid {
                    refs: &refs,
                    range: ms.range,
                    ext_back,
                    ext_fwd,
                };
                let read = ReadRange {
                    mint: first - ms.range - ext_back + 1,
                    maxt: last + ext_fwd,
                    start_timestamps: self
                        .shared
                        .start_timestamps
                        .filter(|_| with_start_timestamps),
                };
                let querier = self.shared.queryable.querier(read.mint, read.maxt)?;
                let series = querier.select(&vs.matchers)?;
                let threads = self.shared.opts.max_query_threads;
                let mut samples_read = 0usize;
                let result = if threads > 1 && series.len() >= PARALLEL_MIN_SERIES {
                    self.map_parallel(
                        series,
                        threads,
                        read,
                        &grid,
                        &init,
                        &map,
                        &mut fold,
                        &mut samples_read,
                    )
                } else {
                    let mut state = init();
                    let mut bufs = DecodeBufs::default();
                    let mut values: Vec<StepValue> = Vec::new();
                    let run = (|| {
                        for s in series {
                            self.check_interrupt()?;
                            samples_read += read.decode(&s, &mut bufs)?;
                            if bufs.points.is_empty() {
                                continue;
                            }
                            let rs = RangeSeries {
                                metric: SeriesMetric::Owned(s.labels),
                                drop_name: false,
                                points: &bufs.points,
                                start_timestamps: &bufs.start_timestamps,
                            };
                            values.clear();
                            let r = map(&mut state, &grid, rs, &mut values)?;
                            fold(r, &values)?;
                        }
                        Ok(())
                    })();
                    run.map(|()| vec![state])
                };
                *self.shared.samples_read.borrow_mut() += samples_read;
                result
            }
            Expr::Subquery(sq) => {
                let input = self.eval_subquery(sq)?;
                let grid = input.grid();
                let mut state = init();
                let mut points: Vec<KernelPoint> = Vec::new();
                let mut values: Vec<StepValue> = Vec::new();
                for s in &input.series {
                    points.clear();
                    points.extend(s.points.iter().map(|p| (p.t, p.v)));
                    if points.is_empty() {
                        continue;
                    }
                    let rs = RangeSeries {
                        metric: SeriesMetric::Shared(s.metric.clone()),
                        drop_name: s.drop_name,
                        points: &points,
                        start_timestamps: &[],
                    };
                    values.clear();
                    let r = map(&mut state, &grid, rs, &mut values)?;
                    fold(r, &values)?;
                }
                Ok(vec![state])
            }
            other => exec_err(format!("expected range vector, got {other}")),
        }
    }

    /// [`Evaluator::map_range_series`] over `threads` worker threads: workers take blocks
    /// of [`BLOCK_SERIES`] series in turn, decode and map them; the calling thread folds
    /// finished blocks in block order. No worker starts a block more than
    /// `threads × BLOCKS_AHEAD_PER_WORKER` ahead of the next one to fold (it waits for
    /// the fold), so memory stays bounded. The first error stops the workers and is
    /// returned.
    #[allow(clippy::too_many_arguments)]
    fn map_parallel<S: Send, R: Send>(
        &self,
        series: Vec<StorageSeries>,
        threads: usize,
        read: ReadRange<'_>,
        grid: &WindowGrid<'_>,
        init: &(impl Fn() -> S + Sync),
        map: &(impl Fn(&mut S, &WindowGrid<'_>, RangeSeries<'_>, &mut Vec<StepValue>) -> Result<R>
              + Sync),
        fold: &mut impl FnMut(R, &[StepValue]) -> Result<()>,
        samples_read: &mut usize,
    ) -> Result<Vec<S>> {
        // Each block's series are moved to the worker that takes it (labels are not
        // copied, and chunk copies are freed as soon as the block is done).
        let mut rest = series.into_iter();
        let mut queued: Vec<Mutex<Vec<StorageSeries>>> = Vec::new();
        loop {
            let block: Vec<StorageSeries> = rest.by_ref().take(BLOCK_SERIES).collect();
            if block.is_empty() {
                break;
            }
            queued.push(Mutex::new(block));
        }
        let blocks = queued.len();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let workers = threads.min(blocks);
        let ahead = workers * BLOCKS_AHEAD_PER_WORKER;
        // Blocks folded so far, with a wake-up for workers waiting to start a block.
        let folded = Mutex::new(0usize);
        let progress = Condvar::new();
        // A worker's result for one block: the mapped series and the samples read.
        type BlockResult<R> = Result<BlockOut<R>>;
        std::thread::scope(|scope| {
            let (tx, rx) = sync_channel::<(usize, BlockResult<R>)>(ahead);
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let tx = tx.clone();
                    let (next, stop, folded, progress) = (&next, &stop, &folded, &progress);
                    let queued = &queued;
                    scope.spawn(move || {
                        let _guard = StopOnPanic {
                            stop,
                            folded,
                            progress,
                        };
                        let mut state = init();
                        let mut bufs = DecodeBufs::default();
                        loop {
                            let b = next.fetch_add(1, Ordering::Relaxed);
                            if b >= blocks || stop.load(Ordering::Relaxed) {
                                break;
                            }
                            {
                                // Blocks before `b` are all taken, and the one to fold
                                // next never waits here, so this cannot deadlock.
                                let mut f = folded.lock();
                                while b >= *f + ahead && !stop.load(Ordering::Relaxed) {
                                    progress.wait(&mut f);
                                }
                            }
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let mut block = queued
                                .get(b)
                                .map(|q| std::mem::take(&mut *q.lock()))
                                .unwrap_or_default();
                            let mut run = || -> BlockResult<R> {
                                let mut out = Vec::with_capacity(block.len());
                                let mut values: Vec<StepValue> = Vec::new();
                                let mut read_here = 0usize;
                                for s in block.iter_mut() {
                                    read_here += read.decode(s, &mut bufs)?;
                                    if bufs.points.is_empty() {
                                        continue;
                                    }
                                    let rs = RangeSeries {
                                        metric: SeriesMetric::Owned(std::mem::take(&mut s.labels)),
                                        drop_name: false,
                                        points: &bufs.points,
                                        start_timestamps: &bufs.start_timestamps,
                                    };
                                    let from = values.len();
                                    let r = map(&mut state, grid, rs, &mut values)?;
                                    out.push((r, from..values.len()));
                                }
                                Ok(BlockOut {
                                    mapped: out,
                                    values,
                                    samples_read: read_here,
                                    series: Vec::new(),
                                })
                            };
                            // The series go back to the folding thread to be freed there,
                            // where they were allocated (no cross-thread frees).
                            let res = run().map(|mut o| {
                                o.series = block;
                                o
                            });
                            let failed = res.is_err();
                            if tx.send((b, res)).is_err() || failed {
                                break;
                            }
                        }
                        state
                    })
                })
                .collect();
            drop(tx);
            let mut pending: BTreeMap<usize, BlockOut<R>> = BTreeMap::new();
            let mut want = 0usize;
            let mut failure = None;
            'recv: for (b, res) in rx.iter() {
                match res {
                    Ok(o) => {
                        *samples_read += o.samples_read;
                        pending.insert(b, o);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
                while let Some(o) = pending.remove(&want) {
                    want += 1;
                    for (r, range) in o.mapped {
                        if let Err(e) = fold(r, o.values.get(range).unwrap_or(&[])) {
                            failure = Some(e);
                            break 'recv;
                        }
                    }
                    *folded.lock() = want;
                    progress.notify_all();
                }
            }
            // Stop the workers (waiting ones are woken; a send fails once the receiver is
            // gone) and join them.
            stop.store(true, Ordering::Relaxed);
            {
                let _f = folded.lock();
                progress.notify_all();
            }
            drop(rx);
            let mut states = Vec::with_capacity(handles.len());
            for h in handles {
                match h.join() {
                    Ok(s) => states.push(s),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            match failure {
                Some(e) => Err(e),
                None if want < blocks => exec_err("range evaluation stopped before every series"),
                None => Ok(states),
            }
        })
    }
}
