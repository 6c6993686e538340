//! The few CUDA driver and NVRTC calls nnz needs, loaded at run time with `dlopen`.
//!
//! Loading the libraries when a GPU is asked for (instead of linking them) keeps the
//! `cuda` feature buildable on any machine: no CUDA toolkit, no `nvcc`, no GPU is needed
//! to compile nnz with it, so CI builds and tests it. At run time the driver
//! (`libcuda.so.1`, installed with every NVIDIA driver) runs the kernels, and NVRTC
//! (`libnvrtc.so`, part of the CUDA toolkit and of PyTorch's wheels) compiles their
//! source once per process. `NNZ_NVRTC` names NVRTC's file where it is not on the
//! loader's path.

use anyhow::{bail, ensure, Context as _, Result};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::OnceLock;

type CuResult = c_int;
/// A device address (`CUdeviceptr`).
pub type DevicePtr = u64;
type Handle = *mut c_void;

/// The driver API entry points, resolved once.
struct Api {
    cu_init: unsafe extern "C" fn(c_uint) -> CuResult,
    cu_device_get: unsafe extern "C" fn(*mut c_int, c_int) -> CuResult,
    cu_device_get_name: unsafe extern "C" fn(*mut c_char, c_int, c_int) -> CuResult,
    cu_device_get_attribute: unsafe extern "C" fn(*mut c_int, c_int, c_int) -> CuResult,
    cu_primary_ctx_retain: unsafe extern "C" fn(*mut Handle, c_int) -> CuResult,
    cu_ctx_set_current: unsafe extern "C" fn(Handle) -> CuResult,
    cu_module_load_data: unsafe extern "C" fn(*mut Handle, *const c_void) -> CuResult,
    cu_module_get_function: unsafe extern "C" fn(*mut Handle, Handle, *const c_char) -> CuResult,
    cu_module_unload: unsafe extern "C" fn(Handle) -> CuResult,
    cu_mem_alloc: unsafe extern "C" fn(*mut DevicePtr, usize) -> CuResult,
    cu_mem_free: unsafe extern "C" fn(DevicePtr) -> CuResult,
    cu_memcpy_htod: unsafe extern "C" fn(DevicePtr, *const c_void, usize) -> CuResult,
    cu_memcpy_dtoh: unsafe extern "C" fn(*mut c_void, DevicePtr, usize) -> CuResult,
    cu_memcpy_dtod: unsafe extern "C" fn(DevicePtr, DevicePtr, usize) -> CuResult,
    cu_memset_d32: unsafe extern "C" fn(DevicePtr, c_uint, usize) -> CuResult,
    #[allow(clippy::type_complexity)]
    cu_launch_kernel: unsafe extern "C" fn(
        Handle,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        Handle,
        *mut *mut c_void,
        *mut *mut c_void,
    ) -> CuResult,
    cu_ctx_synchronize: unsafe extern "C" fn() -> CuResult,
    cu_get_error_string: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
}

/// NVRTC's entry points.
struct Nvrtc {
    create: unsafe extern "C" fn(
        *mut Handle,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> c_int,
    compile: unsafe extern "C" fn(Handle, c_int, *const *const c_char) -> c_int,
    log_size: unsafe extern "C" fn(Handle, *mut usize) -> c_int,
    log: unsafe extern "C" fn(Handle, *mut c_char) -> c_int,
    ptx_size: unsafe extern "C" fn(Handle, *mut usize) -> c_int,
    ptx: unsafe extern "C" fn(Handle, *mut c_char) -> c_int,
    destroy: unsafe extern "C" fn(*mut Handle) -> c_int,
}

fn dlopen_any(names: &[String]) -> Result<(Handle, String)> {
    for name in names {
        let c = CString::new(name.as_str())?;
        // SAFETY: dlopen with a valid C string; a null result is handled.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if !h.is_null() {
            return Ok((h, name.clone()));
        }
    }
    bail!("none of {} could be loaded", names.join(", "))
}

fn sym(lib: Handle, name: &str) -> Result<*mut c_void> {
    let c = CString::new(name)?;
    // SAFETY: lib is a live handle from dlopen.
    let p = unsafe { libc::dlsym(lib, c.as_ptr()) };
    ensure!(!p.is_null(), "the CUDA library has no symbol {name}");
    Ok(p)
}

macro_rules! load {
    ($lib:expr, $name:literal) => {
        // SAFETY: the symbol is the documented C function of that name, whose signature
        // the field's type spells out.
        unsafe { std::mem::transmute::<*mut c_void, _>(sym($lib, $name)?) }
    };
}

