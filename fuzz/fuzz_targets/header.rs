//! Arbitrary bytes parsed as a frame header, from a slice and from a stream.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nnz::fuzzing::header(data);
});
