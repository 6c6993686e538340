//! Arbitrary frequency tables and symbols through the arithmetic coder and back.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nnz::fuzzing::coder(data);
});