// `load!`'s transmute targets the struct field's type: annotating it would repeat it.
#[allow(clippy::missing_transmute_annotations)]
fn api() -> Result<&'static Api> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        let load_api = || -> Result<Api> {
            let (lib, _) = dlopen_any(&["libcuda.so.1".into(), "libcuda.so".into()])
                .context("no NVIDIA driver found (libcuda.so.1)")?;
            Ok(Api {
                cu_init: load!(lib, "cuInit"),
                cu_device_get: load!(lib, "cuDeviceGet"),
                cu_device_get_name: load!(lib, "cuDeviceGetName"),
                cu_device_get_attribute: load!(lib, "cuDeviceGetAttribute"),
                cu_primary_ctx_retain: load!(lib, "cuDevicePrimaryCtxRetain"),
                cu_ctx_set_current: load!(lib, "cuCtxSetCurrent"),
                cu_module_load_data: load!(lib, "cuModuleLoadData"),
                cu_module_get_function: load!(lib, "cuModuleGetFunction"),
                cu_module_unload: load!(lib, "cuModuleUnload"),
                cu_mem_alloc: load!(lib, "cuMemAlloc_v2"),
                cu_mem_free: load!(lib, "cuMemFree_v2"),
                cu_memcpy_htod: load!(lib, "cuMemcpyHtoD_v2"),
                cu_memcpy_dtoh: load!(lib, "cuMemcpyDtoH_v2"),
                cu_memcpy_dtod: load!(lib, "cuMemcpyDtoD_v2"),
                cu_memset_d32: load!(lib, "cuMemsetD32_v2"),
                cu_launch_kernel: load!(lib, "cuLaunchKernel"),
                cu_ctx_synchronize: load!(lib, "cuCtxSynchronize"),
                cu_get_error_string: load!(lib, "cuGetErrorString"),
            })
        };
        load_api().map_err(|e| format!("{e:#}"))
    })
    .as_ref()
    .map_err(|e| anyhow::anyhow!("{e}"))
}

