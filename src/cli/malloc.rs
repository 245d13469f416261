//! The C allocator's one setting dbstash changes: large blocks always come from `mmap`, so each is
//! returned to the system when freed.
//!
//! Every compressed backup builds a zstd context of a few MiB (its job buffers, `run::relay`) and
//! frees it when the database is done. glibc's default threshold for `mmap` is dynamic: the first
//! such block freed raises it (up to 32 MiB), and from then on the buffers are carved from the
//! malloc arenas, whose freed space is kept, and scattered between the small long-lived
//! allocations of the run. A job of 400 tiny databases at `parallel: 2` climbed steadily to
//! 81 MiB of RSS with a live heap never above 18 MiB (heaptrack); with the threshold fixed at
//! glibc's own default it stays at ~31 MiB, like a job of 40. An `mmap` and page faults per
//! buffer cost microseconds next to a database's dump.

/// glibc's default `M_MMAP_THRESHOLD`, set explicitly: a set threshold is no longer dynamic.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Fix the allocator's `mmap` threshold, unless the environment sets it
/// (`MALLOC_MMAP_THRESHOLD_`, glibc's own variable). Call once, early.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes the allocator's parameters; any thread may call it.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// glibc's chunk header: the size word just before the block, bit 1 set for an mmapped chunk.
    fn is_mmapped(p: *const u8) -> bool {
        // SAFETY: `p` is a live block from malloc, which always has its size word before it.
        unsafe { *p.cast::<usize>().sub(1) & 2 != 0 }
    }

    #[test]
    fn a_large_block_freed_does_not_keep_the_next_ones_in_the_heap() {
        super::tune();
        // Like one database's zstd buffers, then the next database's.
        let first = vec![1u8; 8 << 20];
        assert!(is_mmapped(first.as_ptr()));
        drop(first);
        let next: Vec<u8> = Vec::with_capacity(2 << 20);
        assert!(
            is_mmapped(next.as_ptr()),
            "a 2 MiB block after an 8 MiB one was freed came from the heap"
        );
    }
}
