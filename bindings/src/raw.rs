//! Raw bindgen output over the system DPDK (see `build.rs` and the header of the generated
//! file for how it was made). Everything here is `unsafe` to use; the safe layer wraps it.
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    unused_imports,
    improper_ctypes,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    rustdoc::all
)]

include!(concat!(env!("OUT_DIR"), "/dpdk_bindings.rs"));