#[allow(clippy::missing_transmute_annotations)]
fn nvrtc() -> Result<&'static Nvrtc> {
    static NVRTC: OnceLock<std::result::Result<Nvrtc, String>> = OnceLock::new();
    NVRTC
        .get_or_init(|| {
            let load_nvrtc = || -> Result<Nvrtc> {
                let mut names: Vec<String> = std::env::var("NNZ_NVRTC").into_iter().collect();
                names.extend(
                    ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "/usr/local/cuda/lib64/libnvrtc.so"]
                        .map(String::from),
                );
                let (lib, _) = dlopen_any(&names).context(
                    "NVRTC, CUDA's run-time compiler, was not found (set NNZ_NVRTC to the path of libnvrtc.so)",
                )?;
                Ok(Nvrtc {
                    create: load!(lib, "nvrtcCreateProgram"),
                    compile: load!(lib, "nvrtcCompileProgram"),
                    log_size: load!(lib, "nvrtcGetProgramLogSize"),
                    log: load!(lib, "nvrtcGetProgramLog"),
                    ptx_size: load!(lib, "nvrtcGetPTXSize"),
                    ptx: load!(lib, "nvrtcGetPTX"),
                    destroy: load!(lib, "nvrtcDestroyProgram"),
                })
            };
            load_nvrtc().map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn check(api: &Api, r: CuResult, what: &str) -> Result<()> {
    if r == 0 {
        return Ok(());
    }
    let mut s: *const c_char = std::ptr::null();
    // SAFETY: cuGetErrorString writes a pointer to a static string or leaves it null.
    unsafe { (api.cu_get_error_string)(r, &mut s) };
    let msg = if s.is_null() {
        format!("error {r}")
    } else {
        // SAFETY: a non-null result is a NUL-terminated static string.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    };
    bail!("CUDA {what} failed: {msg}")
}

/// Compiles CUDA C `source` to PTX for compute capability `major.minor` with NVRTC.
/// `options` are NVRTC's command-line options.
pub fn compile_ptx(source: &str, major: i32, minor: i32, options: &[&str]) -> Result<Vec<u8>> {
    let nv = nvrtc()?;
    let src = CString::new(source)?;
    let name = CString::new("nnz_kernels.cu")?;
    let mut prog: Handle = std::ptr::null_mut();
    // SAFETY: valid C strings, no headers.
    let r = unsafe { (nv.create)(&mut prog, src.as_ptr(), name.as_ptr(), 0, std::ptr::null(), std::ptr::null()) };
    ensure!(r == 0, "NVRTC could not create a program (error {r})");
    let mut opts: Vec<CString> = vec![CString::new(format!("--gpu-architecture=compute_{major}{minor}"))?];
    for o in options {
        opts.push(CString::new(*o)?);
    }
    let ptrs: Vec<*const c_char> = opts.iter().map(|c| c.as_ptr()).collect();
    // SAFETY: prog is live; ptrs point into `opts`, alive for the call.
    let r = unsafe { (nv.compile)(prog, ptrs.len() as c_int, ptrs.as_ptr()) };
    let mut log_len = 0usize;
    // SAFETY: prog is live; the log buffer is as long as NVRTC says.
    let log = unsafe {
        (nv.log_size)(prog, &mut log_len);
        let mut buf = vec![0u8; log_len.max(1)];
        (nv.log)(prog, buf.as_mut_ptr() as *mut c_char);
        String::from_utf8_lossy(&buf).trim_end_matches('\0').trim().to_string()
    };
    if r != 0 {
        // SAFETY: prog is live.
        unsafe { (nv.destroy)(&mut prog) };
        bail!("NVRTC could not compile nnz's kernels (error {r}):\n{log}");
    }
    let mut len = 0usize;
    // SAFETY: prog is live; the buffer is as long as NVRTC says.
    let ptx = unsafe {
        (nv.ptx_size)(prog, &mut len);
        let mut buf = vec![0u8; len];
        (nv.ptx)(prog, buf.as_mut_ptr() as *mut c_char);
        (nv.destroy)(&mut prog);
        buf
    };
    Ok(ptx)
}

/// One GPU with its primary context, current on the calling thread.
pub struct Gpu {
    api: &'static Api,
    ctx: Handle,
    /// The device's name and compute capability.
    pub name: String,
    pub capability: (i32, i32),
}

// SAFETY: the context handle is only used through the driver, which is thread-safe; nnz
// drives one model from one thread at a time.
unsafe impl Send for Gpu {}

impl Gpu {
    /// Opens device `ordinal`.
    pub fn open(ordinal: i32) -> Result<Gpu> {
        let api = api()?;
        // SAFETY: plain driver calls with out-pointers to locals.
        unsafe {
            check(api, (api.cu_init)(0), "initialization")?;
            let mut dev = 0;
            check(api, (api.cu_device_get)(&mut dev, ordinal), "device lookup")?;
            let mut name = [0 as c_char; 256];
            check(api, (api.cu_device_get_name)(name.as_mut_ptr(), 256, dev), "device name")?;
            let (mut major, mut minor) = (0, 0);
            // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76.
            check(api, (api.cu_device_get_attribute)(&mut major, 75, dev), "device attribute")?;
            check(api, (api.cu_device_get_attribute)(&mut minor, 76, dev), "device attribute")?;
            let mut ctx = std::ptr::null_mut();
            check(api, (api.cu_primary_ctx_retain)(&mut ctx, dev), "context creation")?;
            check(api, (api.cu_ctx_set_current)(ctx), "context activation")?;
            Ok(Gpu {
                api,
                ctx,
                name: CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned(),
                capability: (major, minor),
            })
        }
    }

    /// Makes this GPU's context current on the calling thread.
    pub fn bind(&self) -> Result<()> {
        // SAFETY: ctx is a retained primary context.
        check(self.api, unsafe { (self.api.cu_ctx_set_current)(self.ctx) }, "context activation")
    }

    /// Loads a module from PTX text.
    pub fn load_module(&self, ptx: &[u8]) -> Result<Module> {
        let mut ptx = ptx.to_vec();
        if ptx.last() != Some(&0) {
            ptx.push(0);
        }
        let mut m = std::ptr::null_mut();
        // SAFETY: ptx is NUL-terminated.
        check(
            self.api,
            unsafe { (self.api.cu_module_load_data)(&mut m, ptx.as_ptr() as *const c_void) },
            "module load",
        )?;
        Ok(Module { api: self.api, module: m })
    }

    /// `n` floats of device memory, zeroed.
    pub fn alloc(&self, n: usize) -> Result<Buffer> {
        let mut p = 0;
        let bytes = (n.max(1)) * 4;
        // SAFETY: out-pointer to a local.
        check(self.api, unsafe { (self.api.cu_mem_alloc)(&mut p, bytes) }, "allocation")
            .with_context(|| format!("allocating {} MiB on the GPU", bytes >> 20))?;
        let b = Buffer { api: self.api, ptr: p, len: n };
        b.fill_bits(0)?;
        Ok(b)
    }

    /// Waits for all queued work.
    pub fn synchronize(&self) -> Result<()> {
        // SAFETY: plain driver call.
        check(self.api, unsafe { (self.api.cu_ctx_synchronize)() }, "synchronization")
    }
}

/// A device buffer of 32-bit elements (f32, or u32 for symbol indices).
pub struct Buffer {
    api: &'static Api,
    ptr: DevicePtr,
    len: usize,
}

impl Buffer {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device address of element `i`.
    pub fn at(&self, i: usize) -> DevicePtr {
        debug_assert!(i <= self.len);
        self.ptr + 4 * i as u64
    }

    /// Copies `src` to elements `at..at + src.len()`.
    pub fn upload<T: Copy>(&self, at: usize, src: &[T]) -> Result<()> {
        assert_eq!(std::mem::size_of::<T>(), 4);
        assert!(at + src.len() <= self.len, "upload out of range");
        // SAFETY: the range is inside the allocation (checked); src is a live slice.
        check(
            self.api,
            unsafe { (self.api.cu_memcpy_htod)(self.at(at), src.as_ptr() as *const c_void, src.len() * 4) },
            "copy to the GPU",
        )
    }

    /// Copies elements `at..at + dst.len()` to `dst`.
    pub fn download<T: Copy>(&self, at: usize, dst: &mut [T]) -> Result<()> {
        assert_eq!(std::mem::size_of::<T>(), 4);
        assert!(at + dst.len() <= self.len, "download out of range");
        // SAFETY: the range is inside the allocation (checked); dst is a live slice.
        check(
            self.api,
            unsafe { (self.api.cu_memcpy_dtoh)(dst.as_mut_ptr() as *mut c_void, self.at(at), dst.len() * 4) },
            "copy from the GPU",
        )
    }

    /// Copies `len` elements from `src` (at `src_at`) to `self` (at `at`), on the GPU.
    pub fn copy_from(&self, at: usize, src: &Buffer, src_at: usize, len: usize) -> Result<()> {
        assert!(at + len <= self.len && src_at + len <= src.len, "device copy out of range");
        // SAFETY: both ranges are inside their allocations (checked).
        check(self.api, unsafe { (self.api.cu_memcpy_dtod)(self.at(at), src.at(src_at), len * 4) }, "copy on the GPU")
    }

    /// Sets every element to the 32-bit pattern `bits`.
    pub fn fill_bits(&self, bits: u32) -> Result<()> {
        // SAFETY: the whole allocation.
        check(self.api, unsafe { (self.api.cu_memset_d32)(self.ptr, bits, self.len.max(1)) }, "memset")
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: ptr came from cuMemAlloc and is freed once.
        unsafe { (self.api.cu_mem_free)(self.ptr) };
    }
}

/// A kernel argument: device addresses, 32-bit integers and floats.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    Ptr(DevicePtr),
    I(i32),
    F(f32),
}

/// A loaded module of kernels.
pub struct Module {
    api: &'static Api,
    module: Handle,
}

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: the module was loaded once and is unloaded once; its kernels must not
        // be launched after this (their owner keeps the module beside them).
        unsafe { (self.api.cu_module_unload)(self.module) };
    }
}

