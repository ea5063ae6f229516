//! WatchOrder's slots: at most so many streams on one instance, and at
//! most a share of them per user, so one customer cannot take them all
//! (1,000 streams on one connection once left every other user refused).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot of the instance is taken.
    Full,
    /// The user holds their share already.
    UserShare(usize),
}

/// The slots of one instance.
#[derive(Debug, Clone)]
pub struct WatchSlots {
    all: Arc<Semaphore>,
    per_user: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One stream's slot, given back when dropped.
#[derive(Debug)]
pub struct WatchSlot {
    _place: OwnedSemaphorePermit,
    user: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.user);
            }
        }
    }
}

impl WatchSlots {
    /// `total` slots, at most `per_user` of them for any one user.
    pub fn new(total: usize, per_user: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(total)),
            per_user,
            held: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for `user`, if the instance and the user's share have one.
    pub fn take(&self, user: &str) -> Result<WatchSlot, Refused> {
        // The user's share first, under the lock, so a burst of one user's
        // requests cannot all pass it at once.
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.get(user).copied().unwrap_or(0);
        if count >= self.per_user {
            return Err(Refused::UserShare(self.per_user));
        }
        let place = Arc::clone(&self.all)
            .try_acquire_owned()
            .map_err(|_| Refused::Full)?;
        held.insert(user.to_owned(), count + 1);
        Ok(WatchSlot {
            _place: place,
            user: user.to_owned(),
            held: Arc::clone(&self.held),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_gets_a_share_and_others_still_get_slots() {
        let slots = WatchSlots::new(5, 2);
        let first = slots.take("greedy").expect("within the share");
        let _second = slots.take("greedy").expect("within the share");
        assert_eq!(slots.take("greedy").unwrap_err(), Refused::UserShare(2));
        let others: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|user| slots.take(user).expect("room left"))
            .collect();
        assert_eq!(slots.take("d").unwrap_err(), Refused::Full);
        drop(first);
        let _again = slots
            .take("greedy")
            .expect("a slot given back is free again");
        drop(others);
        assert!(
            slots.held.lock().unwrap().get("a").is_none(),
            "no entry kept"
        );
    }
}
