//! Counting in time: [`Burst`] says when `count` events fell within a sliding window, and
//! [`RateWindow`] keeps an account's events per fixed window and their moving average. Both run
//! on event time, never the wall clock, so replaying the ledger gives the same answers.

use std::collections::VecDeque;

/// The times of recent events, to tell when `count` of them fall within a window. Holds at most
/// `count` timestamps.
#[derive(Debug, Default, Clone)]
pub(crate) struct Burst {
    times: VecDeque<i64>,
}

impl Burst {
    /// Records an event at `time`. True when it is the `count`-th within `window_us`; the counter
    /// then starts again, so a sustained burst raises one finding per `count` events.
    pub fn hit(&mut self, time: i64, count: usize, window_us: i64) -> bool {
        let horizon = time.saturating_sub(window_us);
        while self.times.front().is_some_and(|&t| t <= horizon) {
            self.times.pop_front();
        }
        self.times.push_back(time);
        if self.times.len() >= count {
            self.times.clear();
            return true;
        }
        false
    }

    /// The latest recorded time.
    pub fn last(&self) -> Option<i64> {
        self.times.back().copied()
    }

    /// Approximate heap bytes.
    pub fn approx_bytes(&self) -> usize {
        self.times.capacity() * size_of::<i64>()
    }
}

/// Weight of the newest window in the moving average.
const EWMA_ALPHA: f64 = 0.1;

/// An account's event count in the current fixed window and the moving average over its past
/// active windows. Windows without events are not averaged in: a job that runs for five minutes
/// every hour has the rate of those five minutes, not a near-zero average it would always exceed.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RateWindow {
    /// Index of the current window (event time / window length).
    index: i64,
    /// Events in it so far.
    count: u32,
    /// Whether the current window was already reported as a spike.
    reported: bool,
    /// Past active windows folded into `average`.
    windows: u32,
    /// Moving average of past active windows' counts.
    average: f64,
}

impl RateWindow {
    /// Counts an event at `time`, returning the count of its window so far, and the average of
    /// the past windows when this event is the one that first makes the window a spike (at least
    /// `min_events` and `factor` × average, with at least `min_windows` past windows).
    pub fn hit(
        &mut self,
        time: i64,
        window_us: i64,
        spike: (f64, u32),
        min_windows: u32,
    ) -> Option<(u32, f64)> {
        let index = time.div_euclid(window_us);
        // Events sequenced slightly out of time order count in the current window.
        if index > self.index {
            if self.count > 0 {
                self.average = if self.windows == 0 {
                    f64::from(self.count)
                } else {
                    self.average + EWMA_ALPHA * (f64::from(self.count) - self.average)
                };
                self.windows = self.windows.saturating_add(1);
            }
            self.index = index;
            self.count = 0;
            self.reported = false;
        }
        self.count = self.count.saturating_add(1);
        let (factor, min_events) = spike;
        let is_spike = !self.reported
            && self.windows >= min_windows
            && self.count >= min_events
            && f64::from(self.count) >= factor * self.average;
        if is_spike {
            self.reported = true;
            return Some((self.count, self.average));
        }
        None
    }

    /// The moving average of past active windows, and how many there were.
    pub fn average(&self) -> (f64, u32) {
        (self.average, self.windows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_needs_count_within_window_and_restarts() {
        let mut b = Burst::default();
        assert!(!b.hit(0, 3, 10));
        assert!(!b.hit(5, 3, 10));
        // 0 has left the window (10 - 10 = 0 is not within).
        assert!(!b.hit(10, 3, 10));
        assert!(b.hit(11, 3, 10));
        assert!(b.last().is_none());
        assert!(!b.hit(12, 3, 10));
    }

    #[test]
    fn rate_averages_active_windows_only() {
        let mut r = RateWindow::default();
        for w in [0, 5, 60] {
            for i in 0..10 {
                assert!(r.hit(w * 100 + i, 100, (10.0, 50), 2).is_none());
            }
        }
        assert_eq!(r.average(), (10.0, 2));
        // Window 61: 99 events are not yet a spike (min 50 but needs 10 × 10 = 100).
        for i in 0..99 {
            assert!(r.hit(6_100 + i, 100, (10.0, 50), 2).is_none());
        }
        assert_eq!(r.hit(6_199, 100, (10.0, 50), 2), Some((100, 10.0)));
        // Reported once per window.
        assert!(r.hit(6_199, 100, (10.0, 50), 2).is_none());
        // An earlier time counts in the current window.
        assert!(r.hit(0, 100, (10.0, 50), 2).is_none());
    }
}
