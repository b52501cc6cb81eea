//! How many tasks of a map go out as one job: tiny tasks in jobs of about
//! 100 us of work, by a moving average of how long they took; and that
//! average kept with the task, for its next map.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::data::output::{TaskResult, duration_of};

/// About how much work one job of tiny tasks carries.
const JOB_TIME: Duration = Duration::from_micros(100);

/// How many tasks to queue as one job. Tasks of a few microseconds cost
/// the pool more to hand out one by one (a queue entry, a job state, a
/// wake-up) than to run, so they go out in jobs of about [`JOB_TIME`] of
/// work, by a moving average of how long the tasks took; a task of 100 us
/// or more, or one not yet seen, goes alone.
#[derive(Default)]
pub(crate) struct JobSizer {
    /// Seconds.
    mean_duration: Option<f64>,
    /// The same average, of jobs of several tasks only.
    in_jobs: Option<f64>,
}

impl JobSizer {
    /// A sizer starting from an average of `mean` seconds, if known.
    pub(crate) fn starting_at(mean: Option<f64>) -> JobSizer {
        JobSizer {
            mean_duration: mean,
            in_jobs: None,
        }
    }

    /// The average task duration, in seconds, if a task has been seen.
    #[cfg(test)]
    pub(crate) fn mean(&self) -> Option<f64> {
        self.mean_duration
    }

    /// Where the task's next map should start: what its tasks took in jobs
    /// of several, if any ran so, else the average. A map's first jobs are
    /// of one task each, and a short map may have few others: a task alone
    /// takes several times what it takes in a job, and the next map, with
    /// the inputs at hand, sends jobs of several.
    pub(crate) fn for_next_map(&self) -> Option<f64> {
        self.in_jobs.or(self.mean_duration)
    }

    /// Folds a finished job's tasks into the average: what each task adds
    /// to a job.
    ///
    /// The first task of a job pays for starting it (taking the kept
    /// instance, entering the call) and is often ten times its job-mates:
    /// folded in, it would swing the average after every job, and a map's
    /// first jobs, of one task each, would leave it several times what its
    /// tasks take in jobs, for the next map to start from. So a job of
    /// several counts as the mean of its other tasks, that many times over;
    /// a job of one, as its task.
    #[cfg(any(feature = "mpi", test))]
    pub(crate) fn observe(&mut self, results: &[TaskResult]) {
        self.fold(results, duration_of);
    }

    /// [`JobSizer::observe`], less the making of the job's instance: with
    /// instances kept, a job makes one (if any) for all its tasks, and the
    /// first jobs of a map, which make them, would otherwise be sized as
    /// if every task did. (With a fresh instance per task, jobs then hold
    /// more than [`JOB_TIME`] of work, by that share: tasks that make
    /// instances are not the tiny ones jobs of several are for.)
    pub(crate) fn observe_running(&mut self, results: &[TaskResult]) {
        self.fold(results, |result| {
            let metrics = match result {
                Ok(output) => output.metrics(),
                Err(error) => error.metrics(),
            };
            duration_of(result).saturating_sub(metrics.instantiate)
        });
    }

    fn fold(&mut self, results: &[TaskResult], duration: impl Fn(&TaskResult) -> Duration) {
        let (results, several) = match results {
            [] => return,
            [one] => (std::slice::from_ref(one), false),
            [_first, rest @ ..] => (rest, true),
        };
        let total: Duration = results.iter().map(duration).sum();
        let job_mean = total.as_secs_f64() / results.len() as f64;
        // Each task moves the average a sixteenth of the way.
        let weight = 1.0 - (15.0f64 / 16.0).powi(results.len().min(1 << 16) as i32);
        let fold = |average: Option<f64>| {
            Some(match average {
                Some(mean) => mean + (job_mean - mean) * weight,
                None => job_mean,
            })
        };
        self.mean_duration = fold(self.mean_duration);
        if several {
            self.in_jobs = fold(self.in_jobs);
        }
    }

    /// The job length now, between 1 and `max`.
    pub(crate) fn length(&self, max: usize) -> usize {
        self.tasks_in(JOB_TIME, max)
    }

