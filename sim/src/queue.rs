//! The event queue: a total order on `(time, sequence number)`.
//!
//! Simulated time never advances by ticks; [`EventQueue::pop`] jumps straight to
//! the earliest pending event. Two events at the same time run in the order they
//! were scheduled, so the order never depends on heap internals.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Simulated time in nanoseconds since the start of the run.
pub type SimTimeNs = u64;

/// A pending event.
#[derive(Debug)]
struct Entry<E> {
    at_ns: SimTimeNs,
    sequence: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ns, self.sequence) == (other.at_ns, other.sequence)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_ns, self.sequence).cmp(&(other.at_ns, other.sequence))
    }
}

/// Why an event could not be scheduled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The event would happen before the current simulated time.
    #[error("event at {at_ns} ns is before the current time {now_ns} ns")]
    InThePast {
        /// Requested time.
        at_ns: SimTimeNs,
        /// Current simulated time.
        now_ns: SimTimeNs,
    },
    /// The queue holds its maximum number of pending events.
    #[error("event queue is full ({capacity} pending events)")]
    Full {
        /// The bound.
        capacity: usize,
    },
}

/// A bounded priority queue of timed events.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Reverse<Entry<E>>>,
    now_ns: SimTimeNs,
    next_sequence: u64,
    capacity: usize,
}

impl<E> EventQueue<E> {
    /// An empty queue at time zero holding at most `capacity` pending events.
    pub fn new(capacity: usize) -> EventQueue<E> {
        EventQueue {
            heap: BinaryHeap::new(),
            now_ns: 0,
            next_sequence: 0,
            capacity,
        }
    }

    /// The current simulated time: the time of the last popped event.
    pub fn now_ns(&self) -> SimTimeNs {
        self.now_ns
    }

    /// Pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `at_ns`; returns its sequence number.
    pub fn schedule(&mut self, at_ns: SimTimeNs, event: E) -> Result<u64, ScheduleError> {
        if at_ns < self.now_ns {
            return Err(ScheduleError::InThePast {
                at_ns,
                now_ns: self.now_ns,
            });
        }
        if self.heap.len() >= self.capacity {
            return Err(ScheduleError::Full {
                capacity: self.capacity,
            });
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.heap.push(Reverse(Entry {
            at_ns,
            sequence,
            event,
        }));
        Ok(sequence)
    }

    /// Removes the earliest event and advances time to it.
    pub fn pop(&mut self) -> Option<(SimTimeNs, u64, E)> {
        let Reverse(entry) = self.heap.pop()?;
        debug_assert!(entry.at_ns >= self.now_ns, "time never runs backwards");
        self.now_ns = entry.at_ns;
        Some((entry.at_ns, entry.sequence, entry.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_by_scheduling_order() {
        let mut queue = EventQueue::new(16);
        queue.schedule(30, "c").expect("room");
        queue.schedule(10, "a1").expect("room");
        queue.schedule(10, "a2").expect("room");
        queue.schedule(20, "b").expect("room");
        let order: Vec<&str> = std::iter::from_fn(|| queue.pop().map(|(_, _, e)| e)).collect();
        assert_eq!(order, ["a1", "a2", "b", "c"]);
        assert_eq!(queue.now_ns(), 30);
    }

    #[test]
    fn rejects_the_past_and_beyond_capacity() {
        let mut queue = EventQueue::new(2);
        queue.schedule(5, ()).expect("room");
        queue.schedule(6, ()).expect("room");
        assert_eq!(
            queue.schedule(7, ()),
            Err(ScheduleError::Full { capacity: 2 })
        );
        queue.pop();
        assert_eq!(
            queue.schedule(4, ()),
            Err(ScheduleError::InThePast {
                at_ns: 4,
                now_ns: 5
            })
        );
        assert_eq!(queue.len(), 1);
    }
}
