//! Where the networks run: the CPU (always) or an NVIDIA GPU (`--device cuda`, in
//! builds with the cargo feature `cuda`; the Transformer only).
//!
//! The choice is per process, like the CPU kernel path ([`crate::kernels`]), and for the
//! same reason it is not recorded in files: the GPU kernels compute the CPU kernels'
//! bits, so a file decodes the same on either. `NNZ_DEVICE=cpu|cuda` sets it from the
//! environment; the command line's `--device` overrides that.
//!
//! ```
//! use nnz::device::{self, Device};
//! assert_eq!(device::parse("cpu").unwrap(), Device::Cpu);
//! assert!(device::parse("tpu").is_err());
//! ```

use anyhow::{bail, Result};
use std::sync::atomic::{AtomicU8, Ordering};

/// A place where a network runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// The first NVIDIA GPU, through CUDA.
    Cuda,
}

/// 0: not chosen yet (read `NNZ_DEVICE` on first use), 1: CPU, 2: CUDA.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Parses a device name; `cuda` is refused by builds without the `cuda` feature.
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" if cfg!(feature = "cuda") => Ok(Device::Cuda),
        "cuda" => Err(no_gpu_support()),
        _ => bail!("unknown device {name:?}; expected cpu or cuda"),
    }
}

/// The error for asking a build without the `cuda` feature for a GPU.
pub fn no_gpu_support() -> anyhow::Error {
    anyhow::anyhow!(
        "this nnz was built without GPU support: build it with `cargo build --release --features cuda` \
         to use --device cuda"
    )
}

/// Makes `device` the one networks are built on, for the whole process.
pub fn select(device: Device) {
    ACTIVE.store(if device == Device::Cuda { 2 } else { 1 }, Ordering::Relaxed);
}

/// Reads `NNZ_DEVICE` (absent or empty: the CPU) and selects it.
pub fn select_from_env() -> Result<Device> {
    let device = match std::env::var("NNZ_DEVICE") {
        Ok(name) if !name.is_empty() => parse(&name)?,
        _ => Device::Cpu,
    };
    select(device);
    Ok(device)
}

/// The selected device: `NNZ_DEVICE`'s on first use if nothing was selected (an invalid
/// value then means the CPU; the command line reports it as an error before).
pub fn active() -> Device {
    match ACTIVE.load(Ordering::Relaxed) {
        2 => Device::Cuda,
        1 => Device::Cpu,
        _ => select_from_env().unwrap_or(Device::Cpu),
    }
}
