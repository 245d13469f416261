//! PIDs dbstash spawned itself (tokio waits for them); the PID-1 reaper leaves these alone.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

fn set() -> &'static Mutex<HashSet<i32>> {
    static S: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashSet::new()))
}

pub fn add(pid: i32) {
    if let Ok(mut s) = set().lock() {
        s.insert(pid);
    }
}

pub fn remove(pid: i32) {
    if let Ok(mut s) = set().lock() {
        s.remove(&pid);
    }
}

pub fn contains(pid: i32) -> bool {
    set().lock().map(|s| s.contains(&pid)).unwrap_or(true)
}
