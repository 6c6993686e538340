//! GPU support (cargo feature `cuda`): the CUDA driver and NVRTC, loaded at run time.
//! The kernels themselves are in `kernels.cu`, compiled by NVRTC when a model first
//! needs them; the model that uses them is [`crate::model::transformer::TransformerGpu`].

mod driver;

pub use driver::{compile_ptx, Arg, Buffer, DevicePtr, Gpu, Kernel, Module};
