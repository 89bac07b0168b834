#[cfg(not(feature = "std"))]
use ::alloc::alloc::{self, handle_alloc_error, Layout};
use core::{cmp, mem};
#[cfg(feature = "std")]
use std::cell::Cell;
#[cfg(feature = "std")]
use std::alloc::{self, handle_alloc_error, Layout};

#[cfg(test)]
use core::ops::{Deref, DerefMut};
#[cfg(test)]
use core::slice;

pub(crate) struct Alloc<T> {
    ptr: *mut T,
    len: usize,
    align: usize,
}

impl<T> Alloc<T> {
    #[inline]
    pub unsafe fn new(nelem: usize, align: usize) -> Self {
        let align = cmp::max(align, mem::align_of::<T>());
        #[cfg(debug_assertions)]
        let layout = Layout::from_size_align(mem::size_of::<T>() * nelem, align).unwrap();
        #[cfg(not(debug_assertions))]
        let layout = Layout::from_size_align_unchecked(mem::size_of::<T>() * nelem, align);
        dprint!("Allocating nelem={}, layout={:?}", nelem, layout);
        let ptr = alloc::alloc(layout);
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        Alloc {
            ptr: ptr as *mut T,
            len: nelem,
            align,
        }
    }

    #[cfg(test)]
    pub fn init_with(mut self, elt: T) -> Alloc<T>
    where
        T: Copy,
    {
        for elt1 in &mut self[..] {
            *elt1 = elt;
        }
        self
    }

    #[inline]
    pub fn ptr_mut(&mut self) -> *mut T {
        self.ptr
    }
}

impl<T> Drop for Alloc<T> {
    fn drop(&mut self) {
        unsafe {
            let layout =
                Layout::from_size_align_unchecked(mem::size_of::<T>() * self.len, self.align);
            alloc::dealloc(self.ptr as _, layout);
        }
    }
}

#[cfg(test)]
impl<T> Deref for Alloc<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        unsafe { slice::from_raw_parts(self.ptr, self.len) }
    }
}

#[cfg(test)]
impl<T> DerefMut for Alloc<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        unsafe { slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// Alignment of the packing buffers kept for reuse: enough for every kernel (the
/// AVX-512 ones need 64 bytes).
const CACHED_ALIGN: usize = 64;

// Patch for `backprop` (see ../PATCHED.md): the packing buffer of the last product on
// this thread, kept for the next one, so steady-state callers that multiply matrices
// of the same shapes over and over (a training loop) do not allocate at all.
#[cfg(feature = "std")]
thread_local! {
    static PACKING_CACHE: Cell<Option<Alloc<u8>>> = const { Cell::new(None) };
}

/// A packing buffer taken from this thread's cache when the cached one is large
/// enough (else freshly allocated), and handed back to the cache when dropped. The
/// cache keeps one buffer, the largest seen, so its size is bounded by the blocking
/// parameters (`mc`, `kc`, `nc`), not by the matrices.
pub(crate) struct PackingBuffer {
    alloc: Option<Alloc<u8>>,
}

impl PackingBuffer {
    /// A buffer of at least `nelem` elements of `T`, aligned to `align` bytes.
    pub unsafe fn new<T>(nelem: usize, align: usize) -> Self {
        let bytes = nelem * mem::size_of::<T>();
        let align = cmp::max(align, mem::align_of::<T>());
        if align > CACHED_ALIGN {
            return PackingBuffer { alloc: Some(Alloc::new(bytes, align)) };
        }
        #[cfg(feature = "std")]
        {
            // `try_with`: during thread teardown the cache may be gone.
            if let Ok(Some(cached)) = PACKING_CACHE.try_with(Cell::take) {
                if cached.len >= bytes {
                    return PackingBuffer { alloc: Some(cached) };
                }
            }
        }
        PackingBuffer { alloc: Some(Alloc::new(bytes, CACHED_ALIGN)) }
    }

    #[inline]
    pub fn ptr_mut<T>(&mut self) -> *mut T {
        match &mut self.alloc {
            Some(alloc) => alloc.ptr_mut() as *mut T,
            None => unreachable!(),
        }
    }
}

impl Drop for PackingBuffer {
    fn drop(&mut self) {
        #[cfg(feature = "std")]
        {
            if let Some(alloc) = self.alloc.take() {
                if alloc.align == CACHED_ALIGN {
                    // Keep the larger of this buffer and whatever is cached now.
                    let _ = PACKING_CACHE.try_with(|cache| {
                        let keep = match cache.take() {
                            Some(other) if other.len > alloc.len => other,
                            _ => alloc,
                        };
                        cache.set(Some(keep));
                    });
                }
            }
        }
    }
}
