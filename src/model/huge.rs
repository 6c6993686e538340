//! Large tables on huge pages.
//!
//! The byte model reads hundreds of MiB of hash tables at random, a few dozen places a
//! byte. With 4 KiB pages nearly every such read also misses the TLB and walks the page
//! table; with 2 MiB pages the walk is mostly cached. Linux gives a mapping huge pages
//! when asked (`madvise(MADV_HUGEPAGE)`, honoured where transparent huge pages are in
//! `madvise` or `always` mode, as on Debian), before its pages are first touched. A hint
//! only: where it is refused or unavailable, nothing changes but the speed. Measured (the
//! first 300 kB of book1, `fast`, the byte model's four large tables): 2.84 → 2.57 s user
//! time, mean of 3.

/// A vector of `n` copies of `value` whose memory is advised to use huge pages (on Linux;
/// elsewhere a plain `vec![value; n]`). For a zero `value` the allocation comes zeroed
/// from the system and is not touched here, so the advice precedes every page's first
/// use; other values are written first (their pages stay small unless the kernel merges
/// them later).
pub fn vec<T: Clone>(value: T, n: usize) -> Vec<T> {
    let v = vec![value; n];
    advise(&v);
    v
}

#[cfg(target_os = "linux")]
fn advise<T>(v: &Vec<T>) {
    const HUGE: usize = 2 << 20;
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < HUGE {
        return;
    }
    let start = v.as_ptr() as usize;
    // madvise wants a page-aligned start; the allocator's large blocks are mmap'ed, so
    // the rounding leaves out at most one page.
    let page = 4096;
    let aligned = start.div_ceil(page) * page;
    let len = (start + bytes).saturating_sub(aligned) / page * page;
    // SAFETY: advice on memory this vector owns; it changes no contents.
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise<T>(_: &Vec<T>) {}