    /// How many tasks take about `span` one after the other, between 1
    /// and `max`; 1 while no task has been seen.
    pub(crate) fn tasks_in(&self, span: Duration, max: usize) -> usize {
        match self.mean_duration {
            Some(mean) => {
                let tasks = (span.as_secs_f64() / mean.max(1e-9)) as usize;
                tasks.clamp(1, max.max(1))
            }
            None => 1,
        }
    }
}

/// How long a task's tasks took in its last map, in seconds, by the
/// running average of [`JobSizer::for_next_map`]: where its next map
/// starts, rather than from nothing. Shared by the task's clones.
pub(crate) struct AverageDuration(AtomicU64);

impl AverageDuration {
    /// No average yet.
    const NONE: u64 = u64::MAX;

    /// The average, in seconds, if a map has taken one.
    pub(crate) fn get(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            AverageDuration::NONE => None,
            bits => Some(f64::from_bits(bits)),
        }
    }

    pub(crate) fn set(&self, seconds: f64) {
        self.0.store(seconds.to_bits(), Ordering::Relaxed);
    }
}

impl Default for AverageDuration {
    fn default() -> Self {
        AverageDuration(AtomicU64::new(AverageDuration::NONE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::output::finished_in;

    #[test]
    fn a_job_is_about_a_hundred_microseconds_of_work() {
        let mut sizer = JobSizer::default();
        assert_eq!(sizer.length(32), 1);
        let output = |micros| finished_in(Duration::from_micros(micros));
        sizer.observe(&[output(10)]);
        assert_eq!(sizer.length(32), 10);
        assert_eq!(sizer.length(4), 4);
        for _ in 0..200 {
            sizer.observe(&[output(500)]);
        }
        assert_eq!(sizer.length(32), 1);

        // Jobs are sized by running time: making an instance is not a
        // task's own work when instances are kept.
        let mut sizer = JobSizer::default();
        // 401 us in all, 400 of them making the instance.
        let mut first = finished_in(Duration::from_micros(1));
        if let Ok(output) = &mut first {
            output.metrics.instantiate = Duration::from_micros(400);
        }
        sizer.observe_running(std::slice::from_ref(&first));
        assert_eq!(sizer.length(500), 100);
        sizer.observe(&[first]);
        assert_eq!(sizer.length(500), 3);
    }

    /// The first task of a job pays for starting it: what the others take
    /// moves the average, whichever of them finished last.
    #[test]
    fn a_jobs_slow_first_task_does_not_swing_the_average() {
        let output = |micros| finished_in(Duration::from_micros(micros));
        let mut sizer = JobSizer::starting_at(Some(3e-6));
        // 50 us to start the job, then tasks of 1 us; a slow one among
        // them counts as it is.
        let job: Vec<TaskResult> = std::iter::once(output(50))
            .chain((0..98).map(|_| output(1)))
            .chain([output(99)])
            .collect();
        sizer.observe(&job);
        let mean = sizer.mean().unwrap();
        assert!((mean - 1.99e-6).abs() < 0.01e-6, "{mean}");
        assert_eq!(sizer.length(1000), 50);
        // A job of one moves it a sixteenth of the way, as a task did.
        sizer.observe(&[output(50)]);
        let moved = sizer.mean().unwrap();
        assert!(
            (moved - (mean + (50e-6 - mean) / 16.0)).abs() < 1e-12,
            "{moved}"
        );
    }

    /// A short first map runs mostly tasks alone, which take several times
    /// what they take in jobs: the next map starts from the jobs'.
    #[test]
    fn the_next_map_starts_from_what_tasks_took_in_jobs() {
        let output = |micros| finished_in(Duration::from_micros(micros));
        let mut sizer = JobSizer::default();
        assert_eq!(sizer.for_next_map(), None);
        for _ in 0..8 {
            sizer.observe(&[output(5)]);
        }
        assert_eq!(sizer.for_next_map(), sizer.mean());
        let job: Vec<TaskResult> = std::iter::once(output(20))
            .chain((0..20).map(|_| output(1)))
            .collect();
        sizer.observe(&job);
        sizer.observe(&[output(5)]);
        let next = sizer.for_next_map().unwrap();
        assert!((next - 1e-6).abs() < 1e-12, "{next}");
        assert!(sizer.mean().unwrap() > 1.2e-6, "{:?}", sizer.mean());
    }
}
