use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{MAX_TTL, ReplayKey, ReplayStore, StoreError};

/// A [`ReplayStore`] in process memory: correct for one server process, not shared between
/// replicas (use the Redis store for that). Expired entries are swept as new ones arrive.
#[derive(Debug, Default)]
pub struct MemoryReplayStore {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// Key → (expiry, owner).
    map: HashMap<ReplayKey, (Instant, String)>,
    next_sweep_len: usize,
}

impl MemoryReplayStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .map
            .values()
            .filter(|(expiry, _)| *expiry > now)
            .count()
    }

    /// Whether there are no live entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding this lock cannot leave the map inconsistent (every update is
        // a single insert or remove), so a poisoned lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn insert_if_absent(
        &self,
        key: &ReplayKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        // Fail closed in the (practically impossible) case that the clock cannot represent
        // the expiry: recording nothing would let the authorization be replayed.
        let expiry = now.checked_add(ttl.min(MAX_TTL)).ok_or_else(|| {
            StoreError::Unavailable(format!("a TTL of {ttl:?} is beyond this clock's range"))
        })?;
        let mut entries = self.lock();
        // Sweep when the map has doubled since the last sweep: amortised O(1) per insert.
        if entries.map.len() >= entries.next_sweep_len {
            entries.map.retain(|_, (expiry, _)| *expiry > now);
            entries.next_sweep_len = (entries.map.len() * 2).max(1024);
        }
        // One lookup: the key is hashed once.
        match entries.map.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(held) if held.get().0 > now => Ok(false),
            std::collections::hash_map::Entry::Occupied(mut expired) => {
                expired.insert((expiry, owner.to_owned()));
                Ok(true)
            }
            std::collections::hash_map::Entry::Vacant(free) => {
                free.insert((expiry, owner.to_owned()));
                Ok(true)
            }
        }
    }

    async fn remove(&self, key: &ReplayKey, owner: &str) -> Result<(), StoreError> {
        let mut entries = self.lock();
        if entries
            .map
            .get(key)
            .is_some_and(|(_, held_by)| held_by == owner)
        {
            entries.map.remove(key);
        }
        Ok(())
    }

    async fn owner(&self, key: &ReplayKey) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        Ok(self
            .lock()
            .map
            .get(key)
            .filter(|(expiry, _)| *expiry > now)
            .map(|(_, owner)| owner.clone()))
    }
}
