//! What the machine lets this OS process have, and what it holds: the
//! defaults of the runtime's caps (see
//! [`RuntimeBuilder`](crate::RuntimeBuilder)) and the resident memory
//! hosts, tests and benchmarks watch. Linux; `None` elsewhere.

use std::num::NonZeroUsize;

/// The memory this OS process can count on: the least of the machine's
/// RAM, its cgroup's limit and its address-space limit (`ulimit -v`).
/// `None` where none of them can be read.
pub fn memory() -> Option<NonZeroUsize> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let ram = read("/proc/meminfo").and_then(|t| meminfo_total(&t));
    let cgroup = read("/sys/fs/cgroup/memory.max").and_then(|t| t.trim().parse().ok());
    let rlimit = read("/proc/self/limits").and_then(|t| address_space_limit(&t));
    [ram, cgroup, rlimit]
        .into_iter()
        .flatten()
        .min()
        .and_then(|b: u64| NonZeroUsize::new(usize::try_from(b).unwrap_or(usize::MAX)))
}

/// The resident set size of this OS process, in bytes
/// (`/proc/self/statm`).
pub fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(page_size())
}

/// The page size, from the ELF auxiliary vector (`AT_PAGESZ`); 4 KiB if
/// it cannot be read.
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
    auxv.chunks_exact(16)
        .map(|c| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
            (word(&c[..8]), word(&c[8..]))
        })
        .find(|&(key, _)| key == AT_PAGESZ)
        .map_or(4096, |(_, v)| v)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft "Max address space" of `/proc/self/limits`, in bytes
/// (`None` when unlimited).
fn address_space_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    let soft = line
        .trim_start_matches("Max address space")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernels_formats() {
        assert_eq!(
            meminfo_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000 * 1024)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max address space         2048000000           unlimited            bytes\n";
        assert_eq!(address_space_limit(limits), Some(2_048_000_000));
        let unlimited =
            "Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(address_space_limit(unlimited), None);
        assert!(memory().is_some());
        assert_eq!(page_size() % 4096, 0);
        assert!(resident_memory().is_some_and(|b| b > 0));
    }
}
