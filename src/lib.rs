pub mod cli;
pub mod coder;
pub mod engine;
pub mod format;
pub mod fuzzing;
pub mod kernels;
pub mod model;
pub mod tokenizer;