/// One kernel of a [`Module`]; valid while the module is loaded.
#[derive(Clone, Copy)]
pub struct Kernel {
    api: &'static Api,
    f: Handle,
}

// SAFETY: function handles are immutable driver objects.
unsafe impl Send for Kernel {}
unsafe impl Send for Module {}

impl Module {
    pub fn kernel(&self, name: &str) -> Result<Kernel> {
        let c = CString::new(name)?;
        let mut f = std::ptr::null_mut();
        // SAFETY: module is loaded; out-pointer to a local.
        check(self.api, unsafe { (self.api.cu_module_get_function)(&mut f, self.module, c.as_ptr()) }, name)?;
        Ok(Kernel { api: self.api, f })
    }
}

impl Kernel {
    /// Queues the kernel on the default stream with `grid` blocks of `block` threads.
    pub fn launch(&self, grid: (u32, u32, u32), block: u32, args: &[Arg]) -> Result<()> {
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return Ok(());
        }
        // Each argument in an 8-byte slot: the kernel reads as many bytes as its
        // parameter's type has (little-endian, so a 4-byte value sits at the start).
        let mut slots: Vec<u64> = args
            .iter()
            .map(|a| match *a {
                Arg::Ptr(p) => p,
                Arg::I(i) => i as u32 as u64,
                Arg::F(f) => f.to_bits() as u64,
            })
            .collect();
        let mut ptrs: Vec<*mut c_void> = slots.iter_mut().map(|s| s as *mut u64 as *mut c_void).collect();
        // SAFETY: the argument slots outlive the call, which copies them.
        check(
            self.api,
            unsafe {
                (self.api.cu_launch_kernel)(
                    self.f,
                    grid.0,
                    grid.1,
                    grid.2,
                    block,
                    1,
                    1,
                    0,
                    std::ptr::null_mut(),
                    ptrs.as_mut_ptr(),
                    std::ptr::null_mut(),
                )
            },
            "kernel launch",
        )
    }
}
