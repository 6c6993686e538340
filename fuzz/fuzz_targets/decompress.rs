//! Arbitrary bytes given to the decompressor: an error or the right output, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nnz::fuzzing::decompress(data);
});
